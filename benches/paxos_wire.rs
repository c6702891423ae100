//! Paxos wire format and record file benchmarks: encoding and decoding an
//! Accept of one 64-byte command (the common steady-state message), an
//! Accept of 64 such commands (a full batch), and a Heartbeat; and the
//! record file's append (buffered) and append + sync (an `fsync` on the
//! temp directory's file system).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quorumkit::paxos::wire::{decode, decode_record, encode, encode_record};
use quorumkit::paxos::{Ballot, FileStorage, Message, Record, Storage};

fn accept(commands: usize) -> Message {
    Message::Accept {
        ballot: Ballot::new(3, 1),
        first_slot: 1_000_000,
        batches: vec![vec![vec![0x5A; 64]; commands]],
        commit: 999_990,
    }
}

fn wire(c: &mut Criterion) {
    let mut g = c.benchmark_group("paxos_wire");
    g.measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(1));

    let cases = [
        ("accept 1x64B", accept(1)),
        ("accept 64x64B", accept(64)),
        (
            "heartbeat",
            Message::Heartbeat {
                ballot: Ballot::new(3, 1),
                commit: 1_000_000,
                seq: 123_456,
            },
        ),
    ];
    for (name, msg) in &cases {
        let mut buf = Vec::with_capacity(8192);
        encode(msg, &mut buf);
        let bytes = buf.clone();
        g.bench_function(format!("encode {name} ({} bytes)", bytes.len()), |b| {
            b.iter(|| {
                buf.clear();
                encode(black_box(msg), &mut buf);
                black_box(buf.len())
            })
        });
        g.bench_function(format!("decode {name}"), |b| {
            b.iter(|| decode(black_box(&bytes)).unwrap())
        });
        g.bench_function(format!("encode+decode {name}"), |b| {
            b.iter(|| {
                buf.clear();
                encode(black_box(msg), &mut buf);
                decode(&buf).unwrap()
            })
        });
    }

    let rec = Record::Accept {
        slot: 1_000_000,
        ballot: Ballot::new(3, 1),
        batch: vec![vec![0x5A; 64]],
    };
    let mut rb = Vec::new();
    encode_record(&rec, &mut rb);
    g.bench_function("encode+decode record accept 1x64B", |b| {
        b.iter(|| {
            rb.clear();
            encode_record(black_box(&rec), &mut rb);
            decode_record(&rb).unwrap()
        })
    });
    g.finish();
}

fn file(c: &mut Criterion) {
    let mut g = c.benchmark_group("paxos_file_storage");
    g.throughput(Throughput::Elements(1));
    // A directory of its own: the log is a log file and the segments
    // beside it, all removed at the end.
    let dir = std::env::temp_dir().join(format!("quorumkit-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("replica.qkpx");
    let rec = Record::Accept {
        slot: 1,
        ballot: Ballot::new(3, 1),
        batch: vec![vec![0x5A; 64]],
    };
    {
        let mut s = FileStorage::open(&path, quorumkit::paxos::FileIdentity::new(0, 1)).unwrap();
        g.measurement_time(Duration::from_secs(3));
        g.bench_function("append accept 1x64B (buffered)", |b| {
            b.iter(|| s.append(black_box(&rec)).unwrap())
        });
        s.sync().unwrap();
        g.sample_size(20);
        g.measurement_time(Duration::from_secs(5));
        g.bench_function("append + sync (fsync) accept 1x64B", |b| {
            b.iter(|| {
                s.append(black_box(&rec)).unwrap();
                s.sync().unwrap()
            })
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, wire, file);
criterion_main!(benches);
