//! The wire format: a compact, versioned binary encoding of every Paxos
//! [`Message`], of [`Envelope`]s and of storage [`Record`]s (the file store
//! frames the same record bytes). `docs/WIRE.md` specifies it byte by byte;
//! this is a summary.
//!
//! ```text
//! byte 0   format version (WIRE_VERSION = 1)
//! byte 1   tag: what follows (0x01..=0x0C messages, 0x10 envelope,
//!          0x20..=0x23 records, 0x30..=0x34 single-decree messages)
//! byte 2.. the fields, in declaration order, nothing after the last
//! ```
//!
//! Integers are unsigned LEB128 varints (7 bits a byte, least significant
//! group first, high bit set on every byte but the last), in their shortest
//! form; a ballot is its round then its node; a command is a varint length
//! then its bytes; a list is a varint count then its items; a bool is one
//! byte, 0 or 1.
//!
//! Decoding is strict, so every value has exactly one encoding: a version
//! other than 1 is [`Error::UnsupportedVersion`]; anything else malformed
//! (truncation, an unknown tag, trailing bytes, an overlong or overflowing
//! varint, a length or count larger than the bytes left could hold, a bool
//! other than 0 or 1) is [`Error::Corrupt`] naming the byte offset. Decoding
//! never panics, and allocates at most a small multiple of the input's length
//! (every count is checked against the bytes left before any allocation).

use super::ballot::{Ballot, NodeId};
use super::membership::Membership;
use super::message::{AcceptedEntry, Batch, Command, Envelope, Message};
use super::single::Msg;
use super::storage::Record;
use crate::error::{Error, Result};

/// The wire format version this build writes and reads (byte 0 of every
/// encoding).
pub const WIRE_VERSION: u8 = 1;

// The tag byte of each kind (docs/WIRE.md, section 2). Not public: the
// document is the reference, and public constants would reach the C header.

/// Tag of [`Message::Prepare`].
const TAG_PREPARE: u8 = 0x01;
/// Tag of [`Message::Promise`].
const TAG_PROMISE: u8 = 0x02;
/// Tag of [`Message::Accept`].
const TAG_ACCEPT: u8 = 0x03;
/// Tag of [`Message::Accepted`].
const TAG_ACCEPTED: u8 = 0x04;
/// Tag of [`Message::Nack`].
const TAG_NACK: u8 = 0x05;
/// Tag of [`Message::Heartbeat`].
const TAG_HEARTBEAT: u8 = 0x06;
/// Tag of [`Message::HeartbeatAck`].
const TAG_HEARTBEAT_ACK: u8 = 0x07;
/// Tag of [`Message::Forward`].
const TAG_FORWARD: u8 = 0x08;
/// Tag of [`Message::CatchUpRequest`].
const TAG_CATCH_UP_REQUEST: u8 = 0x09;
/// Tag of [`Message::CatchUp`].
const TAG_CATCH_UP: u8 = 0x0A;
/// Tag of [`Message::PreVote`].
const TAG_PRE_VOTE: u8 = 0x0B;
/// Tag of [`Message::PreVoteReply`].
const TAG_PRE_VOTE_REPLY: u8 = 0x0C;
/// `Message::SnapshotChunk`.
const TAG_SNAPSHOT_CHUNK: u8 = 0x0D;
/// `Message::SnapshotRequest`.
const TAG_SNAPSHOT_REQUEST: u8 = 0x0E;
/// `Message::Handoff`.
const TAG_HANDOFF: u8 = 0x0F;
/// Tag of an [`Envelope`]: `from`, `to`, then the message's tag and fields.
const TAG_ENVELOPE: u8 = 0x10;
/// Tag of [`Record::Promise`].
const TAG_RECORD_PROMISE: u8 = 0x20;
/// Tag of [`Record::Accept`].
const TAG_RECORD_ACCEPT: u8 = 0x21;
/// Tag of [`Record::Chosen`].
const TAG_RECORD_CHOSEN: u8 = 0x22;
/// Tag of [`Record::Commit`].
const TAG_RECORD_COMMIT: u8 = 0x23;
/// `Record::Snapshot`.
const TAG_RECORD_SNAPSHOT: u8 = 0x24;
/// `Record::Membership`.
const TAG_RECORD_MEMBERSHIP: u8 = 0x25;
/// Tag of the single-decree [`Msg::Prepare`].
const TAG_SINGLE_PREPARE: u8 = 0x30;
/// Tag of the single-decree [`Msg::Promise`].
const TAG_SINGLE_PROMISE: u8 = 0x31;
/// Tag of the single-decree [`Msg::Accept`].
const TAG_SINGLE_ACCEPT: u8 = 0x32;
/// Tag of the single-decree [`Msg::Accepted`].
const TAG_SINGLE_ACCEPTED: u8 = 0x33;
/// Tag of the single-decree [`Msg::Nack`].
const TAG_SINGLE_NACK: u8 = 0x34;

/// The longest varint of a `u64` (10 bytes: 9 × 7 bits, then 1 bit).
const MAX_VARINT64: usize = 10;
/// The longest varint of a `u32` (5 bytes: 4 × 7 bits, then 4 bits).
const MAX_VARINT32: usize = 5;

// ---------------------------------------------------------------- encoding

#[inline]
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    if v < 0x80 {
        out.push(v as u8);
        return;
    }
    let mut buf = [0u8; MAX_VARINT64];
    let mut n = 0;
    while v >= 0x80 {
        buf[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    buf[n] = v as u8;
    out.extend_from_slice(&buf[..=n]);
}

#[inline]
fn put_ballot(out: &mut Vec<u8>, b: Ballot) {
    put_varint(out, b.round);
    put_varint(out, u64::from(b.node));
}

#[inline]
fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[inline]
fn put_batch(out: &mut Vec<u8>, batch: &[Command]) {
    put_varint(out, batch.len() as u64);
    for c in batch {
        put_bytes(out, c);
    }
}

#[inline]
fn put_batches(out: &mut Vec<u8>, batches: &[Batch]) {
    put_varint(out, batches.len() as u64);
    for b in batches {
        put_batch(out, b);
    }
}

/// The message's tag and fields, without the version byte.
fn put_message(out: &mut Vec<u8>, msg: &Message) {
    match msg {
        Message::Prepare { ballot, first_slot } => {
            out.push(TAG_PREPARE);
            put_ballot(out, *ballot);
            put_varint(out, *first_slot);
        }
        Message::Promise {
            ballot,
            accepted,
            commit,
        } => {
            out.push(TAG_PROMISE);
            put_ballot(out, *ballot);
            put_varint(out, accepted.len() as u64);
            for e in accepted {
                put_varint(out, e.slot);
                put_ballot(out, e.ballot);
                put_batch(out, &e.batch);
                out.push(u8::from(e.chosen));
            }
            put_varint(out, *commit);
        }
        Message::Accept {
            ballot,
            first_slot,
            batches,
            commit,
        } => {
            out.push(TAG_ACCEPT);
            put_ballot(out, *ballot);
            put_varint(out, *first_slot);
            put_batches(out, batches);
            put_varint(out, *commit);
        }
        Message::Accepted {
            ballot,
            first_slot,
            count,
        } => {
            out.push(TAG_ACCEPTED);
            put_ballot(out, *ballot);
            put_varint(out, *first_slot);
            put_varint(out, *count);
        }
        Message::Nack { ballot, promised } => {
            out.push(TAG_NACK);
            put_ballot(out, *ballot);
            put_ballot(out, *promised);
        }
        Message::Heartbeat {
            ballot,
            commit,
            seq,
        } => {
            out.push(TAG_HEARTBEAT);
            put_ballot(out, *ballot);
            put_varint(out, *commit);
            put_varint(out, *seq);
        }
        Message::HeartbeatAck { ballot, seq } => {
            out.push(TAG_HEARTBEAT_ACK);
            put_ballot(out, *ballot);
            put_varint(out, *seq);
        }
        Message::Forward { seq, commands } => {
            out.push(TAG_FORWARD);
            put_varint(out, *seq);
            put_batch(out, commands);
        }
        Message::CatchUpRequest { first_slot } => {
            out.push(TAG_CATCH_UP_REQUEST);
            put_varint(out, *first_slot);
        }
        Message::CatchUp {
            first_slot,
            batches,
            commit,
        } => {
            out.push(TAG_CATCH_UP);
            put_varint(out, *first_slot);
            put_batches(out, batches);
            put_varint(out, *commit);
        }
        Message::PreVote { ballot } => {
            out.push(TAG_PRE_VOTE);
            put_ballot(out, *ballot);
        }
        Message::PreVoteReply {
            ballot,
            granted,
            promised,
        } => {
            out.push(TAG_PRE_VOTE_REPLY);
            put_ballot(out, *ballot);
            out.push(u8::from(*granted));
            put_ballot(out, *promised);
        }
        Message::SnapshotChunk {
            cluster,
            slot,
            total,
            checksum,
            offset,
            data,
        } => {
            out.push(TAG_SNAPSHOT_CHUNK);
            put_varint(out, *cluster);
            put_varint(out, *slot);
            put_varint(out, *total);
            out.extend_from_slice(&checksum.to_le_bytes());
            put_varint(out, *offset);
            put_bytes(out, data);
        }
        Message::SnapshotRequest { slot, offset } => {
            out.push(TAG_SNAPSHOT_REQUEST);
            put_varint(out, *slot);
            put_varint(out, *offset);
        }
        Message::Handoff { ballot, to } => {
            out.push(TAG_HANDOFF);
            put_ballot(out, *ballot);
            put_varint(out, u64::from(*to));
        }
    }
}

/// Appends the encoding of `msg` to `out` (allocating only as `out` grows).
pub fn encode(msg: &Message, out: &mut Vec<u8>) {
    out.push(WIRE_VERSION);
    put_message(out, msg);
}

/// The encoding of `msg` in a new vector.
pub fn encode_to_vec(msg: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    encode(msg, &mut out);
    out
}

/// Appends the encoding of `env` (sender, destination, message) to `out`.
pub fn encode_envelope(env: &Envelope, out: &mut Vec<u8>) {
    out.push(WIRE_VERSION);
    out.push(TAG_ENVELOPE);
    put_varint(out, u64::from(env.from));
    put_varint(out, u64::from(env.to));
    put_message(out, &env.message);
}

/// Appends the encoding of `record` to `out` (what `FileStorage` stores).
pub fn encode_record(record: &Record, out: &mut Vec<u8>) {
    out.push(WIRE_VERSION);
    match record {
        Record::Promise { ballot } => {
            out.push(TAG_RECORD_PROMISE);
            put_ballot(out, *ballot);
        }
        Record::Accept {
            slot,
            ballot,
            batch,
        } => {
            out.push(TAG_RECORD_ACCEPT);
            put_varint(out, *slot);
            put_ballot(out, *ballot);
            put_batch(out, batch);
        }
        Record::Chosen { slot, batch } => {
            out.push(TAG_RECORD_CHOSEN);
            put_varint(out, *slot);
            put_batch(out, batch);
        }
        Record::Commit { commit } => {
            out.push(TAG_RECORD_COMMIT);
            put_varint(out, *commit);
        }
        Record::Snapshot { slot, data } => {
            put_snapshot_fields(out, *slot, data.len());
            out.extend_from_slice(data);
        }
        Record::Membership(m) => {
            out.push(TAG_RECORD_MEMBERSHIP);
            put_membership(out, m);
        }
    }
}

/// Appends the bytes of a snapshot record that come before its data: the
/// encoding of `Record::Snapshot { slot, data }` is these followed by
/// `data`, so a store can write a large snapshot without copying it.
pub(crate) fn snapshot_record_head(slot: u64, data_len: usize, out: &mut Vec<u8>) {
    out.push(WIRE_VERSION);
    put_snapshot_fields(out, slot, data_len);
}

/// A snapshot record's tag, slot and data length.
fn put_snapshot_fields(out: &mut Vec<u8>, slot: u64, data_len: usize) {
    out.push(TAG_RECORD_SNAPSHOT);
    put_varint(out, slot);
    put_varint(out, data_len as u64);
}

/// Appends two id lists (voters, learners): a varint count then varint ids
/// each.
pub(crate) fn put_node_lists(out: &mut Vec<u8>, voters: &[NodeId], learners: &[NodeId]) {
    for list in [voters, learners] {
        put_varint(out, list.len() as u64);
        for &id in list {
            put_varint(out, u64::from(id));
        }
    }
}

/// Reads exactly what [`put_node_lists`] writes.
pub(crate) fn decode_node_lists(bytes: &[u8]) -> Result<(Vec<NodeId>, Vec<NodeId>)> {
    let mut r = Reader::new(bytes);
    let lists = r.node_lists()?;
    r.finish(lists, "membership lists")
}

fn put_membership(out: &mut Vec<u8>, m: &Membership) {
    put_varint(out, m.epoch);
    put_varint(out, m.start);
    put_node_lists(out, &m.voters, &m.learners);
}

/// The bytes of a membership as a snapshot image carries it (`docs/WIRE.md`).
pub fn encode_membership(m: &Membership) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 2 * (m.voters.len() + m.learners.len()));
    put_membership(&mut out, m);
    out
}

/// Reads exactly what [`encode_membership`] writes (the lists unchecked).
pub fn decode_membership(bytes: &[u8]) -> Result<Membership> {
    let mut r = Reader::new(bytes);
    let m = r.membership()?;
    r.finish(m, "membership")
}

/// Appends the encoding of a single-decree message to `out`.
pub fn encode_single(msg: &Msg, out: &mut Vec<u8>) {
    out.push(WIRE_VERSION);
    match msg {
        Msg::Prepare { ballot } => {
            out.push(TAG_SINGLE_PREPARE);
            put_ballot(out, *ballot);
        }
        Msg::Promise { ballot, accepted } => {
            out.push(TAG_SINGLE_PROMISE);
            put_ballot(out, *ballot);
            match accepted {
                None => out.push(0),
                Some((b, value)) => {
                    out.push(1);
                    put_ballot(out, *b);
                    put_bytes(out, value);
                }
            }
        }
        Msg::Accept { ballot, value } => {
            out.push(TAG_SINGLE_ACCEPT);
            put_ballot(out, *ballot);
            put_bytes(out, value);
        }
        Msg::Accepted { ballot, value } => {
            out.push(TAG_SINGLE_ACCEPTED);
            put_ballot(out, *ballot);
            put_bytes(out, value);
        }
        Msg::Nack { ballot, promised } => {
            out.push(TAG_SINGLE_NACK);
            put_ballot(out, *ballot);
            put_ballot(out, *promised);
        }
    }
}

// ---------------------------------------------------------------- decoding

/// A cursor over the input; every read checks the bytes left.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

#[cold]
#[inline(never)]
fn truncated(pos: usize, what: &str) -> Error {
    Error::corrupt(format!("wire: truncated at byte {pos} (reading {what})"))
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    #[inline]
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    fn u8(&mut self, what: &str) -> Result<u8> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(truncated(self.pos, what)),
        }
    }

    /// A shortest-form LEB128 varint of at most `max_len` bytes whose value
    /// fits in `bits` bits.
    #[inline]
    fn varint_bits(&mut self, what: &str, max_len: usize, bits: u32) -> Result<u64> {
        // Fast path: one byte (most ballots, node ids, counts).
        if let Some(&b) = self.buf.get(self.pos)
            && b < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        self.varint_slow(what, max_len, bits)
    }

    #[inline(never)]
    fn varint_slow(&mut self, what: &str, max_len: usize, bits: u32) -> Result<u64> {
        let start = self.pos;
        let bytes = &self.buf[start..];
        let mut v: u64 = 0;
        for (i, &b) in bytes.iter().take(max_len).enumerate() {
            let shift = 7 * i as u32;
            let group = u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return Err(Error::corrupt(format!(
                        "wire: overlong varint at byte {start} (reading {what})"
                    )));
                }
                // The last group may carry only the bits the type has left.
                if bits - shift < 7 && group >> (bits - shift) != 0 {
                    return Err(Error::corrupt(format!(
                        "wire: varint at byte {start} overflows u{bits} (reading {what})"
                    )));
                }
                self.pos = start + i + 1;
                return Ok(v | (group << shift));
            }
            v |= group << shift;
        }
        if bytes.len() < max_len {
            return Err(truncated(self.buf.len(), what));
        }
        Err(Error::corrupt(format!(
            "wire: varint at byte {start} is longer than {max_len} bytes (reading {what})"
        )))
    }

    #[inline]
    fn u64(&mut self, what: &str) -> Result<u64> {
        self.varint_bits(what, MAX_VARINT64, 64)
    }

    #[inline]
    fn u32(&mut self, what: &str) -> Result<u32> {
        // The reader checked the value fits in 32 bits.
        Ok(self.varint_bits(what, MAX_VARINT32, 32)? as u32)
    }

    #[inline]
    fn node(&mut self, what: &str) -> Result<NodeId> {
        self.u32(what)
    }

    #[inline]
    fn ballot(&mut self, what: &str) -> Result<Ballot> {
        let round = self.u64(what)?;
        let node = self.node(what)?;
        Ok(Ballot { round, node })
    }

    fn bool(&mut self, what: &str) -> Result<bool> {
        let at = self.pos;
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(Error::corrupt(format!(
                "wire: byte {at} is {b:#04x}, not a bool 0 or 1 (reading {what})"
            ))),
        }
    }

    /// A list count, refused if `count` items of at least `min_item` bytes
    /// each cannot fit in the bytes left (so no allocation outgrows the
    /// input).
    #[inline]
    fn count(&mut self, what: &str, min_item: usize) -> Result<usize> {
        let at = self.pos;
        let n = self.u64(what)?;
        let left = self.remaining() as u64;
        if n > left / min_item as u64 {
            return Err(Error::corrupt(format!(
                "wire: count {n} at byte {at} exceeds what the {left} bytes left can hold \
                 (reading {what})"
            )));
        }
        Ok(n as usize)
    }

    #[inline]
    fn bytes(&mut self, what: &str) -> Result<Vec<u8>> {
        let at = self.pos;
        let n = self.u64(what)?;
        if n > self.remaining() as u64 {
            return Err(Error::corrupt(format!(
                "wire: length {n} at byte {at} exceeds the {} bytes left (reading {what})",
                self.remaining()
            )));
        }
        let n = n as usize;
        let v = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(v)
    }

    fn node_lists(&mut self) -> Result<(Vec<NodeId>, Vec<NodeId>)> {
        let mut lists = [Vec::new(), Vec::new()];
        for list in &mut lists {
            let n = self.count("a membership list's count", 1)?;
            for _ in 0..n {
                list.push(self.node("a member id")?);
            }
        }
        let [voters, learners] = lists;
        Ok((voters, learners))
    }

    fn membership(&mut self) -> Result<Membership> {
        let epoch = self.u64("Membership.epoch")?;
        let start = self.u64("Membership.start")?;
        let (voters, learners) = self.node_lists()?;
        Ok(Membership {
            epoch,
            start,
            voters,
            learners,
        })
    }

    fn batch(&mut self) -> Result<Batch> {
        // A command is at least its 1-byte length.
        let n = self.count("a batch's command count", 1)?;
        let mut batch = Vec::with_capacity(n);
        for _ in 0..n {
            batch.push(self.bytes("a command")?);
        }
        Ok(batch)
    }

    fn batches(&mut self) -> Result<Vec<Batch>> {
        // A batch is at least its 1-byte count.
        let n = self.count("a batch count", 1)?;
        let mut batches = Vec::with_capacity(n);
        for _ in 0..n {
            batches.push(self.batch()?);
        }
        Ok(batches)
    }

    /// Byte 0: the version, refused unless it is ours.
    fn version(&mut self) -> Result<()> {
        let v = self.u8("the version byte")?;
        if v != WIRE_VERSION {
            return Err(Error::UnsupportedVersion {
                found: u16::from(v),
                supported: u16::from(WIRE_VERSION),
            });
        }
        Ok(())
    }

    fn finish<T>(&self, value: T, what: &str) -> Result<T> {
        if self.pos != self.buf.len() {
            return Err(Error::corrupt(format!(
                "wire: {} trailing bytes after the {what} ending at byte {}",
                self.buf.len() - self.pos,
                self.pos
            )));
        }
        Ok(value)
    }

    /// A message's tag and fields.
    fn message(&mut self) -> Result<Message> {
        let at = self.pos;
        let tag = self.u8("a message tag")?;
        Ok(match tag {
            TAG_PREPARE => Message::Prepare {
                ballot: self.ballot("Prepare.ballot")?,
                first_slot: self.u64("Prepare.first_slot")?,
            },
            TAG_PROMISE => {
                let ballot = self.ballot("Promise.ballot")?;
                // An entry is at least slot, round, node, count, chosen.
                let n = self.count("Promise.accepted count", 5)?;
                let mut accepted = Vec::with_capacity(n);
                for _ in 0..n {
                    accepted.push(AcceptedEntry {
                        slot: self.u64("AcceptedEntry.slot")?,
                        ballot: self.ballot("AcceptedEntry.ballot")?,
                        batch: self.batch()?,
                        chosen: self.bool("AcceptedEntry.chosen")?,
                    });
                }
                Message::Promise {
                    ballot,
                    accepted,
                    commit: self.u64("Promise.commit")?,
                }
            }
            TAG_ACCEPT => Message::Accept {
                ballot: self.ballot("Accept.ballot")?,
                first_slot: self.u64("Accept.first_slot")?,
                batches: self.batches()?,
                commit: self.u64("Accept.commit")?,
            },
            TAG_ACCEPTED => Message::Accepted {
                ballot: self.ballot("Accepted.ballot")?,
                first_slot: self.u64("Accepted.first_slot")?,
                count: self.u64("Accepted.count")?,
            },
            TAG_NACK => Message::Nack {
                ballot: self.ballot("Nack.ballot")?,
                promised: self.ballot("Nack.promised")?,
            },
            TAG_HEARTBEAT => Message::Heartbeat {
                ballot: self.ballot("Heartbeat.ballot")?,
                commit: self.u64("Heartbeat.commit")?,
                seq: self.u64("Heartbeat.seq")?,
            },
            TAG_HEARTBEAT_ACK => Message::HeartbeatAck {
                ballot: self.ballot("HeartbeatAck.ballot")?,
                seq: self.u64("HeartbeatAck.seq")?,
            },
            TAG_FORWARD => Message::Forward {
                seq: self.u64("Forward.seq")?,
                commands: self.batch()?,
            },
            TAG_CATCH_UP_REQUEST => Message::CatchUpRequest {
                first_slot: self.u64("CatchUpRequest.first_slot")?,
            },
            TAG_CATCH_UP => Message::CatchUp {
                first_slot: self.u64("CatchUp.first_slot")?,
                batches: self.batches()?,
                commit: self.u64("CatchUp.commit")?,
            },
            TAG_PRE_VOTE => Message::PreVote {
                ballot: self.ballot("PreVote.ballot")?,
            },
            TAG_PRE_VOTE_REPLY => Message::PreVoteReply {
                ballot: self.ballot("PreVoteReply.ballot")?,
                granted: self.bool("PreVoteReply.granted")?,
                promised: self.ballot("PreVoteReply.promised")?,
            },
            TAG_SNAPSHOT_CHUNK => Message::SnapshotChunk {
                cluster: self.u64("SnapshotChunk.cluster")?,
                slot: self.u64("SnapshotChunk.slot")?,
                total: self.u64("SnapshotChunk.total")?,
                checksum: {
                    let mut b = [0u8; 4];
                    for x in &mut b {
                        *x = self.u8("SnapshotChunk.checksum")?;
                    }
                    u32::from_le_bytes(b)
                },
                offset: self.u64("SnapshotChunk.offset")?,
                data: self.bytes("SnapshotChunk.data")?,
            },
            TAG_SNAPSHOT_REQUEST => Message::SnapshotRequest {
                slot: self.u64("SnapshotRequest.slot")?,
                offset: self.u64("SnapshotRequest.offset")?,
            },
            TAG_HANDOFF => Message::Handoff {
                ballot: self.ballot("Handoff.ballot")?,
                to: self.node("Handoff.to")?,
            },
            other => return Err(unknown_tag(at, other, "a message")),
        })
    }
}

/// What a tag is, for the message of a decoder that expected another kind.
fn tag_kind(tag: u8) -> &'static str {
    match tag {
        TAG_PREPARE..=TAG_HANDOFF => "a message",
        TAG_ENVELOPE => "an envelope",
        TAG_RECORD_PROMISE..=TAG_RECORD_MEMBERSHIP => "a record",
        TAG_SINGLE_PREPARE..=TAG_SINGLE_NACK => "a single-decree message",
        _ => "not a known tag",
    }
}

#[cold]
fn unknown_tag(at: usize, tag: u8, expected: &str) -> Error {
    Error::corrupt(format!(
        "wire: tag {tag:#04x} at byte {at} is {}, expected {expected}",
        tag_kind(tag)
    ))
}

/// Decodes one message: exactly the bytes [`encode`] writes.
pub fn decode(bytes: &[u8]) -> Result<Message> {
    let mut r = Reader::new(bytes);
    r.version()?;
    let msg = r.message()?;
    r.finish(msg, "message")
}

/// Decodes one envelope: exactly the bytes [`encode_envelope`] writes.
pub fn decode_envelope(bytes: &[u8]) -> Result<Envelope> {
    let mut r = Reader::new(bytes);
    r.version()?;
    let at = r.pos;
    let tag = r.u8("the envelope tag")?;
    if tag != TAG_ENVELOPE {
        return Err(unknown_tag(at, tag, "an envelope"));
    }
    let from = r.node("Envelope.from")?;
    let to = r.node("Envelope.to")?;
    let message = r.message()?;
    r.finish(Envelope { from, to, message }, "envelope")
}

/// Decodes one record: exactly the bytes [`encode_record`] writes.
pub fn decode_record(bytes: &[u8]) -> Result<Record> {
    let mut r = Reader::new(bytes);
    r.version()?;
    let at = r.pos;
    let tag = r.u8("a record tag")?;
    let record = match tag {
        TAG_RECORD_PROMISE => Record::Promise {
            ballot: r.ballot("Record::Promise.ballot")?,
        },
        TAG_RECORD_ACCEPT => Record::Accept {
            slot: r.u64("Record::Accept.slot")?,
            ballot: r.ballot("Record::Accept.ballot")?,
            batch: r.batch()?,
        },
        TAG_RECORD_CHOSEN => Record::Chosen {
            slot: r.u64("Record::Chosen.slot")?,
            batch: r.batch()?,
        },
        TAG_RECORD_COMMIT => Record::Commit {
            commit: r.u64("Record::Commit.commit")?,
        },
        TAG_RECORD_SNAPSHOT => Record::Snapshot {
            slot: r.u64("Record::Snapshot.slot")?,
            data: std::sync::Arc::new(r.bytes("Record::Snapshot.data")?),
        },
        TAG_RECORD_MEMBERSHIP => Record::Membership(r.membership()?),
        other => return Err(unknown_tag(at, other, "a record")),
    };
    r.finish(record, "record")
}

/// Decodes one single-decree message: exactly the bytes [`encode_single`]
/// writes.
pub fn decode_single(bytes: &[u8]) -> Result<Msg> {
    let mut r = Reader::new(bytes);
    r.version()?;
    let at = r.pos;
    let tag = r.u8("a single-decree message tag")?;
    let msg = match tag {
        TAG_SINGLE_PREPARE => Msg::Prepare {
            ballot: r.ballot("single Prepare.ballot")?,
        },
        TAG_SINGLE_PROMISE => {
            let ballot = r.ballot("single Promise.ballot")?;
            let accepted = if r.bool("single Promise.accepted presence")? {
                let b = r.ballot("single Promise.accepted ballot")?;
                Some((b, r.bytes("single Promise.accepted value")?))
            } else {
                None
            };
            Msg::Promise { ballot, accepted }
        }
        TAG_SINGLE_ACCEPT => Msg::Accept {
            ballot: r.ballot("single Accept.ballot")?,
            value: r.bytes("single Accept.value")?,
        },
        TAG_SINGLE_ACCEPTED => Msg::Accepted {
            ballot: r.ballot("single Accepted.ballot")?,
            value: r.bytes("single Accepted.value")?,
        },
        TAG_SINGLE_NACK => Msg::Nack {
            ballot: r.ballot("single Nack.ballot")?,
            promised: r.ballot("single Nack.promised")?,
        },
        other => return Err(unknown_tag(at, other, "a single-decree message")),
    };
    r.finish(msg, "single-decree message")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    fn read_u64(bytes: &[u8]) -> Result<u64> {
        let mut r = Reader::new(bytes);
        let v = r.u64("test")?;
        r.finish(v, "varint")
    }

    fn read_u32(bytes: &[u8]) -> Result<u32> {
        let mut r = Reader::new(bytes);
        let v = r.u32("test")?;
        r.finish(v, "varint")
    }

    #[test]
    fn varint_boundaries_round_trip_in_shortest_form() {
        for (v, len) in [
            (0u64, 1usize),
            (1, 1),
            (127, 1),
            (128, 2),
            (300, 2),
            (16_383, 2),
            (16_384, 3),
            (u64::from(u32::MAX), 5),
            ((1 << 56) - 1, 8),
            (1 << 63, 10),
            (u64::MAX, 10),
        ] {
            let e = varint(v);
            assert_eq!(e.len(), len, "length of {v}");
            assert_eq!(read_u64(&e).unwrap(), v);
        }
        assert_eq!(varint(300), [0xAC, 0x02]);
        assert_eq!(
            varint(u64::MAX),
            [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
        );
    }

    #[test]
    fn varint_rejects_overlong_overflow_and_truncation() {
        // 0 written in two bytes.
        assert!(
            matches!(read_u64(&[0x80, 0x00]), Err(Error::Corrupt(m)) if m.contains("overlong"))
        );
        // 2^64: the tenth byte may only be 1.
        let over = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02];
        assert!(matches!(read_u64(&over), Err(Error::Corrupt(m)) if m.contains("overflows u64")));
        let eleven = [0xFF; 11];
        assert!(
            matches!(read_u64(&eleven), Err(Error::Corrupt(m)) if m.contains("longer than 10"))
        );
        assert!(
            matches!(read_u64(&[0x80]), Err(Error::Corrupt(m)) if m.contains("truncated at byte 1"))
        );
        assert!(
            matches!(read_u64(&[]), Err(Error::Corrupt(m)) if m.contains("truncated at byte 0"))
        );
        // u32: 5 bytes, the fifth at most 0x0F.
        assert_eq!(read_u32(&[0xFF, 0xFF, 0xFF, 0xFF, 0x0F]).unwrap(), u32::MAX);
        assert!(
            matches!(read_u32(&[0xFF, 0xFF, 0xFF, 0xFF, 0x1F]), Err(Error::Corrupt(m)) if m.contains("overflows u32"))
        );
        assert!(
            matches!(read_u32(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]), Err(Error::Corrupt(m)) if m.contains("longer than 5"))
        );
    }

    #[test]
    fn tags_are_distinct_across_kinds() {
        let tags = [
            TAG_PREPARE,
            TAG_PROMISE,
            TAG_ACCEPT,
            TAG_ACCEPTED,
            TAG_NACK,
            TAG_HEARTBEAT,
            TAG_HEARTBEAT_ACK,
            TAG_FORWARD,
            TAG_CATCH_UP_REQUEST,
            TAG_CATCH_UP,
            TAG_ENVELOPE,
            TAG_RECORD_PROMISE,
            TAG_RECORD_ACCEPT,
            TAG_RECORD_CHOSEN,
            TAG_RECORD_COMMIT,
            TAG_SINGLE_PREPARE,
            TAG_SINGLE_PROMISE,
            TAG_SINGLE_ACCEPT,
            TAG_SINGLE_ACCEPTED,
            TAG_SINGLE_NACK,
        ];
        let mut sorted = tags.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), tags.len());
    }
}
