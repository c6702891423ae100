//! Who votes and who follows: a Multi-Paxos cluster's membership and how it
//! changes.
//!
//! # The method: epochs that stop
//! A change is a value the leader proposes in a slot of its own, like a
//! command. When the slot `c` holding it is delivered, the epoch ends: the
//! cluster's next epoch (epoch + 1, its new voters and learners) decides
//! every slot from `c + 1` on, as a fresh Paxos instance. Each epoch has
//! its fixed set of voters, so its majorities always intersect; two epochs
//! never decide the same slot, because
//! - an epoch's decisions after its ending slot `c` are void: a replica
//!   delivers `c` before any later slot, and on delivering it drops every
//!   value it holds from `c + 1` on and from then on takes part only in the
//!   next epoch; and
//! - ballots carry their epoch in their high bits ([`Ballot::epoch`]): a
//!   replica refuses ballots of an older epoch (its promise is raised to
//!   the new epoch's floor), and does not take part in a newer epoch before
//!   it has delivered the slot that starts it (it catches up first).
//!
//! So any new member set is safe, not only one change at a time; a leader
//! still proposes one change at a time, and nothing after it until it is
//! chosen (a value after it would be void).
//!
//! Learners receive the log and catch up but do not vote; a new replica
//! joins as a learner ([`super::Node::join`]) and is promoted once caught
//! up.

use super::ballot::{Ballot, NodeId, Slot};
use super::message::{Batch, Command};
use crate::error::{Error, Result};

/// Ballot rounds carry the epoch above this many bits.
pub const EPOCH_SHIFT: u32 = 40;
/// The round bits within an epoch.
pub const ROUND_MASK: u64 = (1 << EPOCH_SHIFT) - 1;
/// The most replicas (voters and learners together) a membership holds.
pub const MAX_MEMBERS: usize = 64;
/// How a membership change is marked in the log: a slot whose batch is one
/// command starting with these bytes. `propose` refuses commands that start
/// with them.
pub const CHANGE_MAGIC: &[u8; 8] = b"\xffqk-cfg\x01";

/// The replicas of one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Membership {
    /// Counts the changes since the cluster was created (0 at creation).
    pub epoch: u64,
    /// The first slot this epoch decides (the slot after the change).
    pub start: Slot,
    /// The replicas that vote: phase 1 and phase 2 need a majority of them.
    pub voters: Vec<NodeId>,
    /// The replicas that receive the log but do not vote.
    pub learners: Vec<NodeId>,
}

/// A change a leader can propose ([`super::Node::change_membership`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MembershipChange {
    /// Add a replica that receives the log and catches up, without a vote.
    AddLearner(NodeId),
    /// Make a learner a voter.
    Promote(NodeId),
    /// Remove a voter or a learner.
    Remove(NodeId),
    /// Replace the voter `old` (for example a failed machine) with the
    /// learner `new`, in one change.
    Replace {
        /// The voter to remove.
        old: NodeId,
        /// The learner that takes its vote.
        new: NodeId,
    },
}

impl Membership {
    /// The membership a cluster starts with.
    pub fn initial(voters: Vec<NodeId>) -> Self {
        Membership {
            epoch: 0,
            start: 0,
            voters,
            learners: Vec::new(),
        }
    }

    /// Whether `id` votes.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }

    /// Whether `id` is a learner.
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(&id)
    }

    /// Whether `id` is a voter or a learner.
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// Voters, then learners.
    pub fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.voters.iter().chain(self.learners.iter()).copied()
    }

    /// The lowest ballot of this epoch: every replica in it has promised
    /// at least this, so it refuses every older epoch's ballots.
    pub fn ballot_floor(&self) -> Ballot {
        Ballot::new(self.epoch << EPOCH_SHIFT, 0)
    }

    /// Checks the set rules: at least one voter, ids distinct and not both
    /// voter and learner, at most [`MAX_MEMBERS`] in all.
    pub fn validate_sets(voters: &[NodeId], learners: &[NodeId]) -> Result<()> {
        if voters.is_empty() {
            return Err(Error::invalid("membership: no voters"));
        }
        if voters.len() + learners.len() > MAX_MEMBERS {
            return Err(Error::invalid(format!(
                "membership: {} replicas, at most {MAX_MEMBERS} are supported",
                voters.len() + learners.len()
            )));
        }
        let all: Vec<NodeId> = voters.iter().chain(learners).copied().collect();
        for (i, m) in all.iter().enumerate() {
            if all[..i].contains(m) {
                return Err(Error::invalid(format!(
                    "membership: replica {m} is listed twice"
                )));
            }
        }
        Ok(())
    }

    /// The voters and learners after `change`, or why it is refused.
    pub fn apply(&self, change: MembershipChange) -> Result<(Vec<NodeId>, Vec<NodeId>)> {
        let mut voters = self.voters.clone();
        let mut learners = self.learners.clone();
        match change {
            MembershipChange::AddLearner(id) => {
                if self.contains(id) {
                    return Err(Error::invalid(format!(
                        "add learner: replica {id} is already a member"
                    )));
                }
                learners.push(id);
            }
            MembershipChange::Promote(id) => {
                if !self.is_learner(id) {
                    return Err(Error::invalid(format!(
                        "promote: replica {id} is not a learner (add it as a learner first)"
                    )));
                }
                learners.retain(|&l| l != id);
                voters.push(id);
            }
            MembershipChange::Remove(id) => {
                if self.is_learner(id) {
                    learners.retain(|&l| l != id);
                } else if self.is_voter(id) {
                    if voters.len() <= 2 {
                        return Err(Error::invalid(format!(
                            "remove: refusing to remove voter {id} from a {}-voter cluster \
                             (one voter left could not tolerate any failure; add a replica \
                             first, or replace this one)",
                            voters.len()
                        )));
                    }
                    voters.retain(|&v| v != id);
                } else {
                    return Err(Error::invalid(format!(
                        "remove: replica {id} is not a member"
                    )));
                }
            }
            MembershipChange::Replace { old, new } => {
                if !self.is_voter(old) {
                    return Err(Error::invalid(format!(
                        "replace: replica {old} is not a voter"
                    )));
                }
                if !self.is_learner(new) {
                    return Err(Error::invalid(format!(
                        "replace: replica {new} is not a learner (add it as a learner first)"
                    )));
                }
                learners.retain(|&l| l != new);
                for v in voters.iter_mut() {
                    if *v == old {
                        *v = new;
                    }
                }
            }
        }
        Self::validate_sets(&voters, &learners)?;
        Ok((voters, learners))
    }

    /// The membership that starts after a change chosen in `slot`.
    pub fn next(&self, slot: Slot, voters: Vec<NodeId>, learners: Vec<NodeId>) -> Membership {
        Membership {
            epoch: self.epoch + 1,
            start: slot + 1,
            voters,
            learners,
        }
    }
}

impl Ballot {
    /// The membership epoch this ballot belongs to.
    pub fn epoch(self) -> u64 {
        self.round >> EPOCH_SHIFT
    }
}

/// The log value of a change to `voters` and `learners`: one command, the
/// magic then the two lists (varint counts and ids, as in `docs/WIRE.md`).
pub fn change_value(voters: &[NodeId], learners: &[NodeId]) -> Batch {
    let mut c: Command = CHANGE_MAGIC.to_vec();
    super::wire::put_node_lists(&mut c, voters, learners);
    vec![c]
}

/// Whether `command` would be read as a membership change.
pub fn is_reserved(command: &[u8]) -> bool {
    command.starts_with(CHANGE_MAGIC)
}

/// The voters and learners a chosen batch changes to, if it is a change;
/// a malformed one (no honest leader proposes it) is `None`, a no-op on
/// every replica alike.
pub fn parse_change(batch: &Batch) -> Option<(Vec<NodeId>, Vec<NodeId>)> {
    if batch.len() != 1 || !is_reserved(&batch[0]) {
        return None;
    }
    let (voters, learners) =
        super::wire::decode_node_lists(&batch[0][CHANGE_MAGIC.len()..]).ok()?;
    Membership::validate_sets(&voters, &learners).ok()?;
    Some((voters, learners))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply_and_refuse_the_dangerous_ones() {
        let m = Membership::initial(vec![1, 2, 3]);
        assert_eq!(
            m.apply(MembershipChange::AddLearner(4)).unwrap(),
            (vec![1, 2, 3], vec![4])
        );
        assert!(m.apply(MembershipChange::AddLearner(2)).is_err());
        assert!(m.apply(MembershipChange::Promote(4)).is_err());
        assert!(m.apply(MembershipChange::Remove(9)).is_err());
        assert_eq!(
            m.apply(MembershipChange::Remove(2)).unwrap(),
            (vec![1, 3], vec![])
        );
        let two = Membership::initial(vec![1, 3]);
        let e = two.apply(MembershipChange::Remove(3)).unwrap_err();
        assert!(e.to_string().contains("2-voter"), "{e}");
        let with = Membership {
            learners: vec![4],
            ..Membership::initial(vec![1, 2, 3])
        };
        assert_eq!(
            with.apply(MembershipChange::Replace { old: 2, new: 4 })
                .unwrap(),
            (vec![1, 4, 3], vec![])
        );
        assert_eq!(
            with.apply(MembershipChange::Promote(4)).unwrap(),
            (vec![1, 2, 3, 4], vec![])
        );
        assert!(
            with.apply(MembershipChange::Replace { old: 4, new: 2 })
                .is_err()
        );
    }

    #[test]
    fn change_values_round_trip_and_malformed_ones_are_no_ops() {
        let v = change_value(&[1, 2, 300], &[7]);
        assert_eq!(parse_change(&v), Some((vec![1, 2, 300], vec![7])));
        assert_eq!(parse_change(&vec![b"plain".to_vec()]), None);
        let mut bad = v.clone();
        bad[0].pop();
        assert_eq!(parse_change(&bad), None);
        // Two copies of the value in one batch is not a change either.
        assert_eq!(parse_change(&vec![v[0].clone(), v[0].clone()]), None);
        // No voters.
        assert_eq!(parse_change(&change_value(&[], &[1])), None);
        assert_eq!(parse_change(&change_value(&[1, 1], &[])), None);
    }

    #[test]
    fn ballots_carry_their_epoch() {
        let m = Membership {
            epoch: 3,
            ..Membership::initial(vec![1])
        };
        let f = m.ballot_floor();
        assert_eq!(f.epoch(), 3);
        assert_eq!(f.next_for(1).epoch(), 3);
        assert!(Ballot::new(ROUND_MASK | (2 << EPOCH_SHIFT), 9) < f);
    }
}
