//! Paxos benchmarks.
//!
//! - Multi-Paxos, 3 replicas in one process on `MemoryStorage`, every
//!   message encoded to bytes and decoded again as a real transport would:
//!   decisions/s unbatched (`max_batch` 1, a window of 64 slots in flight)
//!   and commands/s batched (64-byte commands, `max_batch` 256). Beside the
//!   unbatched run, the same run passing `Message` values (no wire format),
//!   so the README can quote the cost of encoding against the same run.
//! - One single-decree round (prepare, promise, accept, accepted, learned)
//!   with the `paxos::single` roles and 3 acceptors, messages as values.
//! - One call into a node through the C ABI (`qk_paxos_node_tick`, and a
//!   heartbeat stepped and its reply polled) beside the same work called
//!   directly in Rust: the difference is the FFI's cost.
//!
//! Every time here is the benchmark thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`), not wall time: the numbers are meant to be
//! quoted from a shared machine, where wall time would also count the time
//! other processes held the core. On an idle core the two agree.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quorumkit::ffi::paxos::{
    qk_paxos_config_init, qk_paxos_node, qk_paxos_node_free, qk_paxos_node_new_memory,
    qk_paxos_node_poll, qk_paxos_node_step, qk_paxos_node_tick, qk_paxos_output,
};
use quorumkit::paxos::single::{Acceptor, Learner, Msg, Proposer};
use quorumkit::paxos::{Ballot, Config, MemoryStorage, Message, Node, NodeId, Output, wire};

mod support;
use support::{Cluster, MEMBERS, Transport, thread_cpu, timed_rounds};

/// Criterion measurement: the benchmark thread's CPU time.
struct ThreadCpu;

impl Measurement for ThreadCpu {
    type Intermediate = Duration;
    type Value = Duration;
    fn start(&self) -> Duration {
        thread_cpu()
    }
    fn end(&self, i: Duration) -> Duration {
        thread_cpu() - i
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// Formats nanoseconds and elements per second, as criterion's wall-time
/// formatter does.
struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, ns: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = match ns {
            x if x < 1e3 => (1.0, "ns"),
            x if x < 1e6 => (1e-3, "µs"),
            x if x < 1e9 => (1e-6, "ms"),
            _ => (1e-9, "s"),
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }

    fn scale_throughputs(&self, typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let n = match *t {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => {
                n as f64
            }
        };
        let per_s = n * 1e9 / typical;
        let (div, unit) = match per_s {
            x if x < 1e3 => (1.0, " elem/s"),
            x if x < 1e6 => (1e3, "Kelem/s"),
            x if x < 1e9 => (1e6, "Melem/s"),
            _ => (1e9, "Gelem/s"),
        };
        values.iter_mut().for_each(|v| *v = n * 1e9 / *v / div);
        unit
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

type C = Criterion<ThreadCpu>;

fn multi(c: &mut C) {
    let mut g = c.benchmark_group("paxos");
    g.measurement_time(Duration::from_secs(4));
    g.sample_size(20);

    // Unbatched: one command per slot, up to 64 slots in flight.
    let small: Vec<Vec<u8>> = (0..256u32).map(|i| i.to_le_bytes().to_vec()).collect();
    g.throughput(Throughput::Elements(small.len() as u64));
    for (name, transport) in [
        (
            "decisions unbatched (3 replicas, encoded)",
            Transport::Bytes,
        ),
        (
            "decisions unbatched (3 replicas, values)",
            Transport::Values,
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                timed_rounds(iters, &small, 200, || Cluster::new(1, 64, transport))
            })
        });
    }

    // The unbatched run again, each node compacting its log every 1,000
    // slots (a 4 KiB snapshot): the cost of compaction, against the run
    // above.
    g.bench_function(
        "decisions unbatched (3 replicas, encoded, compaction every 1000 slots)",
        |b| {
            b.iter_custom(|iters| {
                timed_rounds(iters, &small, 200, || Cluster::compacting(1, 64, 1000))
            })
        },
    );

    // Batched: 64-byte commands, up to 256 per slot.
    let big: Vec<Vec<u8>> = (0..4096u32)
        .map(|i| {
            let mut v = vec![0u8; 64];
            v[..4].copy_from_slice(&i.to_le_bytes());
            v
        })
        .collect();
    g.throughput(Throughput::Elements(big.len() as u64));
    g.bench_function(
        "commands batched (3 replicas, encoded, 64 B, batch 256)",
        |b| {
            b.iter_custom(|iters| {
                timed_rounds(iters, &big, 50, || Cluster::new(256, 64, Transport::Bytes))
            })
        },
    );
    g.finish();
}

/// One single-decree round on fresh roles: the proposer's prepare to 3
/// acceptors, their promises, the accept, their accepteds to a learner.
fn round(value: &[u8]) -> Vec<u8> {
    let mut p = Proposer::new(0, 2);
    let mut acceptors = [Acceptor::new(), Acceptor::new(), Acceptor::new()];
    let mut learner = Learner::new(2);
    let prepare = p.start(value.to_vec());
    let mut accept = None;
    for (i, a) in acceptors.iter_mut().enumerate() {
        let (_record, promise) = a.on_message(&prepare).expect("answers a prepare");
        if let Some(m) = p.on_message(i as NodeId, &promise) {
            accept = Some(m);
        }
    }
    let accept = accept.expect("a majority promised");
    for (i, a) in acceptors.iter_mut().enumerate() {
        let (_record, accepted) = a.on_message(&accept).expect("answers an accept");
        if let Msg::Accepted { ballot, value } = accepted
            && let Some(v) = learner.on_accepted(i as NodeId, ballot, value)
        {
            return v;
        }
    }
    panic!("no value chosen")
}

fn single(c: &mut C) {
    let mut g = c.benchmark_group("paxos");
    g.measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(1));
    let value = vec![7u8; 16];
    g.bench_function("single-decree round (3 acceptors, values)", |b| {
        b.iter(|| black_box(round(black_box(&value))))
    });
    g.finish();
}

/// A follower (node 1) and a heartbeat from leader 0, as bytes.
fn follower() -> (Node<MemoryStorage>, Vec<u8>) {
    let n = Node::new(Config::new(1, MEMBERS.to_vec()), MemoryStorage::new(), 0).unwrap();
    let hb = Message::Heartbeat {
        ballot: Ballot { round: 1, node: 0 },
        commit: 0,
        seq: 1,
    };
    (n, wire::encode_to_vec(&hb))
}

fn ffi(c: &mut C) {
    let mut g = c.benchmark_group("paxos ffi");
    g.measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(1));

    let mut cfg = std::mem::MaybeUninit::uninit();
    // SAFETY: MEMBERS outlives the node's creation; cfg is writable.
    let cfg = unsafe {
        assert_eq!(
            qk_paxos_config_init(
                1,
                MEMBERS.as_ptr(),
                3,
                cfg.as_mut_ptr(),
                std::ptr::null_mut()
            ),
            0
        );
        cfg.assume_init()
    };
    let mut node: *mut qk_paxos_node = std::ptr::null_mut();
    // SAFETY: valid config and out-pointer.
    assert_eq!(
        unsafe { qk_paxos_node_new_memory(&cfg, 0, &mut node, std::ptr::null_mut()) },
        0
    );
    let (mut direct, hb) = follower();

    g.bench_function("tick, direct", |b| {
        b.iter(|| direct.tick(black_box(1)).unwrap())
    });
    g.bench_function("tick, through qk_paxos_node_tick", |b| {
        // SAFETY: a live node.
        b.iter(|| {
            assert_eq!(
                unsafe { qk_paxos_node_tick(node, black_box(1), std::ptr::null_mut()) },
                0
            )
        })
    });

    g.bench_function("heartbeat step + poll, direct", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            let m = wire::decode(black_box(&hb)).unwrap();
            direct.step(0, m, 1).unwrap();
            while let Some(o) = direct.poll() {
                if let Output::Send(env) = o {
                    out.clear();
                    wire::encode(&env.message, &mut out);
                    black_box(&out);
                }
            }
        })
    });
    g.bench_function("heartbeat step + poll, through the C ABI", |b| {
        let mut o = std::mem::MaybeUninit::<qk_paxos_output>::uninit();
        let mut has = 0u8;
        b.iter(|| unsafe {
            // SAFETY: a live node, valid buffers and out-pointers.
            assert_eq!(
                qk_paxos_node_step(node, 0, hb.as_ptr(), hb.len(), 1, std::ptr::null_mut()),
                0
            );
            loop {
                assert_eq!(
                    qk_paxos_node_poll(node, o.as_mut_ptr(), &mut has, std::ptr::null_mut()),
                    0
                );
                if has == 0 {
                    break;
                }
                black_box(o.assume_init_ref().data);
            }
        })
    });
    g.finish();
    // SAFETY: the node is not used again.
    unsafe { qk_paxos_node_free(node) };
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = multi, single, ffi
}
criterion_main!(benches);
