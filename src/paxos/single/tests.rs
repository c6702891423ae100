use super::*;

fn b(round: u64, node: NodeId) -> Ballot {
    Ballot::new(round, node)
}

fn v(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

#[test]
fn acceptor_promises_higher_ballots_and_nacks_lower() {
    let mut a = Acceptor::new();
    let (rec, msg) = a.on_prepare(b(2, 1));
    assert_eq!(rec, Some(Record::Promise { ballot: b(2, 1) }));
    assert_eq!(
        msg,
        Msg::Promise {
            ballot: b(2, 1),
            accepted: None
        }
    );
    // A duplicate of the promised ballot is promised again, with nothing new
    // to persist.
    let (rec, msg) = a.on_prepare(b(2, 1));
    assert_eq!(rec, None);
    assert!(matches!(msg, Msg::Promise { ballot, .. } if ballot == b(2, 1)));
    // Lower ballots (same round, lower node; lower round) are refused.
    for low in [b(2, 0), b(1, 9), Ballot::ZERO] {
        let (rec, msg) = a.on_prepare(low);
        assert_eq!(rec, None);
        assert_eq!(
            msg,
            Msg::Nack {
                ballot: low,
                promised: b(2, 1)
            }
        );
    }
    assert_eq!(a.promised(), b(2, 1));
}

#[test]
fn acceptor_accepts_at_or_above_promise_only() {
    let mut a = Acceptor::new();
    a.on_prepare(b(3, 1));
    let (rec, msg) = a.on_accept(b(2, 2), v("low"));
    assert_eq!(rec, None);
    assert_eq!(
        msg,
        Msg::Nack {
            ballot: b(2, 2),
            promised: b(3, 1)
        }
    );
    assert_eq!(a.accepted(), None);

    let (rec, msg) = a.on_accept(b(3, 1), v("x"));
    assert_eq!(
        rec,
        Some(Record::Accept {
            slot: 0,
            ballot: b(3, 1),
            batch: vec![v("x")]
        })
    );
    assert_eq!(
        msg,
        Msg::Accepted {
            ballot: b(3, 1),
            value: v("x")
        }
    );
    // Duplicate accept: same answer, nothing new to persist.
    let (rec, msg2) = a.on_accept(b(3, 1), v("x"));
    assert_eq!(rec, None);
    assert_eq!(msg2, msg);

    // Accepting a higher ballot without a prepare raises the promise.
    let (rec, _) = a.on_accept(b(5, 2), v("y"));
    assert!(rec.is_some());
    assert_eq!(a.promised(), b(5, 2));
    assert_eq!(a.accepted(), Some(&(b(5, 2), v("y"))));
    let (_, msg) = a.on_prepare(b(4, 9));
    assert!(matches!(msg, Msg::Nack { promised, .. } if promised == b(5, 2)));
    // A later promise reports the last accepted value.
    let (_, msg) = a.on_prepare(b(6, 1));
    assert_eq!(
        msg,
        Msg::Promise {
            ballot: b(6, 1),
            accepted: Some((b(5, 2), v("y")))
        }
    );
}

#[test]
fn acceptor_restores_from_its_records() {
    let mut a = Acceptor::new();
    let mut log = Vec::new();
    for (rec, _) in [
        a.on_prepare(b(1, 1)),
        a.on_accept(b(1, 1), v("a")),
        a.on_prepare(b(4, 2)),
        a.on_prepare(b(3, 3)),
    ] {
        log.extend(rec);
    }
    log.push(Record::Commit { commit: 1 });
    let r = Acceptor::restore(&log).unwrap();
    assert_eq!(r, a);
    assert_eq!(r.promised(), b(4, 2));
    assert_eq!(r.accepted(), Some(&(b(1, 1), v("a"))));
    // A multi-slot record is refused.
    let bad = [Record::Accept {
        slot: 3,
        ballot: b(1, 1),
        batch: vec![v("a")],
    }];
    assert!(matches!(
        Acceptor::restore(&bad),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn forget_promise_fault_accepts_below_the_promise() {
    let mut a = Acceptor::new();
    a.set_fault(Fault::ForgetPromise);
    a.on_prepare(b(3, 1));
    let (rec, msg) = a.on_accept(b(2, 2), v("low"));
    assert!(rec.is_some());
    assert!(matches!(msg, Msg::Accepted { .. }));
}

#[test]
fn proposer_runs_both_phases_with_its_own_value() {
    let mut p = Proposer::new(7, 2);
    assert_eq!(p.prepare(), None, "no value yet");
    let prep = p.start(v("mine"));
    assert_eq!(prep, Msg::Prepare { ballot: b(1, 7) });
    assert_eq!(p.phase(), Phase::Preparing);
    assert_eq!(p.on_promise(1, b(1, 7), None), None);
    // A duplicate promise from the same acceptor is not a second vote.
    assert_eq!(p.on_promise(1, b(1, 7), None), None);
    // A promise for another ballot does not count.
    assert_eq!(p.on_promise(2, b(0, 7), None), None);
    let acc = p.on_promise(3, b(1, 7), None);
    assert_eq!(
        acc,
        Some(Msg::Accept {
            ballot: b(1, 7),
            value: v("mine")
        })
    );
    assert_eq!(p.phase(), Phase::Accepting);
    assert_eq!(p.proposal(), Some(&b"mine"[..]));
    // Late promises after phase 2 began send nothing more.
    assert_eq!(p.on_promise(2, b(1, 7), None), None);
}

#[test]
fn proposer_adopts_the_highest_ballot_accepted_value() {
    let mut p = Proposer::new(1, 3);
    p.start(v("own"));
    let bal = p.ballot();
    assert_eq!(p.on_promise(10, bal, Some((b(1, 3), v("old")))), None);
    assert_eq!(p.on_promise(11, bal, None), None);
    // The highest accepted ballot wins, whatever the arrival order.
    let acc = p.on_promise(12, bal, Some((b(1, 9), v("newer"))));
    assert_eq!(
        acc,
        Some(Msg::Accept {
            ballot: bal,
            value: v("newer")
        })
    );

    let mut p = Proposer::new(1, 2);
    p.start(v("own"));
    let bal = p.ballot();
    p.on_promise(10, bal, Some((b(1, 9), v("newer"))));
    let acc = p.on_promise(11, bal, Some((b(1, 3), v("old"))));
    assert_eq!(
        acc,
        Some(Msg::Accept {
            ballot: bal,
            value: v("newer")
        })
    );
}

#[test]
fn ignore_accepted_fault_proposes_its_own_value() {
    let mut p = Proposer::new(1, 1);
    p.set_fault(Fault::IgnoreAccepted);
    p.start(v("own"));
    let acc = p.on_promise(2, p.ballot(), Some((b(1, 2), v("theirs"))));
    assert!(matches!(acc, Some(Msg::Accept { value, .. }) if value == v("own")));
}

#[test]
fn proposer_nack_abandons_the_ballot_and_the_retry_exceeds_the_promise() {
    let mut p = Proposer::new(2, 2);
    p.start(v("x"));
    assert_eq!(p.ballot(), b(1, 2));
    // A nack for an older ballot only teaches the higher ballot.
    assert!(!p.on_nack(b(0, 2), b(1, 1)));
    assert_eq!(p.phase(), Phase::Preparing);
    assert!(p.on_nack(b(1, 2), b(5, 3)));
    assert_eq!(p.phase(), Phase::Idle);
    // Promises for the abandoned ballot are ignored.
    assert_eq!(p.on_promise(1, b(1, 2), None), None);
    assert_eq!(p.on_promise(3, b(1, 2), None), None);
    let prep = p.prepare().unwrap();
    assert_eq!(prep, Msg::Prepare { ballot: b(6, 2) });
    assert!(b(6, 2) > b(5, 3));
    // A retry while in progress also moves on to a higher ballot and drops
    // the promises collected so far.
    p.on_promise(1, b(6, 2), None);
    let prep = p.prepare().unwrap();
    assert_eq!(prep, Msg::Prepare { ballot: b(7, 2) });
    assert_eq!(p.on_promise(3, b(7, 2), None), None);
    assert!(p.on_promise(1, b(7, 2), None).is_some());
    // A nack in phase 2 abandons the ballot too.
    assert!(p.on_nack(b(7, 2), b(8, 1)));
    assert_eq!(p.prepare(), Some(Msg::Prepare { ballot: b(9, 2) }));
}

#[test]
fn learner_needs_a_majority_in_one_ballot() {
    let mut l = Learner::new(2);
    assert_eq!(l.on_accepted(1, b(1, 1), v("a")), None);
    // Same acceptor again: a duplicate, not a majority.
    assert_eq!(l.on_accepted(1, b(1, 1), v("a")), None);
    // A different ballot does not add to ballot 1.1.
    assert_eq!(l.on_accepted(2, b(2, 2), v("a")), None);
    assert_eq!(l.chosen(), None);
    assert_eq!(l.on_accepted(2, b(1, 1), v("a")), Some(v("a")));
    assert_eq!(l.chosen(), Some(&b"a"[..]));
    // Reported once; later majorities (even, wrongly, for another value)
    // never change it.
    assert_eq!(l.on_accepted(3, b(1, 1), v("a")), None);
    assert_eq!(l.on_accepted(1, b(3, 3), v("b")), None);
    assert_eq!(l.on_accepted(3, b(3, 3), v("b")), None);
    assert_eq!(l.chosen(), Some(&b"a"[..]));
}

#[test]
fn learner_ignores_a_second_value_in_the_same_ballot() {
    let mut l = Learner::new(2);
    l.on_accepted(1, b(1, 1), v("a"));
    assert_eq!(l.on_accepted(2, b(1, 1), v("z")), None);
    assert_eq!(l.on_accepted(3, b(1, 1), v("a")), Some(v("a")));
}

/// Three acceptors, two proposers; the second proposer's ballot interrupts
/// after one acceptor accepted the first value, and must carry it forward
/// once that value could have been chosen.
#[test]
fn roles_together_second_proposer_carries_the_chosen_value() {
    let mut acc: Vec<Acceptor> = (0..3).map(|_| Acceptor::new()).collect();
    let mut p1 = Proposer::new(1, 2);
    let mut p2 = Proposer::new(2, 2);
    let mut l = Learner::new(2);

    let Msg::Prepare { ballot: b1 } = p1.start(v("one")) else {
        unreachable!()
    };
    let mut accept = None;
    for (i, a) in acc.iter_mut().enumerate().take(2) {
        if let (_, Msg::Promise { ballot, accepted }) = a.on_prepare(b1) {
            accept = accept.or(p1.on_promise(i as NodeId, ballot, accepted));
        }
    }
    let Some(Msg::Accept { ballot, value }) = accept else {
        panic!("p1 should reach phase 2")
    };
    // Acceptors 0 and 1 accept: "one" is chosen.
    for (i, a) in acc.iter_mut().enumerate().take(2) {
        if let (_, Msg::Accepted { ballot, value }) = a.on_accept(ballot, value.clone()) {
            l.on_accepted(i as NodeId, ballot, value);
        }
    }
    assert_eq!(l.chosen(), Some(&b"one"[..]));

    // p2 prepares at acceptors 1 and 2 (1 accepted "one").
    p2.observe(b1);
    let Msg::Prepare { ballot: b2 } = p2.start(v("two")) else {
        unreachable!()
    };
    assert!(b2 > b1);
    let mut accept = None;
    for i in [2usize, 1] {
        if let (_, Msg::Promise { ballot, accepted }) = acc[i].on_prepare(b2) {
            accept = accept.or(p2.on_promise(i as NodeId, ballot, accepted));
        }
    }
    assert_eq!(
        accept,
        Some(Msg::Accept {
            ballot: b2,
            value: v("one")
        })
    );
    // p1's stale accept at acceptor 2 is now refused.
    let (_, msg) = acc[2].on_accept(b1, v("one"));
    assert!(matches!(msg, Msg::Nack { promised, .. } if promised == b2));
}

// ---- SingleDecree: a tiny lossless driver over the sans-IO node --------

struct Cluster {
    nodes: Vec<SingleDecree>,
    /// (from, to, msg) in flight.
    wire: VecDeque<(NodeId, NodeId, Msg)>,
    chosen: Vec<Option<Vec<u8>>>,
    persisted: Vec<Vec<Record>>,
}

impl Cluster {
    fn new(n: u32, seed: u64) -> Self {
        let members: Vec<NodeId> = (1..=n).collect();
        let nodes = members
            .iter()
            .map(|&id| {
                let mut c = Config::new(id, members.clone());
                c.seed = seed;
                SingleDecree::new(c).unwrap()
            })
            .collect();
        Cluster {
            nodes,
            wire: VecDeque::new(),
            chosen: vec![None; n as usize],
            persisted: vec![Vec::new(); n as usize],
        }
    }

    fn drain(&mut self) {
        for (i, node) in self.nodes.iter_mut().enumerate() {
            let from = node.config().id;
            while let Some(out) = node.poll() {
                match out {
                    Output::Persist(r) => self.persisted[i].push(r),
                    Output::Send { to, msg } => self.wire.push_back((from, to, msg)),
                    Output::Chosen(v) => {
                        assert!(self.chosen[i].is_none(), "chosen reported twice");
                        self.chosen[i] = Some(v);
                    }
                }
            }
        }
    }

    /// Delivers messages, dropping those `drop` picks, until the wire is empty.
    fn run(&mut self, now: u64, mut drop: impl FnMut(NodeId, NodeId, &Msg) -> bool) {
        self.drain();
        while let Some((from, to, msg)) = self.wire.pop_front() {
            if drop(from, to, &msg) {
                continue;
            }
            self.nodes[(to - 1) as usize].step(from, msg, now);
            self.drain();
        }
    }
}

#[test]
fn single_decree_cluster_chooses_one_value() {
    let mut c = Cluster::new(3, 1);
    c.nodes[0].propose(v("a"), 0);
    c.nodes[2].propose(v("c"), 0);
    c.run(0, |_, _, _| false);
    let first = c.chosen[0].clone().expect("node 1 learned");
    for ch in &c.chosen {
        assert_eq!(ch.as_ref(), Some(&first));
    }
    assert!(first == v("a") || first == v("c"));
    for n in &c.nodes {
        assert_eq!(n.next_deadline(), None);
    }
}

#[test]
fn single_decree_retries_after_loss_and_restarts_from_records() {
    let mut c = Cluster::new(3, 9);
    c.nodes[0].propose(v("a"), 0);
    // Everything node 1 sends is lost: nothing is chosen.
    c.run(0, |from, _, _| from == 1);
    assert!(c.chosen.iter().all(Option::is_none));
    let deadline = c.nodes[0].next_deadline().expect("a retry is armed");
    assert!((50_000_000..=100_000_000).contains(&deadline));
    c.nodes[0].tick(deadline - 1);
    c.run(deadline - 1, |_, _, _| false);
    assert!(c.chosen.iter().all(Option::is_none), "not due yet");
    // Node 1 restarts from its records before the retry: its new ballot
    // must still exceed the old one.
    let old_ballot = c.nodes[0].proposer().ballot();
    let cfg = c.nodes[0].config().clone();
    c.nodes[0] = SingleDecree::restore(cfg, &c.persisted[0]).unwrap();
    assert_eq!(c.nodes[0].acceptor().promised(), old_ballot);
    c.nodes[0].propose(v("a2"), deadline);
    assert!(c.nodes[0].proposer().ballot() > old_ballot);
    c.run(deadline, |_, _, _| false);
    for ch in &c.chosen {
        assert_eq!(ch.as_deref(), Some(&b"a2"[..]));
    }
    // The chosen value survives a restart.
    let cfg = c.nodes[1].config().clone();
    let n = SingleDecree::restore(cfg, &c.persisted[1]).unwrap();
    assert_eq!(n.chosen(), Some(&b"a2"[..]));
}

#[test]
fn single_decree_competing_proposers_converge_with_backoff() {
    for seed in 0..20u64 {
        let mut c = Cluster::new(5, seed);
        for i in 0..5 {
            c.nodes[i].propose(vec![i as u8], 0);
        }
        // Deliver with a seeded pattern of loss, then let timers fire until
        // everyone knows the value.
        let mut rng = SplitMix64::new(seed);
        let mut now = 0;
        for round in 0..200 {
            c.run(now, |_, _, _| rng.chance(300_000));
            if c.chosen.iter().all(Option::is_some) {
                break;
            }
            now = c
                .nodes
                .iter()
                .filter_map(SingleDecree::next_deadline)
                .min()
                .unwrap_or_else(|| panic!("seed {seed}: stuck in round {round}"));
            for n in &mut c.nodes {
                n.tick(now);
            }
        }
        let first = c.chosen.iter().flatten().next().cloned();
        // Nodes that never proposed may miss the value after losses; all
        // here proposed, so all learn it.
        for ch in &c.chosen {
            assert_eq!(ch, &first, "seed {seed}");
        }
        assert!(first.is_some(), "seed {seed}: nothing chosen");
    }
}

#[test]
fn single_decree_rejects_bad_configs() {
    let bad = [
        Config::new(4, vec![1, 2, 3]),
        Config::new(1, vec![]),
        Config::new(1, vec![1, 1, 2]),
        Config {
            min_retry: 0,
            ..Config::new(1, vec![1])
        },
        Config {
            min_retry: 10,
            max_retry: 5,
            ..Config::new(1, vec![1])
        },
    ];
    for cfg in bad {
        assert!(matches!(
            SingleDecree::new(cfg.clone()),
            Err(Error::InvalidArgument(_))
        ));
    }
    // One node alone chooses at once.
    let mut n = SingleDecree::new(Config::new(1, vec![1])).unwrap();
    n.propose(v("solo"), 0);
    assert_eq!(n.chosen(), Some(&b"solo"[..]));
}
