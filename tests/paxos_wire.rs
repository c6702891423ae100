//! The Paxos wire format (`paxos::wire`, docs/WIRE.md): round trips of every
//! message, envelope and record, golden bytes that pin the format, and
//! decoding of damaged or arbitrary bytes (never a panic, never more memory
//! than a small multiple of the input, always `Corrupt` or
//! `UnsupportedVersion` — or, when the bytes happen to be a valid encoding,
//! exactly the value that encodes to them).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proptest::collection::vec;
use proptest::prelude::*;
use quorumkit::Error;
use quorumkit::paxos::single::Msg;
use quorumkit::paxos::wire::{
    WIRE_VERSION, decode, decode_envelope, decode_record, decode_single, encode, encode_envelope,
    encode_record, encode_single, encode_to_vec,
};
use quorumkit::paxos::{AcceptedEntry, Ballot, Batch, Envelope, Membership, Message, Record};

// ------------------------------------------------ allocation accounting
// Counts, per thread, the bytes live and the peak during a decode, so the
// tests can check that a decode never allocates more than O(input length).

struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc(n: usize) {
    let _ = LIVE.try_with(|l| {
        let v = l.get() + n;
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

fn note_free(n: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(n)));
}

// SAFETY: forwards to the system allocator; the bookkeeping allocates
// nothing (const-initialised thread-locals without destructors).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_free(layout.size());
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_free(layout.size());
        note_alloc(new_size);
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak bytes allocated (beyond those live before) while `f` runs.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    (out, PEAK.with(Cell::get) - base)
}

/// The bound the wire module promises: a constant factor of the input
/// (each input byte may become at most one 24-byte `Vec` header or a
/// 56-byte entry, at a few nesting levels) plus a constant for messages.
fn alloc_bound(input_len: usize) -> usize {
    128 * input_len + 4096
}

// ------------------------------------------------ strategies

fn arb_u64() -> impl Strategy<Value = u64> {
    prop_oneof![3 => 0u64..200, 1 => 0u64..100_000, 2 => any::<u64>()]
}

fn arb_node() -> impl Strategy<Value = u32> {
    prop_oneof![3 => 0u32..8, 1 => any::<u32>()]
}

fn arb_ballot() -> impl Strategy<Value = Ballot> {
    (arb_u64(), arb_node()).prop_map(|(round, node)| Ballot { round, node })
}

fn arb_command() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![4 => vec(any::<u8>(), 0..12), 1 => vec(any::<u8>(), 100..300)]
}

fn arb_batch() -> impl Strategy<Value = Batch> {
    vec(arb_command(), 0..4)
}

fn arb_batches() -> impl Strategy<Value = Vec<Batch>> {
    vec(arb_batch(), 0..4)
}

fn arb_entry() -> impl Strategy<Value = AcceptedEntry> {
    (arb_u64(), arb_ballot(), arb_batch(), any::<bool>()).prop_map(
        |(slot, ballot, batch, chosen)| AcceptedEntry {
            slot,
            ballot,
            batch,
            chosen,
        },
    )
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (arb_ballot(), arb_u64())
            .prop_map(|(ballot, first_slot)| Message::Prepare { ballot, first_slot }),
        (arb_ballot(), vec(arb_entry(), 0..4), arb_u64()).prop_map(|(ballot, accepted, commit)| {
            Message::Promise {
                ballot,
                accepted,
                commit,
            }
        }),
        (arb_ballot(), arb_u64(), arb_batches(), arb_u64()).prop_map(
            |(ballot, first_slot, batches, commit)| Message::Accept {
                ballot,
                first_slot,
                batches,
                commit
            }
        ),
        (arb_ballot(), arb_u64(), arb_u64()).prop_map(|(ballot, first_slot, count)| {
            Message::Accepted {
                ballot,
                first_slot,
                count,
            }
        }),
        (arb_ballot(), arb_ballot())
            .prop_map(|(ballot, promised)| Message::Nack { ballot, promised }),
        (arb_ballot(), arb_u64(), arb_u64()).prop_map(|(ballot, commit, seq)| {
            Message::Heartbeat {
                ballot,
                commit,
                seq,
            }
        }),
        (arb_ballot(), arb_u64()).prop_map(|(ballot, seq)| Message::HeartbeatAck { ballot, seq }),
        (arb_u64(), arb_batch()).prop_map(|(seq, commands)| Message::Forward { seq, commands }),
        arb_u64().prop_map(|first_slot| Message::CatchUpRequest { first_slot }),
        arb_ballot().prop_map(|ballot| Message::PreVote { ballot }),
        (arb_ballot(), any::<bool>(), arb_ballot()).prop_map(|(ballot, granted, promised)| {
            Message::PreVoteReply {
                ballot,
                granted,
                promised,
            }
        }),
        (arb_u64(), arb_batches(), arb_u64()).prop_map(|(first_slot, batches, commit)| {
            Message::CatchUp {
                first_slot,
                batches,
                commit,
            }
        }),
        (
            (arb_u64(), arb_u64(), arb_u64()),
            any::<u32>(),
            arb_u64(),
            proptest::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|((cluster, slot, total), checksum, offset, data)| {
                Message::SnapshotChunk {
                    cluster,
                    slot,
                    total,
                    checksum,
                    offset,
                    data,
                }
            }),
        (arb_u64(), arb_u64()).prop_map(|(slot, offset)| Message::SnapshotRequest { slot, offset }),
        (arb_ballot(), arb_node()).prop_map(|(ballot, to)| Message::Handoff { ballot, to }),
    ]
}

fn arb_envelope() -> impl Strategy<Value = Envelope> {
    (arb_node(), arb_node(), arb_message()).prop_map(|(from, to, message)| Envelope {
        from,
        to,
        message,
    })
}

fn arb_record() -> impl Strategy<Value = Record> {
    prop_oneof![
        arb_ballot().prop_map(|ballot| Record::Promise { ballot }),
        (arb_u64(), arb_ballot(), arb_batch()).prop_map(|(slot, ballot, batch)| Record::Accept {
            slot,
            ballot,
            batch
        }),
        (arb_u64(), arb_batch()).prop_map(|(slot, batch)| Record::Chosen { slot, batch }),
        arb_u64().prop_map(|commit| Record::Commit { commit }),
        (arb_u64(), proptest::collection::vec(any::<u8>(), 0..40)).prop_map(|(slot, data)| {
            Record::Snapshot {
                slot,
                data: std::sync::Arc::new(data),
            }
        }),
    ]
}

fn arb_single() -> impl Strategy<Value = Msg> {
    prop_oneof![
        arb_ballot().prop_map(|ballot| Msg::Prepare { ballot }),
        (
            arb_ballot(),
            proptest::option::of((arb_ballot(), arb_command()))
        )
            .prop_map(|(ballot, accepted)| Msg::Promise { ballot, accepted }),
        (arb_ballot(), arb_command()).prop_map(|(ballot, value)| Msg::Accept { ballot, value }),
        (arb_ballot(), arb_command()).prop_map(|(ballot, value)| Msg::Accepted { ballot, value }),
        (arb_ballot(), arb_ballot()).prop_map(|(ballot, promised)| Msg::Nack { ballot, promised }),
    ]
}

fn single_bytes(m: &Msg) -> Vec<u8> {
    let mut b = Vec::new();
    encode_single(m, &mut b);
    b
}

/// Bytes that look like encodings more often than uniform noise would: a
/// valid version byte and a known tag, then small varint-ish bytes.
fn arb_wireish() -> impl Strategy<Value = Vec<u8>> {
    let tag = prop_oneof![
        1u8..=0x0C,
        Just(0x10u8),
        0x20u8..=0x23,
        0x30u8..=0x34,
        any::<u8>()
    ];
    let body = vec(prop_oneof![4 => 0u8..4, 1 => any::<u8>()], 0..40);
    prop_oneof![
        vec(any::<u8>(), 0..64),
        (tag, body).prop_map(|(t, mut b)| {
            b.splice(0..0, [WIRE_VERSION, t]);
            b
        }),
    ]
}

// ------------------------------------------------ hand-built values

fn ballot(round: u64, node: u32) -> Ballot {
    Ballot { round, node }
}

fn every_variant() -> Vec<Message> {
    let big = ballot(u64::MAX, u32::MAX);
    vec![
        Message::Prepare {
            ballot: ballot(1, 0),
            first_slot: 0,
        },
        Message::Prepare {
            ballot: big,
            first_slot: u64::MAX,
        },
        Message::Promise {
            ballot: ballot(2, 1),
            accepted: vec![],
            commit: 0,
        },
        Message::Promise {
            ballot: ballot(9, 2),
            accepted: vec![
                AcceptedEntry {
                    slot: 4,
                    ballot: ballot(3, 1),
                    batch: vec![b"put k v".to_vec(), vec![]],
                    chosen: false,
                },
                AcceptedEntry {
                    slot: 1 << 40,
                    ballot: big,
                    batch: vec![],
                    chosen: true,
                },
            ],
            commit: 4,
        },
        Message::Accept {
            ballot: ballot(5, 3),
            first_slot: 17,
            batches: vec![vec![vec![7; 64]], vec![], vec![vec![0; 300], b"x".to_vec()]],
            commit: 16,
        },
        Message::Accept {
            ballot: ballot(5, 3),
            first_slot: 0,
            batches: vec![],
            commit: 0,
        },
        Message::Accepted {
            ballot: ballot(5, 3),
            first_slot: 17,
            count: 3,
        },
        Message::Nack {
            ballot: ballot(1, 1),
            promised: big,
        },
        Message::Heartbeat {
            ballot: ballot(5, 3),
            commit: 1 << 33,
            seq: 99,
        },
        Message::HeartbeatAck {
            ballot: ballot(5, 3),
            seq: 99,
        },
        Message::Forward {
            seq: u64::MAX,
            commands: vec![b"a".to_vec(), vec![], vec![0xFF; 1000]],
        },
        Message::Forward {
            seq: 0,
            commands: vec![],
        },
        Message::CatchUpRequest { first_slot: 128 },
        Message::CatchUp {
            first_slot: 3,
            batches: vec![vec![b"c1".to_vec()], vec![]],
            commit: 5,
        },
    ]
}

fn every_record() -> Vec<Record> {
    vec![
        Record::Promise {
            ballot: ballot(3, 2),
        },
        Record::Accept {
            slot: 10,
            ballot: ballot(3, 2),
            batch: vec![b"set x 1".to_vec(), vec![]],
        },
        Record::Accept {
            slot: 0,
            ballot: ballot(1, 0),
            batch: vec![],
        },
        Record::Chosen {
            slot: u64::MAX,
            batch: vec![vec![1; 200]],
        },
        Record::Commit { commit: 11 },
        Record::Membership(Membership {
            epoch: u64::MAX,
            start: 0,
            voters: vec![u32::MAX],
            learners: vec![],
        }),
    ]
}

fn is_corrupt<T: std::fmt::Debug>(r: &quorumkit::Result<T>) -> bool {
    matches!(r, Err(Error::Corrupt(_)))
}

/// Every proper prefix of `bytes` fails to decode as `Corrupt`.
fn check_truncations<T: std::fmt::Debug>(
    bytes: &[u8],
    dec: impl Fn(&[u8]) -> quorumkit::Result<T>,
) {
    for cut in 0..bytes.len() {
        let r = dec(&bytes[..cut]);
        assert!(
            is_corrupt(&r),
            "prefix of {cut}/{} bytes of {bytes:02x?}: {r:?}",
            bytes.len()
        );
    }
}

// ------------------------------------------------ tests

#[test]
fn every_variant_round_trips() {
    for m in every_variant() {
        let bytes = encode_to_vec(&m);
        assert_eq!(bytes[0], WIRE_VERSION);
        assert_eq!(decode(&bytes).unwrap(), m, "{bytes:02x?}");
        // `encode` appends.
        let mut out = vec![0xAA, 0xBB];
        encode(&m, &mut out);
        assert_eq!(&out[..2], &[0xAA, 0xBB]);
        assert_eq!(&out[2..], &bytes[..]);

        let env = Envelope {
            from: 7,
            to: u32::MAX,
            message: m.clone(),
        };
        let mut eb = Vec::new();
        encode_envelope(&env, &mut eb);
        assert_eq!(decode_envelope(&eb).unwrap(), env);
        // The envelope is the message's encoding with from/to spliced in.
        assert_eq!(&eb[eb.len() - (bytes.len() - 1)..], &bytes[1..]);
    }
    for r in every_record() {
        let mut b = Vec::new();
        encode_record(&r, &mut b);
        assert_eq!(decode_record(&b).unwrap(), r, "{b:02x?}");
    }
}

#[test]
fn golden_bytes_pin_the_format() {
    // Also the examples in docs/WIRE.md: change both or neither.
    let cases: Vec<(Message, Vec<u8>)> = vec![
        (
            Message::Prepare {
                ballot: ballot(3, 1),
                first_slot: 300,
            },
            vec![0x01, 0x01, 0x03, 0x01, 0xAC, 0x02],
        ),
        (
            Message::Promise {
                ballot: ballot(2, 3),
                accepted: vec![AcceptedEntry {
                    slot: 9,
                    ballot: ballot(1, 1),
                    batch: vec![b"x".to_vec()],
                    chosen: true,
                }],
                commit: 9,
            },
            vec![
                0x01, 0x02, 0x02, 0x03, 0x01, 0x09, 0x01, 0x01, 0x01, 0x01, 0x78, 0x01, 0x09,
            ],
        ),
        (
            Message::Accept {
                ballot: ballot(7, 2),
                first_slot: 5,
                batches: vec![vec![b"ab".to_vec()], vec![]],
                commit: 4,
            },
            vec![
                0x01, 0x03, 0x07, 0x02, 0x05, 0x02, 0x01, 0x02, 0x61, 0x62, 0x00, 0x04,
            ],
        ),
        (
            Message::Accepted {
                ballot: ballot(7, 2),
                first_slot: 5,
                count: 2,
            },
            vec![0x01, 0x04, 0x07, 0x02, 0x05, 0x02],
        ),
        (
            Message::Nack {
                ballot: ballot(1, 1),
                promised: ballot(2, 0),
            },
            vec![0x01, 0x05, 0x01, 0x01, 0x02, 0x00],
        ),
        (
            Message::Heartbeat {
                ballot: ballot(1, 0),
                commit: 0,
                seq: 128,
            },
            vec![0x01, 0x06, 0x01, 0x00, 0x00, 0x80, 0x01],
        ),
        (
            Message::HeartbeatAck {
                ballot: ballot(1, 0),
                seq: 128,
            },
            vec![0x01, 0x07, 0x01, 0x00, 0x80, 0x01],
        ),
        (
            Message::Forward {
                seq: 300,
                commands: vec![b"hi".to_vec()],
            },
            vec![0x01, 0x08, 0xAC, 0x02, 0x01, 0x02, 0x68, 0x69],
        ),
        (
            Message::CatchUpRequest { first_slot: 16_384 },
            vec![0x01, 0x09, 0x80, 0x80, 0x01],
        ),
        (
            Message::CatchUp {
                first_slot: 0,
                batches: vec![vec![]],
                commit: 1,
            },
            vec![0x01, 0x0A, 0x00, 0x01, 0x00, 0x01],
        ),
        (
            Message::PreVote {
                ballot: ballot(4, 2),
            },
            vec![0x01, 0x0B, 0x04, 0x02],
        ),
        (
            Message::PreVoteReply {
                ballot: ballot(4, 2),
                granted: true,
                promised: ballot(3, 1),
            },
            vec![0x01, 0x0C, 0x04, 0x02, 0x01, 0x03, 0x01],
        ),
        (
            Message::SnapshotChunk {
                cluster: 7,
                slot: 5,
                total: 3,
                checksum: 0x0403_0201,
                offset: 1,
                data: b"ab".to_vec(),
            },
            vec![
                0x01, 0x0D, 0x07, 0x05, 0x03, 0x01, 0x02, 0x03, 0x04, 0x01, 0x02, 0x61, 0x62,
            ],
        ),
        (
            Message::SnapshotRequest { slot: 5, offset: 2 },
            vec![0x01, 0x0E, 0x05, 0x02],
        ),
        (
            Message::Handoff {
                ballot: ballot(7, 2),
                to: 3,
            },
            vec![0x01, 0x0F, 0x07, 0x02, 0x03],
        ),
    ];
    for (m, want) in &cases {
        assert_eq!(&encode_to_vec(m), want, "{m:?}");
        assert_eq!(&decode(want).unwrap(), m);
    }

    let env = Envelope {
        from: 1,
        to: 2,
        message: Message::Nack {
            ballot: ballot(1, 1),
            promised: ballot(2, 0),
        },
    };
    let mut b = Vec::new();
    encode_envelope(&env, &mut b);
    assert_eq!(b, [0x01, 0x10, 0x01, 0x02, 0x05, 0x01, 0x01, 0x02, 0x00]);

    let records: Vec<(Record, Vec<u8>)> = vec![
        (
            Record::Promise {
                ballot: ballot(5, u32::MAX),
            },
            vec![0x01, 0x20, 0x05, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F],
        ),
        (
            Record::Accept {
                slot: 1,
                ballot: ballot(1, 2),
                batch: vec![b"set".to_vec()],
            },
            vec![0x01, 0x21, 0x01, 0x01, 0x02, 0x01, 0x03, 0x73, 0x65, 0x74],
        ),
        (
            Record::Chosen {
                slot: 2,
                batch: vec![],
            },
            vec![0x01, 0x22, 0x02, 0x00],
        ),
        (
            Record::Commit { commit: u64::MAX },
            vec![
                0x01, 0x23, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
            ],
        ),
        (
            Record::Snapshot {
                slot: 3,
                data: std::sync::Arc::new(b"st".to_vec()),
            },
            vec![0x01, 0x24, 0x03, 0x02, 0x73, 0x74],
        ),
        (
            Record::Membership(Membership {
                epoch: 1,
                start: 7,
                voters: vec![1, 2],
                learners: vec![3],
            }),
            vec![0x01, 0x25, 0x01, 0x07, 0x02, 0x01, 0x02, 0x01, 0x03],
        ),
    ];
    for (r, want) in &records {
        let mut b = Vec::new();
        encode_record(r, &mut b);
        assert_eq!(&b, want, "{r:?}");
        assert_eq!(&decode_record(want).unwrap(), r);
    }

    let singles: Vec<(Msg, Vec<u8>)> = vec![
        (
            Msg::Prepare {
                ballot: ballot(4, 2),
            },
            vec![0x01, 0x30, 0x04, 0x02],
        ),
        (
            Msg::Promise {
                ballot: ballot(4, 2),
                accepted: None,
            },
            vec![0x01, 0x31, 0x04, 0x02, 0x00],
        ),
        (
            Msg::Promise {
                ballot: ballot(4, 2),
                accepted: Some((ballot(3, 1), b"v".to_vec())),
            },
            vec![0x01, 0x31, 0x04, 0x02, 0x01, 0x03, 0x01, 0x01, 0x76],
        ),
        (
            Msg::Accept {
                ballot: ballot(4, 2),
                value: b"v".to_vec(),
            },
            vec![0x01, 0x32, 0x04, 0x02, 0x01, 0x76],
        ),
        (
            Msg::Accepted {
                ballot: ballot(4, 2),
                value: vec![],
            },
            vec![0x01, 0x33, 0x04, 0x02, 0x00],
        ),
        (
            Msg::Nack {
                ballot: ballot(4, 2),
                promised: ballot(5, 0),
            },
            vec![0x01, 0x34, 0x04, 0x02, 0x05, 0x00],
        ),
    ];
    for (m, want) in &singles {
        assert_eq!(&single_bytes(m), want, "{m:?}");
        assert_eq!(&decode_single(want).unwrap(), m);
    }
}

#[test]
fn single_decree_messages_are_distinct_from_multi_paxos_ones() {
    let prep = single_bytes(&Msg::Prepare {
        ballot: ballot(1, 1),
    });
    assert!(
        matches!(decode(&prep), Err(Error::Corrupt(m)) if m.contains("is a single-decree message, expected a message"))
    );
    let multi = encode_to_vec(&Message::Prepare {
        ballot: ballot(1, 1),
        first_slot: 0,
    });
    assert!(
        matches!(decode_single(&multi), Err(Error::Corrupt(m)) if m.contains("is a message, expected a single-decree message"))
    );
    // A presence flag other than 0 or 1.
    assert!(
        matches!(decode_single(&[1, 0x31, 1, 1, 2]), Err(Error::Corrupt(m)) if m.contains("not a bool"))
    );
    let mut b = single_bytes(&Msg::Nack {
        ballot: ballot(1, 1),
        promised: ballot(2, 2),
    });
    b[0] = 2;
    assert_eq!(
        decode_single(&b).unwrap_err(),
        Error::UnsupportedVersion {
            found: 2,
            supported: 1
        }
    );
}

#[test]
fn other_versions_are_unsupported() {
    let mut samples: Vec<Vec<u8>> = every_variant().iter().map(encode_to_vec).collect();
    samples.push(vec![0x01]);
    for mut bytes in samples {
        for v in (0..=255u8).filter(|&v| v != WIRE_VERSION) {
            bytes[0] = v;
            let want = Error::UnsupportedVersion {
                found: u16::from(v),
                supported: 1,
            };
            assert_eq!(decode(&bytes).unwrap_err(), want);
            assert_eq!(decode_envelope(&bytes).unwrap_err(), want);
            assert_eq!(decode_record(&bytes).unwrap_err(), want);
            assert_eq!(decode_single(&bytes).unwrap_err(), want);
        }
    }
}

#[test]
fn every_truncation_is_corrupt() {
    for m in every_variant() {
        check_truncations(&encode_to_vec(&m), decode);
        let mut eb = Vec::new();
        encode_envelope(
            &Envelope {
                from: 300,
                to: 2,
                message: m,
            },
            &mut eb,
        );
        check_truncations(&eb, decode_envelope);
    }
    for r in every_record() {
        let mut b = Vec::new();
        encode_record(&r, &mut b);
        check_truncations(&b, decode_record);
    }
}

#[test]
fn malformed_inputs_get_precise_errors() {
    let corrupt = |bytes: &[u8]| match decode(bytes) {
        Err(Error::Corrupt(m)) => m,
        other => panic!("{bytes:02x?}: {other:?}"),
    };
    assert!(corrupt(&[]).contains("truncated at byte 0"));
    assert!(corrupt(&[1]).contains("truncated at byte 1"));
    assert!(corrupt(&[1, 0x11]).contains("tag 0x11 at byte 1 is not a known tag"));
    assert!(corrupt(&[1, 0x0F]).contains("truncated at byte 2"));
    assert!(corrupt(&[1, 0x00]).contains("tag 0x00"));
    // Trailing bytes after a complete CatchUpRequest.
    assert!(corrupt(&[1, 0x09, 0x05, 0x00]).contains("1 trailing bytes"));
    // Overlong varint (5 as 0x85 0x00).
    assert!(corrupt(&[1, 0x09, 0x85, 0x00]).contains("overlong varint at byte 2"));
    // A node id above u32::MAX.
    assert!(
        corrupt(&[1, 0x01, 0x01, 0x80, 0x80, 0x80, 0x80, 0x10, 0x00]).contains("overflows u32")
    );
    // A command length past the end.
    assert!(
        corrupt(&[1, 0x08, 0x00, 0x01, 0x05, 0x61])
            .contains("length 5 at byte 4 exceeds the 1 bytes left")
    );
    // A chosen flag that is not 0 or 1.
    assert!(
        corrupt(&[
            1, 0x02, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x00
        ])
        .contains("not a bool")
    );
    // A record or an envelope is not a message, and the other way round.
    let mut rec = Vec::new();
    encode_record(&Record::Commit { commit: 1 }, &mut rec);
    assert!(corrupt(&rec).contains("is a record, expected a message"));
    let prep = encode_to_vec(&Message::CatchUpRequest { first_slot: 1 });
    assert!(
        matches!(decode_record(&prep), Err(Error::Corrupt(m)) if m.contains("is a message, expected a record"))
    );
    assert!(
        matches!(decode_envelope(&prep), Err(Error::Corrupt(m)) if m.contains("is a message, expected an envelope"))
    );
    let mut env = Vec::new();
    encode_envelope(
        &Envelope {
            from: 1,
            to: 2,
            message: Message::CatchUpRequest { first_slot: 1 },
        },
        &mut env,
    );
    assert!(corrupt(&env).contains("is an envelope, expected a message"));
}

#[test]
fn huge_counts_are_refused_before_allocating() {
    // An Accept claiming 2^62 batches, a Forward claiming 2^40 commands, a
    // Promise claiming more entries than 5-byte minimums fit, and a command
    // claiming 2^63 bytes: each is refused by the count check.
    let inputs: Vec<Vec<u8>> = vec![
        vec![
            1, 0x03, 1, 1, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40,
        ],
        vec![1, 0x08, 0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0, 0, 0],
        vec![1, 0x02, 1, 1, 0x02, 0, 0, 0, 0, 0, 0, 0, 0],
        vec![
            1, 0x08, 0x00, 0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
        ],
    ];
    for bytes in inputs {
        let (r, peak) = peak_during(|| decode(&bytes));
        match r {
            Err(Error::Corrupt(m)) => assert!(m.contains("exceeds"), "{m}"),
            other => panic!("{bytes:02x?}: {other:?}"),
        }
        assert!(
            peak <= alloc_bound(bytes.len()),
            "{peak} bytes for {bytes:02x?}"
        );
    }
}

#[test]
fn every_single_bit_flip_decodes_consistently() {
    // A flipped bit may still be a valid encoding (of another value); then
    // that value must encode back to exactly the flipped bytes. Otherwise
    // the error is Corrupt, or UnsupportedVersion for the version byte.
    for m in every_variant() {
        let bytes = encode_to_vec(&m);
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[i / 8] ^= 1 << (i % 8);
            match decode(&b) {
                Ok(other) => assert_eq!(encode_to_vec(&other), b),
                Err(Error::Corrupt(_)) => assert!(i >= 8),
                Err(Error::UnsupportedVersion { .. }) => assert!(i < 8),
                Err(e) => panic!("{e:?}"),
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn messages_round_trip(m in arb_message()) {
        let bytes = encode_to_vec(&m);
        prop_assert_eq!(decode(&bytes)?, m);
        check_truncations(&bytes, decode);
        let mut more = bytes.clone();
        more.push(0);
        prop_assert!(is_corrupt(&decode(&more)));
    }

    #[test]
    fn envelopes_round_trip(e in arb_envelope()) {
        let mut bytes = Vec::new();
        encode_envelope(&e, &mut bytes);
        prop_assert_eq!(decode_envelope(&bytes)?, e);
        check_truncations(&bytes, decode_envelope);
    }

    #[test]
    fn records_round_trip(r in arb_record()) {
        let mut bytes = Vec::new();
        encode_record(&r, &mut bytes);
        prop_assert_eq!(decode_record(&bytes)?, r);
        check_truncations(&bytes, decode_record);
    }

    #[test]
    fn single_decree_messages_round_trip(m in arb_single()) {
        let bytes = single_bytes(&m);
        prop_assert_eq!(decode_single(&bytes)?, m);
        check_truncations(&bytes, decode_single);
        let mut more = bytes.clone();
        more.push(0);
        prop_assert!(is_corrupt(&decode_single(&more)));
    }

    #[test]
    fn random_bit_flips_never_panic(m in arb_message(), flips in vec(any::<u32>(), 1..4)) {
        let mut b = encode_to_vec(&m);
        for f in flips {
            let bit = f as usize % (b.len() * 8);
            b[bit / 8] ^= 1 << (bit % 8);
        }
        match decode(&b) {
            Ok(other) => prop_assert_eq!(encode_to_vec(&other), b),
            Err(Error::Corrupt(_) | Error::UnsupportedVersion { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error {:?}", e),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    /// Arbitrary bytes: no panic, bounded allocation, and any success is
    /// canonical (re-encodes to the same bytes), for all three decoders.
    #[test]
    fn arbitrary_bytes_decode_safely(bytes in arb_wireish()) {
        let (m, peak) = peak_during(|| decode(&bytes));
        prop_assert!(peak <= alloc_bound(bytes.len()), "{} bytes allocated", peak);
        match m {
            Ok(m) => prop_assert_eq!(encode_to_vec(&m), bytes.clone()),
            Err(Error::Corrupt(_) | Error::UnsupportedVersion { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error {:?}", e),
        }
        let (r, peak) = peak_during(|| decode_record(&bytes));
        prop_assert!(peak <= alloc_bound(bytes.len()));
        if let Ok(r) = r {
            let mut b = Vec::new();
            encode_record(&r, &mut b);
            prop_assert_eq!(b, bytes.clone());
        }
        let (e, peak) = peak_during(|| decode_envelope(&bytes));
        prop_assert!(peak <= alloc_bound(bytes.len()));
        if let Ok(e) = e {
            let mut b = Vec::new();
            encode_envelope(&e, &mut b);
            prop_assert_eq!(b, bytes.clone());
        }
        let (m, peak) = peak_during(|| decode_single(&bytes));
        prop_assert!(peak <= alloc_bound(bytes.len()));
        if let Ok(m) = m {
            prop_assert_eq!(single_bytes(&m), bytes);
        }
    }
}

#[test]
fn wire_version_is_one() {
    assert_eq!(WIRE_VERSION, 1);
}

/// Every example encoding in docs/WIRE.md ("Examples") is a valid encoding
/// that decodes and re-encodes to itself, so the document cannot drift from
/// the code unnoticed.
#[test]
fn the_examples_in_wire_md_decode() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/WIRE.md")).unwrap();
    let section = doc.split("## 8. Examples").nth(1).unwrap();
    let section = section.split("## 9.").next().unwrap();
    let mut seen = 0;
    for line in section.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let hex = cells[cells.len() - 2];
        let Some(hex) = hex.strip_prefix('`').and_then(|h| h.strip_suffix('`')) else {
            continue;
        };
        let bytes: Vec<u8> = hex
            .split_whitespace()
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect();
        let again = match bytes[1] {
            0x01..=0x0F => encode_to_vec(&decode(&bytes).unwrap()),
            0x10 => {
                let mut b = Vec::new();
                encode_envelope(&decode_envelope(&bytes).unwrap(), &mut b);
                b
            }
            0x20..=0x25 => {
                let mut b = Vec::new();
                encode_record(&decode_record(&bytes).unwrap(), &mut b);
                b
            }
            _ => single_bytes(&decode_single(&bytes).unwrap()),
        };
        assert_eq!(again, bytes, "{line}");
        seen += 1;
    }
    assert_eq!(seen, 28);
}

/// Writes the fuzzing seed corpus of the Paxos wire target (every message
/// and record variant, as fuzz/checks.rs reads them: a decoder-picking
/// byte, then the encoding). Run with QK_WRITE_FUZZ_SEEDS=1; the files are
/// committed under fuzz/corpus/paxos_wire.
#[test]
fn write_fuzz_seeds() {
    if std::env::var_os("QK_WRITE_FUZZ_SEEDS").is_none() {
        return;
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/paxos_wire");
    std::fs::create_dir_all(dir).unwrap();
    let mut k = 0;
    let mut put = |pick: u8, bytes: Vec<u8>| {
        let mut v = vec![pick];
        v.extend(bytes);
        std::fs::write(format!("{dir}/seed-{k:03}"), v).unwrap();
        k += 1;
    };
    for m in every_variant() {
        let mut out = Vec::new();
        encode(&m, &mut out);
        put(0, out.clone());
        let env = Envelope {
            from: 1,
            to: 2,
            message: m,
        };
        let mut out = Vec::new();
        encode_envelope(&env, &mut out);
        put(1, out);
    }
    for r in every_record() {
        let mut out = Vec::new();
        encode_record(&r, &mut out);
        put(2, out);
    }
}

/// The membership change value and membership encoding of docs/WIRE.md
/// section 10.
#[test]
fn membership_change_values_are_pinned() {
    let v = quorumkit::paxos::membership::change_value(&[1, 2, 3], &[4]);
    assert_eq!(
        v,
        vec![vec![
            0xFF, 0x71, 0x6B, 0x2D, 0x63, 0x66, 0x67, 0x01, 0x03, 0x01, 0x02, 0x03, 0x01, 0x04
        ]]
    );
    assert_eq!(
        quorumkit::paxos::membership::parse_change(&v),
        Some((vec![1, 2, 3], vec![4]))
    );
    let m = Membership::initial(vec![1]);
    assert_eq!(
        quorumkit::paxos::wire::encode_membership(&m),
        vec![0x00, 0x00, 0x01, 0x01, 0x00]
    );
    assert_eq!(
        quorumkit::paxos::wire::decode_membership(&[0x00, 0x00, 0x01, 0x01, 0x00]).unwrap(),
        m
    );
    assert!(quorumkit::paxos::wire::decode_membership(&[0x00, 0x00, 0x05, 0x01]).is_err());
}
