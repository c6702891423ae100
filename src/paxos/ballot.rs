//! Ballots, node ids and slots: the numbers every Paxos message carries.

/// A replica's id within its cluster (any `u32` the application chooses).
pub type NodeId = u32;

/// A position in the Multi-Paxos log (0-based).
pub type Slot = u64;

/// A ballot: ordered by round, then by the proposing node's id, so two
/// proposers never use the same ballot. `Ballot::ZERO` is below every ballot a
/// proposer uses (rounds start at 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ballot {
    /// Compared first.
    pub round: u64,
    /// Breaks ties between proposers in the same round.
    pub node: NodeId,
}

impl Ballot {
    /// The ballot no acceptor has promised: below every real ballot.
    pub const ZERO: Ballot = Ballot { round: 0, node: 0 };

    /// A ballot of `round` owned by `node`.
    pub const fn new(round: u64, node: NodeId) -> Self {
        Ballot { round, node }
    }

    /// The smallest ballot of `node` that is above `self`.
    pub fn next_for(self, node: NodeId) -> Ballot {
        Ballot {
            round: self.round + 1,
            node,
        }
    }
}

impl std::fmt::Display for Ballot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.round, self.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_round_then_node() {
        assert!(Ballot::new(1, 9) < Ballot::new(2, 0));
        assert!(Ballot::new(2, 1) < Ballot::new(2, 3));
        assert!(Ballot::ZERO < Ballot::new(1, 0));
        assert_eq!(Ballot::new(4, 2).next_for(7), Ballot::new(5, 7));
        assert!(Ballot::new(4, 9).next_for(1) > Ballot::new(4, 9));
    }
}
