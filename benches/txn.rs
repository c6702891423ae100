//! Atomic commitment benchmarks: the in-process cost of one whole
//! transaction — fresh machines, every message carried through a queue,
//! every record appended to memory storage — for two-phase commit with 3
//! participants (with and without the byte encoding on every message) and
//! for Paxos Commit with 3 participants and 3 acceptors (F = 1). No
//! network, no fsync: this is the protocol logic's own cost.

use std::collections::VecDeque;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use quorumkit::txn::{
    Coordinator, MemoryTxnStorage, Message, Output, Participant, PcAcceptor, PcCoordinator,
    PcParticipant, ProcessId, TxnConfig, wire,
};

const PARTS: [ProcessId; 3] = [1, 2, 3];
const ACCS: [ProcessId; 3] = [4, 5, 6];

/// One 2PC transaction, all yes; returns how many participants committed.
fn two_phase(encode: bool) -> usize {
    let cfg = TxnConfig::default();
    let mut c = Coordinator::new(0, cfg, MemoryTxnStorage::new(), 0).unwrap();
    let mut ps: Vec<Participant<MemoryTxnStorage>> = PARTS
        .iter()
        .map(|&id| Participant::new(id, cfg, MemoryTxnStorage::new(), 0).unwrap())
        .collect();
    let mut q: VecDeque<(ProcessId, ProcessId, Message)> = VecDeque::new();
    c.begin(1, PARTS.to_vec(), 0).unwrap();
    let mut committed = 0;
    let mut pump = |from: ProcessId, o: Output, q: &mut VecDeque<_>, votes: &mut Vec<u64>| match o {
        Output::Send { to, message } => {
            let m = if encode {
                wire::decode(&wire::encode(&message)).unwrap()
            } else {
                message
            };
            q.push_back((from, to, m));
        }
        Output::VoteRequested { txn } => votes.push(txn),
        Output::Outcome { commit: true, .. } if from != 0 => committed += 1,
        _ => {}
    };
    let mut votes = Vec::new();
    while let Some(o) = c.poll() {
        pump(0, o, &mut q, &mut votes);
    }
    while let Some((from, to, m)) = q.pop_front() {
        if to == 0 {
            c.step(from, m, 1).unwrap();
            while let Some(o) = c.poll() {
                pump(0, o, &mut q, &mut votes);
            }
        } else {
            let p = &mut ps[(to - 1) as usize];
            p.step(from, m, 1).unwrap();
            loop {
                while let Some(o) = p.poll() {
                    pump(to, o, &mut q, &mut votes);
                }
                match votes.pop() {
                    Some(txn) => p.vote(txn, true, 1).unwrap(),
                    None => break,
                }
            }
        }
    }
    committed
}

/// One Paxos Commit transaction, all yes, no failures.
fn paxos_commit() -> usize {
    let cfg = TxnConfig::default();
    let mut c = PcCoordinator::new(0, cfg, MemoryTxnStorage::new(), 0).unwrap();
    let mut ps: Vec<PcParticipant<MemoryTxnStorage>> = PARTS
        .iter()
        .map(|&id| PcParticipant::new(id, cfg, MemoryTxnStorage::new(), 0).unwrap())
        .collect();
    let mut accs: Vec<PcAcceptor<MemoryTxnStorage>> = ACCS
        .iter()
        .map(|&id| PcAcceptor::new(id, MemoryTxnStorage::new()).unwrap())
        .collect();
    let mut q: VecDeque<(ProcessId, ProcessId, Message)> = VecDeque::new();
    c.begin(1, PARTS.to_vec(), ACCS.to_vec(), 0).unwrap();
    let mut committed = 0;
    let mut votes = Vec::new();
    let mut pump = |from: ProcessId, o: Output, q: &mut VecDeque<_>, votes: &mut Vec<u64>| match o {
        Output::Send { to, message } => q.push_back((from, to, message)),
        Output::VoteRequested { txn } => votes.push(txn),
        Output::Outcome { commit: true, .. } if PARTS.contains(&from) => committed += 1,
        _ => {}
    };
    while let Some(o) = c.poll() {
        pump(0, o, &mut q, &mut votes);
    }
    while let Some((from, to, m)) = q.pop_front() {
        if to == 0 {
            c.step(from, m, 1).unwrap();
            while let Some(o) = c.poll() {
                pump(0, o, &mut q, &mut votes);
            }
        } else if let Some(p) = ps.iter_mut().find(|p| p.id() == to) {
            p.step(from, m, 1).unwrap();
            loop {
                while let Some(o) = p.poll() {
                    pump(to, o, &mut q, &mut votes);
                }
                match votes.pop() {
                    Some(txn) => p.vote(txn, true, 1).unwrap(),
                    None => break,
                }
            }
        } else {
            let a = accs.iter_mut().find(|a| a.id() == to).unwrap();
            a.step(from, m, 1).unwrap();
            while let Some(o) = a.poll() {
                pump(to, o, &mut q, &mut votes);
            }
        }
    }
    committed
}

fn txn(c: &mut Criterion) {
    assert_eq!(two_phase(false), 3);
    assert_eq!(two_phase(true), 3);
    assert_eq!(paxos_commit(), 3);
    let mut g = c.benchmark_group("txn");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("2pc transaction (3 participants)", |b| {
        b.iter(|| black_box(two_phase(false)))
    });
    g.bench_function("2pc transaction (3 participants, messages encoded)", |b| {
        b.iter(|| black_box(two_phase(true)))
    });
    g.bench_function(
        "paxos commit transaction (3 participants, 3 acceptors)",
        |b| b.iter(|| black_box(paxos_commit())),
    );
    g.finish();
}

criterion_group!(benches, txn);
criterion_main!(benches);
