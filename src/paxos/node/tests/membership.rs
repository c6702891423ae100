//! Membership changes: learners, promotion, removal, replacement, and the
//! epochs that keep two member sets from deciding the same slot.

use super::*;
use crate::paxos::membership::{EPOCH_SHIFT, change_value};

impl Cluster {
    /// Starts a new replica (id = its index + 1) with `Node::join`, knowing
    /// the voters of `from`'s membership.
    fn add_node(&mut self, from: usize) -> usize {
        let i = self.nodes.len();
        let id = i as NodeId + 1;
        let mut c = self.configs[from].clone();
        c.id = id;
        c.members = self.node(from).members().to_vec();
        c.seed ^= 0x5eed_0000 + u64::from(id);
        let node = Node::join(c.clone(), MemoryStorage::new(), self.now).unwrap();
        self.configs.push(c);
        self.nodes.push(Some(node));
        self.parked.push(None);
        self.decided.push(Vec::new());
        self.leader_changes.push(Vec::new());
        self.memberships.push(Vec::new());
        self.joined.push(true);
        i
    }

    fn change(&mut self, i: usize, change: MembershipChange) -> Result<()> {
        let now = self.now;
        let r = self.nodes[i]
            .as_mut()
            .unwrap()
            .change_membership(change, now);
        self.drain(i);
        r
    }

    /// Runs until every live node's membership is `epoch`.
    fn settle(&mut self, epoch: u64) {
        let ok = self.run_until(20_000, |c| {
            c.alive()
                .iter()
                .all(|&i| c.node(i).membership().epoch == epoch)
        });
        assert!(
            ok,
            "not every node reached epoch {epoch}: {:?}",
            self.epochs()
        );
    }

    fn epochs(&self) -> Vec<Option<u64>> {
        self.nodes
            .iter()
            .map(|n| n.as_ref().map(|n| n.membership().epoch))
            .collect()
    }

    /// Proposes `k` commands numbered from `first` at the leader and runs
    /// until node `i` delivered all of them.
    fn decide_at(&mut self, i: usize, first: u64, k: u64) {
        let l = self.elect();
        for c in first..first + k {
            self.propose(l, cmd(c));
        }
        let ok = self.run_until(20_000, |cl| {
            let got = cl.commands(i);
            (first..first + k).all(|c| got.contains(&cmd(c)))
        });
        if !ok {
            for (j, n) in self.nodes.iter().enumerate() {
                if let Some(n) = n {
                    eprintln!(
                        "node {}: epoch {} voters {:?} learners {:?} leader {:?} is_leader {} ballot {} commit {} known {} delivered {}",
                        j + 1,
                        n.membership().epoch,
                        n.members(),
                        n.learners(),
                        n.leader(),
                        n.is_leader(),
                        n.ballot(),
                        n.commit_index(),
                        n.known_commit(),
                        self.decided[j].len()
                    );
                }
            }
        }
        assert!(
            ok,
            "node {} did not deliver commands {first}..{}",
            i + 1,
            first + k
        );
    }
}

#[test]
fn a_learner_catches_up_is_promoted_votes_and_is_removed_again() {
    for seed in 0..20 {
        let mut c = Cluster::new(3, seed, |_| {});
        c.duplicate = 100_000;
        c.shuffle = seed % 2 == 1;
        c.decide_at(0, 0, 20);
        let l = c.elect();
        let d = c.add_node(l);
        assert!(!c.node(d).is_voter());
        // Not yet a member: nothing reaches it, it stands for nothing.
        c.run_for(300 * MS);
        assert!(c.decided[d].is_empty(), "seed {seed}");
        c.change(l, MembershipChange::AddLearner(4)).unwrap();
        c.settle(1);
        c.decide_at(d, 20, 10);
        assert_eq!(c.node(d).learners(), &[4], "seed {seed}");
        assert!(!c.node(d).is_voter());
        // The learner holds the whole log.
        assert!(c.commands(d).contains(&cmd(0)), "seed {seed}");
        let l = c.elect();
        c.change(l, MembershipChange::Promote(4)).unwrap();
        c.settle(2);
        for i in c.alive() {
            assert_eq!(c.node(i).members(), &[1, 2, 3, 4], "seed {seed}");
            assert!(c.node(i).learners().is_empty());
        }
        assert!(c.node(d).is_voter());
        // Four voters: a majority is three, so with two of the first three
        // down nothing is decided until one returns; with one down the
        // new voter's vote is needed and given.
        let l = c.elect();
        let down = (0..3).find(|&i| i != l).unwrap();
        c.crash(down);
        c.decide_at(d, 30, 5);
        c.restart(down);
        // Back to three: remove a voter that is not the leader.
        let l = c.elect();
        let gone = (0..4).find(|&i| i != l && i != d).unwrap();
        c.change(l, MembershipChange::Remove(gone as NodeId + 1))
            .unwrap();
        c.settle(3);
        let voters = c.node(l).members().to_vec();
        assert_eq!(voters.len(), 3);
        assert!(!voters.contains(&(gone as NodeId + 1)), "seed {seed}");
        // The removed replica learned it is out and takes no part.
        assert!(!c.node(gone).is_voter(), "seed {seed}");
        c.crash(gone);
        c.decide_at(d, 35, 5);
        c.check_agreement();
        // Every node reported the same memberships in the same order.
        let last: Vec<_> = c.memberships[l].iter().map(|m| m.epoch).collect();
        assert_eq!(last, vec![1, 2, 3], "seed {seed}");
    }
}

#[test]
fn a_failed_voter_is_replaced_and_the_cluster_survives_another_failure() {
    let mut c = Cluster::new(3, 7, |_| {});
    c.decide_at(0, 0, 10);
    let l = c.elect();
    let dead = (0..3).find(|&i| i != l).unwrap();
    c.crash(dead);
    let n = c.add_node(l);
    c.change(l, MembershipChange::AddLearner(n as NodeId + 1))
        .unwrap();
    c.settle(1);
    c.decide_at(n, 10, 5);
    let l = c.elect();
    c.change(
        l,
        MembershipChange::Replace {
            old: dead as NodeId + 1,
            new: n as NodeId + 1,
        },
    )
    .unwrap();
    c.settle(2);
    let mut voters = c.node(l).members().to_vec();
    voters.sort_unstable();
    let mut want: Vec<NodeId> = (1..=4).filter(|&v| v != dead as NodeId + 1).collect();
    want.sort_unstable();
    assert_eq!(voters, want);
    // Another voter fails (not the new one): two of three remain.
    let l = c.elect();
    let second = (0..3).find(|&i| i != l && i != dead).unwrap();
    c.crash(second);
    c.decide_at(n, 15, 5);
    c.check_agreement();
}

#[test]
fn dangerous_or_malformed_changes_are_refused_and_change_nothing() {
    let mut c = Cluster::new(3, 1, |_| {});
    let l = c.elect();
    let f = (0..3).find(|&i| i != l).unwrap();
    let e = c.change(f, MembershipChange::AddLearner(9)).unwrap_err();
    assert!(matches!(e, Error::NotLeader { leader: Some(_) }), "{e}");
    for bad in [
        MembershipChange::Remove(9),
        MembershipChange::Promote(2),
        MembershipChange::Promote(9),
        MembershipChange::AddLearner(1),
        MembershipChange::Replace { old: 9, new: 4 },
        MembershipChange::Replace { old: 1, new: 4 },
    ] {
        let e = c.change(l, bad).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{bad:?}: {e}");
    }
    // One change at a time.
    c.change(l, MembershipChange::AddLearner(4)).unwrap();
    let e = c.change(l, MembershipChange::AddLearner(5)).unwrap_err();
    assert!(e.to_string().contains("under way"), "{e}");
    c.settle(1);
    // Down to two voters, and no further.
    let l = c.elect();
    let gone = (0..3).find(|&i| i != l).unwrap() as NodeId + 1;
    c.change(l, MembershipChange::Remove(gone)).unwrap();
    c.settle(2);
    let l = c.elect();
    let other = *c
        .node(l)
        .members()
        .iter()
        .find(|&&v| v != l as NodeId + 1)
        .unwrap();
    let e = c.change(l, MembershipChange::Remove(other)).unwrap_err();
    assert!(e.to_string().contains("2-voter"), "{e}");
    assert_eq!(c.node(l).membership().epoch, 2);
    // A command that would read as a change is refused, not proposed.
    let now = c.now;
    let fake = change_value(&[1], &[])[0].clone();
    let e = c.nodes[l]
        .as_mut()
        .unwrap()
        .propose(fake.clone(), now)
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    let e = c.nodes[l]
        .as_mut()
        .unwrap()
        .propose_all(vec![cmd(1), fake], now)
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    c.run_for(200 * MS);
    assert_eq!(c.node(l).membership().epoch, 2);
}

#[test]
fn a_forwarded_command_that_reads_as_a_change_is_dropped() {
    let mut c = Cluster::new(3, 3, |_| {});
    let l = c.elect();
    let fake = change_value(&[l as NodeId + 1], &[])[0].clone();
    let now = c.now;
    let from = (0..3).find(|&i| i != l).unwrap() as NodeId + 1;
    c.nodes[l]
        .as_mut()
        .unwrap()
        .step(
            from,
            Message::Forward {
                seq: 1,
                commands: vec![fake, cmd(5)],
            },
            now,
        )
        .unwrap();
    c.drain(l);
    c.run_until(1000, |c| c.commands(l).contains(&cmd(5)));
    c.run_for(100 * MS);
    assert_eq!(c.node(l).membership().epoch, 0);
    assert_eq!(c.commands(l), vec![cmd(5)]);
}

#[test]
fn restarts_replay_the_membership_and_compaction_keeps_it() {
    let mut c = Cluster::new(3, 11, |_| {});
    c.decide_at(0, 0, 5);
    let l = c.elect();
    let d = c.add_node(l);
    c.change(l, MembershipChange::AddLearner(4)).unwrap();
    c.settle(1);
    c.decide_at(d, 5, 5);
    // Restart everyone (one at a time): the membership comes back.
    for i in 0..4 {
        c.crash(i);
        c.restart(i);
        assert_eq!(c.node(i).membership().epoch, 1, "node {}", i + 1);
        assert_eq!(c.node(i).learners(), &[4]);
        assert_eq!(
            c.memberships[i].last().map(|m| m.epoch),
            Some(1),
            "node {} reports its membership on restart",
            i + 1
        );
        c.run_for(50 * MS);
    }
    // Compact past the change, restart: the snapshot keeps it.
    c.decide_at(d, 10, 3);
    for i in 0..4 {
        c.compact(i);
    }
    c.crash(d);
    c.restart(d);
    assert_eq!(c.node(d).membership().epoch, 1);
    assert_eq!(c.node(d).learners(), &[4]);
    c.decide_at(d, 13, 3);
    c.check_agreement();
}

#[test]
fn a_new_replica_joins_by_snapshot_install_after_compaction() {
    let mut c = Cluster::new(3, 5, |_| {});
    c.decide_at(0, 0, 30);
    for i in 0..3 {
        c.compact(i);
    }
    let l = c.elect();
    let d = c.add_node(l);
    c.change(l, MembershipChange::AddLearner(4)).unwrap();
    c.settle(1);
    c.decide_at(d, 30, 5);
    assert!(c.node(d).snapshot().is_some(), "it installed the snapshot");
    assert!(c.commands(d).contains(&cmd(0)));
    // Promote, compact past the promotion, add a fifth that installs a
    // snapshot carrying epoch 2.
    let l = c.elect();
    c.change(l, MembershipChange::Promote(4)).unwrap();
    c.settle(2);
    c.decide_at(d, 35, 5);
    for i in 0..4 {
        c.compact(i);
    }
    let l = c.elect();
    let e = c.add_node(l);
    c.change(l, MembershipChange::AddLearner(5)).unwrap();
    c.settle(3);
    c.decide_at(e, 40, 5);
    assert_eq!(c.node(e).members(), &[1, 2, 3, 4]);
    assert_eq!(c.node(e).learners(), &[5]);
    c.check_agreement();
}

#[test]
fn a_cut_off_replica_of_the_old_epoch_catches_up_and_cannot_decide_alone() {
    let mut c = Cluster::new(3, 21, |_| {});
    c.decide_at(0, 0, 5);
    let l = c.elect();
    let cut = (0..3).find(|&i| i != l).unwrap();
    let cut_id = cut as NodeId + 1;
    c.drop = Some(Box::new(move |e: &Envelope| {
        e.to == cut_id || e.from == cut_id
    }));
    let d = c.add_node(l);
    c.change(l, MembershipChange::AddLearner(4)).unwrap();
    assert!(c.run_until(5000, |c| {
        c.node(l).membership().epoch == 1
            || c.leader()
                .is_some_and(|x| c.node(x).membership().epoch == 1)
    }));
    let l = c.elect();
    c.change(l, MembershipChange::Promote(4)).unwrap();
    assert!(c.run_until(5000, |c| {
        (0..4)
            .filter(|&i| i != cut)
            .all(|i| c.node(i).membership().epoch == 2)
    }));
    c.decide_at(d, 5, 5);
    // The cut-off node is two epochs behind; it stood for election over
    // and over meanwhile and decided nothing new.
    assert_eq!(c.node(cut).membership().epoch, 0);
    assert!(c.decided[cut].len() < c.decided[d].len());
    c.drop = None;
    c.settle(2);
    c.decide_at(cut, 10, 5);
    c.check_agreement();
}

#[test]
fn old_epoch_ballots_are_refused_with_the_new_floor() {
    let mut c = Cluster::new(3, 2, |_| {});
    let l = c.elect();
    c.add_node(l);
    c.change(l, MembershipChange::AddLearner(4)).unwrap();
    c.settle(1);
    let f = (0..3)
        .find(|&i| c.node(i).is_voter() && !c.node(i).is_leader())
        .unwrap();
    let now = c.now;
    assert_eq!(Ballot::new(1_000, 1).epoch(), 0);
    let other = c
        .node(f)
        .members()
        .iter()
        .copied()
        .find(|&v| v != f as NodeId + 1)
        .unwrap();
    let node = c.nodes[f].as_mut().unwrap();
    assert!(node.promised().epoch() >= 1);
    let old = Ballot::new(1_000, other);
    node.step(
        other,
        Message::Accept {
            ballot: old,
            first_slot: 100,
            batches: vec![vec![cmd(9)]],
            commit: 0,
        },
        now,
    )
    .unwrap();
    let outs = outputs(node);
    assert!(
        node.accepted(100).is_none(),
        "an old epoch's accept is void"
    );
    let nack = sends(&outs)
        .into_iter()
        .any(|m| matches!(m, Message::Nack { promised, .. } if promised.epoch() >= 1));
    assert!(nack, "{outs:?}");
    // A ballot of a far epoch does not make it promise either.
    let far = Ballot::new((9 << EPOCH_SHIFT) + 1, other);
    node.step(
        other,
        Message::Prepare {
            ballot: far,
            first_slot: 0,
        },
        now,
    )
    .unwrap();
    let outs = outputs(node);
    assert!(
        !sends(&outs)
            .iter()
            .any(|m| matches!(m, Message::Promise { .. })),
        "{outs:?}"
    );
    assert!(node.promised() < far);
}

#[test]
fn a_single_voter_grows_and_the_snapshot_image_is_checked() {
    let mut c = Cluster::new(1, 4, |_| {});
    c.decide_at(0, 0, 3);
    let d = c.add_node(0);
    c.change(0, MembershipChange::AddLearner(2)).unwrap();
    c.settle(1);
    c.decide_at(d, 3, 3);
    let l = c.elect();
    c.change(l, MembershipChange::Promote(2)).unwrap();
    c.settle(2);
    assert_eq!(c.node(d).members(), &[1, 2]);
    c.decide_at(d, 6, 3);
    c.check_agreement();

    // A snapshot whose membership suffix is damaged is not installed.
    let snap = Snap::new(
        10,
        std::sync::Arc::new(vec![7; 100]),
        Membership::initial(vec![1, 2]),
    );
    let image = snap.image(0, snap.image_len());
    assert_eq!(image.len() as u64, snap.image_len());
    let (data, m) = split_image(image.clone()).unwrap();
    assert_eq!((data.len(), m.voters), (100, vec![1, 2]));
    for cut in [1, 3, 5, image.len() - 100] {
        let mut bad = image.clone();
        bad.truncate(image.len() - cut);
        assert!(
            split_image(bad).is_none_or(|(d, _)| d.len() != 100),
            "cut {cut}"
        );
    }
    // The example of docs/WIRE.md section 10.
    let st = Snap::new(
        3,
        std::sync::Arc::new(b"st".to_vec()),
        Membership::initial(vec![1]),
    );
    assert_eq!(
        st.image(0, st.image_len()),
        [
            0x73, 0x74, 0x00, 0x00, 0x01, 0x01, 0x00, 0x05, 0x00, 0x00, 0x00
        ]
    );
    // Any slice of the image matches the bytes whole.
    for (a, b) in [(0, 1), (50, 103), (99, 101), (100, image.len() as u64)] {
        assert_eq!(snap.image(a, b), image[a as usize..b as usize]);
    }
}

#[test]
fn random_membership_changes_with_crashes_loss_and_duplicates_keep_agreement() {
    let seeds: u64 = std::env::var("QK_MEMBERSHIP_SEEDS").map_or(40, |v| v.parse().unwrap());
    for seed in 0..seeds {
        let result = std::panic::catch_unwind(|| random_run(seed));
        if result.is_err() {
            panic!("membership random run failed: seed {seed} (QK_MEMBERSHIP_SEEDS)");
        }
    }
}

fn random_run(seed: u64) {
    let mut r = SplitMix64::new(seed);
    let mut c = Cluster::new(3, seed, |_| {});
    c.shuffle = true;
    c.duplicate = 50_000;
    let mut loss = SplitMix64::new(seed ^ 0xdead);
    c.drop = Some(Box::new(move |_| loss.chance(20_000)));
    let mut next_cmd = 0;
    for _round in 0..12 {
        // Some traffic.
        if let Some(l) = c.leader() {
            for _ in 0..r.below(4) {
                c.propose(l, cmd(next_cmd));
                next_cmd += 1;
            }
        }
        c.run_for(r.between(5, 60) * MS);
        // A change at whoever leads.
        if let Some(l) = c.leader() {
            let m = c.node(l).membership().clone();
            let change = match r.below(4) {
                0 if m.voters.len() + m.learners.len() < 6 => {
                    let d = c.add_node(l);
                    Some(MembershipChange::AddLearner(d as NodeId + 1))
                }
                1 if !m.learners.is_empty() => Some(MembershipChange::Promote(m.learners[0])),
                2 if m.voters.len() > 3 => {
                    let v = m.voters[r.below(m.voters.len() as u64) as usize];
                    Some(MembershipChange::Remove(v))
                }
                3 if !m.learners.is_empty() => {
                    let v = m.voters[r.below(m.voters.len() as u64) as usize];
                    Some(MembershipChange::Replace {
                        old: v,
                        new: m.learners[0],
                    })
                }
                _ => None,
            };
            if let Some(ch) = change {
                let _ = c.change(l, ch);
            }
        }
        // Sometimes a crash and a restart.
        if r.chance(300_000) {
            let alive = c.alive();
            let i = alive[r.below(alive.len() as u64) as usize];
            c.crash(i);
            c.run_for(r.between(10, 200) * MS);
            c.restart(i);
        }
        c.run_for(r.between(20, 300) * MS);
        c.check_agreement();
    }
    // Heal and make sure the newest membership can still decide.
    c.drop = None;
    c.run_for(2_000 * MS);
    let voters = c.leader().map(|l| c.node(l).members().to_vec());
    if let Some(voters) = voters {
        let i = (voters[0] - 1) as usize;
        c.decide_at(i, 1_000_000, 2);
    } else {
        panic!("no leader after healing (seed {seed}): {:?}", c.epochs());
    }
    c.check_agreement();
}

#[test]
fn debug_seed() {
    let Ok(seed) = std::env::var("QK_DEBUG_SEED") else {
        return;
    };
    let seed: u64 = seed.parse().unwrap();
    let r = std::panic::catch_unwind(|| random_run(seed));
    let _ = r;
}

#[test]
fn a_change_lost_with_its_leader_does_not_stall_that_node_when_it_leads_again() {
    // Found by the simulator: a leader whose change never left it kept
    // waiting for that change's slot after it was deposed and elected
    // again, and proposed nothing more.
    let mut c = Cluster::new(3, 31, |_| {});
    let l = c.elect();
    let lid = l as NodeId + 1;
    c.drop = Some(Box::new(move |e: &Envelope| e.from == lid));
    c.add_node(l);
    c.change(l, MembershipChange::AddLearner(4)).unwrap();
    assert!(c.run_until(20_000, |c| c.leader().is_some_and(|x| x != l)));
    c.drop = None;
    // The new leader fills the change's slot with commands: the change is
    // gone for good.
    c.decide_at(l, 50, 3);
    c.run_for(100 * MS);
    let other = c.leader().unwrap();
    let now = c.now;
    c.nodes[other]
        .as_mut()
        .unwrap()
        .transfer_leadership(lid, now)
        .unwrap();
    c.drain(other);
    assert!(c.run_until(20_000, |c| c.leader() == Some(l)));
    c.decide_at(l, 100, 3);
    assert_eq!(c.node(l).membership().epoch, 0);
    c.check_agreement();
}
