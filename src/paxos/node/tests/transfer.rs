//! Leadership transfer: the target catches up, the leader steps down and
//! the target stands at once; leases are released, not waited out.

use super::*;

impl Cluster {
    fn transfer(&mut self, i: usize, to: NodeId) -> Result<()> {
        let now = self.now;
        let r = self.nodes[i].as_mut().unwrap().transfer_leadership(to, now);
        self.drain(i);
        r
    }
}

#[test]
fn the_target_leads_within_a_round_trip_and_no_command_is_lost() {
    for seed in 0..10 {
        // Leases on (200 ms): a transfer that waited them out would take
        // far longer than the bound below.
        let mut c = Cluster::new(3, seed, |_| {});
        let l = c.elect();
        for k in 0..10 {
            c.propose(l, cmd(k));
        }
        let to = ((l + 1) % 3) as NodeId + 1;
        c.transfer(l, to).unwrap();
        // Proposed while the transfer is under way: they wait, then go to
        // the new leader.
        for k in 10..15 {
            c.propose(l, cmd(k));
        }
        let start = c.now;
        assert!(c.run_until(10_000, |c| {
            c.leader().is_some_and(|x| x == (to - 1) as usize)
        }));
        let took = c.now - start;
        assert!(
            took < 60 * MS,
            "seed {seed}: the hand-over took {} ms",
            took / MS
        );
        assert!(!c.node(l).is_leader());
        assert!(c.run_until(10_000, |c| (0..3).all(|i| c.commands(i).len() == 15)));
        c.check_agreement();
        let mut got = c.commands(0);
        got.sort();
        let mut want: Vec<Command> = (0..15).map(cmd).collect();
        want.sort();
        assert_eq!(got, want, "seed {seed}");
    }
}

#[test]
fn a_transfer_is_refused_where_it_cannot_work() {
    let mut c = Cluster::new(3, 4, |_| {});
    let l = c.elect();
    let me = l as NodeId + 1;
    let f = (l + 1) % 3;
    let e = c.transfer(f, me).unwrap_err();
    assert!(matches!(e, Error::NotLeader { leader: Some(_) }), "{e}");
    for bad in [me, 9] {
        let e = c.transfer(l, bad).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{bad}: {e}");
    }
    // Not during a membership change, nor two at once.
    let now = c.now;
    let joiner = Node::join(
        Config {
            id: 4,
            ..c.configs[l].clone()
        },
        MemoryStorage::new(),
        now,
    )
    .unwrap();
    c.configs.push(Config {
        id: 4,
        ..c.configs[l].clone()
    });
    c.nodes.push(Some(joiner));
    c.parked.push(None);
    c.decided.push(Vec::new());
    c.leader_changes.push(Vec::new());
    c.memberships.push(Vec::new());
    c.joined.push(true);
    c.nodes[l]
        .as_mut()
        .unwrap()
        .change_membership(MembershipChange::AddLearner(4), now)
        .unwrap();
    c.drain(l);
    let e = c.transfer(l, f as NodeId + 1).unwrap_err();
    assert!(e.to_string().contains("membership"), "{e}");
    // A learner is not a voter.
    assert!(c.run_until(10_000, |c| {
        c.alive().iter().all(|&i| c.node(i).membership().epoch == 1)
    }));
    let l = c.elect();
    let e = c.transfer(l, 4).unwrap_err();
    assert!(e.to_string().contains("not a voter"), "{e}");
    let to = (0..3).find(|&i| i != l).unwrap() as NodeId + 1;
    c.transfer(l, to).unwrap();
    let e = c.transfer(l, to).unwrap_err();
    assert!(
        matches!(e, Error::InvalidArgument(_) | Error::NotLeader { .. }),
        "{e}"
    );
}

#[test]
fn a_target_that_cannot_catch_up_is_given_up_and_the_leader_carries_on() {
    let mut c = Cluster::new(3, 8, |_| {});
    let l = c.elect();
    let down = (l + 1) % 3;
    c.crash(down);
    c.transfer(l, down as NodeId + 1).unwrap();
    c.propose(l, cmd(1));
    // Held while the transfer waits...
    c.run_for(50 * MS);
    assert!(!c.commands(l).contains(&cmd(1)));
    assert!(c.node(l).is_leader());
    // ...then, an election timeout later, given up: the leader proposes.
    assert!(c.run_until(10_000, |c| c.commands(l).contains(&cmd(1))));
    assert!(c.node(l).is_leader(), "the leader stayed");
}

#[test]
fn a_stale_handoff_releases_nothing() {
    let mut c = Cluster::new(3, 12, |_| {});
    let l = c.elect();
    let f = (l + 1) % 3;
    let old = c.node(l).ballot();
    let now = c.now;
    // A Handoff with an older ballot than the follower promised.
    let node = c.nodes[f].as_mut().unwrap();
    let leader = l as NodeId + 1;
    assert_eq!(node.lease_promise_to, Some(leader));
    let stale = Ballot::new(old.round - 1, old.node);
    node.step(
        l as NodeId + 1,
        Message::Handoff {
            ballot: stale,
            to: f as NodeId + 1,
        },
        now,
    )
    .unwrap();
    assert_eq!(node.lease_promise_to, Some(leader));
    assert!(!node.is_candidate());
    // From someone who is not the ballot's leader: ignored too.
    let other = ((l + 2) % 3) as NodeId + 1;
    node.step(
        other,
        Message::Handoff {
            ballot: old,
            to: f as NodeId + 1,
        },
        now,
    )
    .unwrap();
    assert_eq!(node.lease_promise_to, Some(leader));
    assert!(!node.is_candidate());
}
