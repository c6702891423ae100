//! Hand-driven tests of the two-phase commit machines: each checks one
//! rule (persist before send, timeouts, recovery, duplicates, bad input).

use super::*;
use crate::error::Error;

type C = Coordinator<MemoryTxnStorage>;
type P = Participant<MemoryTxnStorage>;

fn cfg() -> TxnConfig {
    TxnConfig {
        vote_timeout: 100,
        retry_interval: 10,
        cooperative: true,
    }
}

fn drain_c(c: &mut C) -> Vec<Output> {
    std::iter::from_fn(|| c.poll()).collect()
}
fn drain_p(p: &mut P) -> Vec<Output> {
    std::iter::from_fn(|| p.poll()).collect()
}
fn sends(out: &[Output]) -> Vec<(ProcessId, Message)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { to, message } => Some((*to, message.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn commit_when_all_vote_yes_and_decision_is_persisted_first() {
    let mut c = C::new(0, cfg(), MemoryTxnStorage::new(), 0).unwrap();
    c.begin(7, vec![1, 2], 0).unwrap();
    let out = drain_c(&mut c);
    assert_eq!(out[0], Output::Persisted { records: 1 });
    assert_eq!(sends(&out).len(), 2);
    c.step(1, Message::Vote { txn: 7, yes: true }, 1).unwrap();
    assert!(drain_c(&mut c).is_empty());
    assert_eq!(c.decision(7).unwrap(), None);
    c.step(2, Message::Vote { txn: 7, yes: true }, 2).unwrap();
    let out = drain_c(&mut c);
    assert_eq!(out[0], Output::Persisted { records: 1 });
    assert_eq!(
        sends(&out),
        vec![
            (
                1,
                Message::Outcome {
                    txn: 7,
                    commit: true
                }
            ),
            (
                2,
                Message::Outcome {
                    txn: 7,
                    commit: true
                }
            )
        ]
    );
    assert_eq!(
        out.last(),
        Some(&Output::Outcome {
            txn: 7,
            commit: true
        })
    );
    assert_eq!(
        c.storage().records().last(),
        Some(&Record::Decision {
            txn: 7,
            commit: true
        })
    );
    // A duplicate vote is answered with the decision, not re-decided.
    c.step(2, Message::Vote { txn: 7, yes: true }, 3).unwrap();
    assert_eq!(
        drain_c(&mut c),
        vec![Output::Send {
            to: 2,
            message: Message::Outcome {
                txn: 7,
                commit: true
            }
        }]
    );
}

#[test]
fn one_no_vote_or_a_timeout_aborts() {
    let mut c = C::new(0, cfg(), MemoryTxnStorage::new(), 0).unwrap();
    c.begin(1, vec![1, 2], 0).unwrap();
    c.step(1, Message::Vote { txn: 1, yes: false }, 1).unwrap();
    assert_eq!(c.decision(1).unwrap(), Some(false));
    c.begin(2, vec![1, 2], 0).unwrap();
    c.step(1, Message::Vote { txn: 2, yes: true }, 1).unwrap();
    drain_c(&mut c);
    // Before the timeout: Prepare is repeated to the silent participant only.
    c.tick(10).unwrap();
    assert_eq!(
        sends(&drain_c(&mut c)),
        vec![(
            2,
            Message::Prepare {
                txn: 2,
                participants: vec![1, 2],
                acceptors: vec![]
            }
        )]
    );
    assert_eq!(c.next_deadline(), Some(20));
    c.tick(100).unwrap();
    assert_eq!(c.decision(2).unwrap(), Some(false));
    assert_eq!(c.next_deadline(), None);
    // A late yes changes nothing.
    c.step(2, Message::Vote { txn: 2, yes: true }, 101).unwrap();
    assert_eq!(c.decision(2).unwrap(), Some(false));
}

#[test]
fn coordinator_restart_aborts_undecided_and_keeps_decisions() {
    let mut c = C::new(0, cfg(), MemoryTxnStorage::new(), 0).unwrap();
    c.begin(1, vec![1], 0).unwrap();
    c.begin(2, vec![1], 0).unwrap();
    c.step(1, Message::Vote { txn: 1, yes: true }, 1).unwrap();
    let mut disk = c.into_storage();
    disk.crash();
    let mut c = C::new(0, cfg(), disk, 5).unwrap();
    assert_eq!(c.decision(1).unwrap(), Some(true));
    assert_eq!(c.decision(2).unwrap(), Some(false));
    let out = drain_c(&mut c);
    assert!(out.contains(&Output::Outcome {
        txn: 2,
        commit: false
    }));
    // Presumed abort for a transaction never begun here.
    c.step(3, Message::DecisionRequest { txn: 99 }, 6).unwrap();
    assert_eq!(
        sends(&drain_c(&mut c)),
        vec![(
            3,
            Message::Outcome {
                txn: 99,
                commit: false
            }
        )]
    );
}

#[test]
fn coordinator_rejects_bad_input() {
    let mut c = C::new(0, cfg(), MemoryTxnStorage::new(), 0).unwrap();
    for bad in [vec![], vec![1, 1], vec![0, 1]] {
        assert!(matches!(c.begin(1, bad, 0), Err(Error::InvalidArgument(_))));
    }
    c.begin(1, vec![1], 0).unwrap();
    assert!(matches!(
        c.begin(1, vec![2], 0),
        Err(Error::InvalidArgument(_))
    ));
    assert!(c.decision(5).is_err());
    let zero = TxnConfig {
        vote_timeout: 0,
        ..cfg()
    };
    assert!(C::new(0, zero, MemoryTxnStorage::new(), 0).is_err());
    // Messages from strangers are ignored.
    c.step(9, Message::Vote { txn: 1, yes: true }, 1).unwrap();
    assert_eq!(c.decision(1).unwrap(), None);
}

fn prepared(p: &mut P, txn: TxnId) {
    p.step(
        0,
        Message::Prepare {
            txn,
            participants: vec![1, 2, 3],
            acceptors: vec![],
        },
        0,
    )
    .unwrap();
    assert_eq!(drain_p(p), vec![Output::VoteRequested { txn }]);
    p.vote(txn, true, 0).unwrap();
    let out = drain_p(p);
    assert_eq!(out[0], Output::Persisted { records: 1 });
    assert_eq!(sends(&out), vec![(0, Message::Vote { txn, yes: true })]);
}

#[test]
fn participant_in_doubt_asks_coordinator_then_peers_and_survives_restart() {
    let mut p = P::new(1, cfg(), MemoryTxnStorage::new(), 0).unwrap();
    prepared(&mut p, 4);
    assert_eq!(p.state(4), TxnState::Prepared);
    assert!(matches!(
        p.vote(4, false, 1),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(p.next_deadline(), Some(100));
    p.tick(100).unwrap();
    let asked: Vec<ProcessId> = sends(&drain_p(&mut p)).iter().map(|s| s.0).collect();
    assert_eq!(asked, vec![0, 2, 3]);
    // Crash: the yes vote binds it still.
    let mut p = P::new(1, cfg(), p.into_storage(), 200).unwrap();
    assert_eq!(p.in_doubt(), vec![4]);
    // A peer that is in doubt too does not answer; one that knows does.
    p.step(
        2,
        Message::Outcome {
            txn: 4,
            commit: true,
        },
        201,
    )
    .unwrap();
    assert_eq!(p.state(4), TxnState::Committed);
    assert_eq!(
        drain_p(&mut p),
        vec![
            Output::Persisted { records: 1 },
            Output::Outcome {
                txn: 4,
                commit: true
            }
        ]
    );
    // Duplicates of the outcome are harmless.
    p.step(
        0,
        Message::Outcome {
            txn: 4,
            commit: true,
        },
        202,
    )
    .unwrap();
    assert!(drain_p(&mut p).is_empty());
    let p = P::new(1, cfg(), p.into_storage(), 300).unwrap();
    assert_eq!(p.state(4), TxnState::Committed);
    assert_eq!(p.next_deadline(), None);
}

#[test]
fn participant_that_has_not_voted_aborts_when_a_peer_asks() {
    let mut p = P::new(2, cfg(), MemoryTxnStorage::new(), 0).unwrap();
    p.step(1, Message::DecisionRequest { txn: 8 }, 0).unwrap();
    let out = drain_p(&mut p);
    assert!(out.contains(&Output::Outcome {
        txn: 8,
        commit: false
    }));
    assert_eq!(
        sends(&out),
        vec![(
            1,
            Message::Outcome {
                txn: 8,
                commit: false
            }
        )]
    );
    // The Prepare that arrives later gets a no vote, and no vote request.
    p.step(
        0,
        Message::Prepare {
            txn: 8,
            participants: vec![1, 2],
            acceptors: vec![],
        },
        1,
    )
    .unwrap();
    assert_eq!(
        drain_p(&mut p),
        vec![Output::Send {
            to: 0,
            message: Message::Vote { txn: 8, yes: false }
        }]
    );
    // A commit it never voted for is not believed.
    let mut q = P::new(3, cfg(), MemoryTxnStorage::new(), 0).unwrap();
    q.step(
        0,
        Message::Outcome {
            txn: 1,
            commit: true,
        },
        0,
    )
    .unwrap();
    assert_eq!(q.state(1), TxnState::Unknown);
    assert!(matches!(q.vote(1, true, 0), Err(Error::InvalidArgument(_))));
}

#[test]
fn paxos_commit_commits_without_the_coordinator() {
    use crate::txn::paxos_commit::{PcAcceptor, PcParticipant};
    // Two participants, three acceptors (F = 1); the coordinator (0) sent
    // Prepare and vanished. Messages are carried by hand, in order.
    let acceptors = vec![10, 11, 12];
    let mut rms: Vec<PcParticipant<MemoryTxnStorage>> = (1..=2)
        .map(|id| PcParticipant::new(id, cfg(), MemoryTxnStorage::new(), 0).unwrap())
        .collect();
    let mut accs: Vec<PcAcceptor<MemoryTxnStorage>> = acceptors
        .iter()
        .map(|&a| PcAcceptor::new(a, MemoryTxnStorage::new()).unwrap())
        .collect();
    let prepare = Message::Prepare {
        txn: 1,
        participants: vec![1, 2],
        acceptors: acceptors.clone(),
    };
    for rm in rms.iter_mut() {
        rm.step(0, prepare.clone(), 0).unwrap();
        while rm.poll().is_some() {}
        rm.vote(1, true, 0).unwrap();
    }
    // Acceptor 12 is down: deliver to 10 and 11 only, until quiet.
    let mut now = 0;
    for _ in 0..50 {
        now += 5;
        let mut mail: Vec<(ProcessId, ProcessId, Message)> = Vec::new();
        for rm in rms.iter_mut() {
            rm.tick(now).unwrap();
            let id = rm.id();
            while let Some(o) = rm.poll() {
                if let Output::Send { to, message } = o {
                    mail.push((id, to, message));
                }
            }
        }
        for a in accs.iter_mut() {
            while let Some(o) = a.poll() {
                if let Output::Send { to, message } = o {
                    mail.push((a.id(), to, message));
                }
            }
        }
        for (from, to, m) in mail {
            if let Some(a) = accs.iter_mut().find(|a| a.id() == to && to != 12) {
                a.step(from, m, now).unwrap();
            } else if let Some(r) = rms.iter_mut().find(|r| r.id() == to) {
                r.step(from, m, now).unwrap();
            }
        }
    }
    for rm in &rms {
        assert_eq!(rm.state(1), TxnState::Committed);
    }
}
