//! Safety and liveness checkers for Multi-Paxos runs.
//!
//! Each checker is a small type fed by the simulator's events (a proposal, a
//! decision, a restart, the set of lease holders) that answers with a
//! [`Violation`] the moment what it watches goes wrong. They know nothing of
//! the simulator, so a test can feed them fabricated events.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use crate::paxos::{Batch, Command, NodeId, Slot};

/// Which property a run broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViolationKind {
    /// Two different values decided for one slot.
    Agreement,
    /// A decided command that no client proposed.
    Validity,
    /// A node delivered slots out of order or with a gap.
    Order,
    /// A proposal made while the cluster was healthy was not decided
    /// everywhere in time.
    Liveness,
    /// Two nodes held a read lease at the same moment.
    Lease,
    /// A node held the read lease while missing a slot another node had
    /// already delivered (a read from its state would be stale), or a
    /// command was decided in a slot before one delivered before it was
    /// proposed.
    Linearizability,
    /// A message's bytes did not decode (or a node sent a malformed envelope).
    Wire,
    /// A node returned an error for an input it should have accepted.
    Node,
    /// Simulated time stopped advancing (a timer that never moves on).
    Stuck,
    /// A restarted node did not re-deliver, at once, every slot it had
    /// delivered before it crashed.
    Durability,
    /// A node was handed a snapshot that is not the state after the slots
    /// it claims to cover.
    Snapshot,
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ViolationKind::Agreement => "agreement",
            ViolationKind::Validity => "validity",
            ViolationKind::Order => "in-order delivery",
            ViolationKind::Liveness => "liveness",
            ViolationKind::Lease => "lease exclusivity",
            ViolationKind::Linearizability => "linearizability",
            ViolationKind::Wire => "wire",
            ViolationKind::Node => "node error",
            ViolationKind::Stuck => "stuck",
            ViolationKind::Durability => "durable delivery",
            ViolationKind::Snapshot => "snapshot",
        };
        f.write_str(s)
    }
}

/// A broken property: what, where and when, and the seed that replays it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The property.
    pub kind: ViolationKind,
    /// The run's seed (0 until the simulator stamps it).
    pub seed: u64,
    /// Simulated time, nanoseconds.
    pub time: u64,
    /// The node concerned, if one is.
    pub node: Option<NodeId>,
    /// The slot concerned, if one is.
    pub slot: Option<Slot>,
    /// What happened, for a person.
    pub detail: String,
}

impl Violation {
    /// A violation of `kind` at `time` (seed 0: see [`with_seed`](Self::with_seed)).
    pub fn new(
        kind: ViolationKind,
        time: u64,
        node: Option<NodeId>,
        slot: Option<Slot>,
        detail: impl Into<String>,
    ) -> Self {
        Violation {
            kind,
            seed: 0,
            time,
            node,
            slot,
            detail: detail.into(),
        }
    }

    /// The same violation, stamped with the run's seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} violated (seed {}, t = {} ns",
            self.kind, self.seed, self.time
        )?;
        if let Some(n) = self.node {
            write!(f, ", node {n}")?;
        }
        if let Some(s) = self.slot {
            write!(f, ", slot {s}")?;
        }
        write!(f, "): {}", self.detail)
    }
}

impl std::error::Error for Violation {}

/// Shows a batch briefly: commands as text where they are printable.
pub fn show_batch(batch: &Batch) -> String {
    let items: Vec<String> = batch
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    format!("[{}]", items.join(", "))
}

/// Agreement: no slot is ever decided with two different values, on any
/// replica, in any incarnation. Keeps the first value seen for each slot.
#[derive(Debug, Default)]
pub struct Agreement {
    chosen: HashMap<Slot, (NodeId, Batch)>,
}

impl Agreement {
    /// A checker that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// `node` decided `batch` for `slot` at `time`.
    pub fn decided(
        &mut self,
        node: NodeId,
        slot: Slot,
        batch: &Batch,
        time: u64,
    ) -> Result<(), Violation> {
        match self.chosen.get(&slot) {
            None => {
                self.chosen.insert(slot, (node, batch.clone()));
                Ok(())
            }
            Some((_, b)) if b == batch => Ok(()),
            Some((first, b)) => Err(Violation::new(
                ViolationKind::Agreement,
                time,
                Some(node),
                Some(slot),
                format!(
                    "node {node} decided {} but node {first} decided {}",
                    show_batch(batch),
                    show_batch(b)
                ),
            )),
        }
    }

    /// The value decided for `slot`, if any node decided one.
    pub fn value(&self, slot: Slot) -> Option<&Batch> {
        self.chosen.get(&slot).map(|(_, b)| b)
    }

    /// How many slots have been decided somewhere.
    pub fn slots(&self) -> usize {
        self.chosen.len()
    }
}

/// Validity: every decided command was proposed by a client (no-ops, the
/// empty batches, are fine). Also counts commands decided in more than one
/// slot: a statistic here, as a node that restarts between two copies of a
/// duplicated `Forward` proposes its commands twice (the cluster flags a
/// double decision in a run without restarts).
#[derive(Debug, Default)]
pub struct Validity {
    proposed: HashSet<Command>,
    decided_in: HashMap<Command, Slot>,
    duplicates: u64,
}

impl Validity {
    /// A checker that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// A client proposed `command`.
    pub fn proposed(&mut self, command: &Command) {
        self.proposed.insert(command.clone());
    }

    /// Whether `command` was proposed.
    pub fn was_proposed(&self, command: &Command) -> bool {
        self.proposed.contains(command)
    }

    /// `node` decided `batch` for `slot` at `time`.
    pub fn decided(
        &mut self,
        node: NodeId,
        slot: Slot,
        batch: &Batch,
        time: u64,
    ) -> Result<(), Violation> {
        for c in batch {
            if !self.proposed.contains(c) {
                return Err(Violation::new(
                    ViolationKind::Validity,
                    time,
                    Some(node),
                    Some(slot),
                    format!(
                        "decided command {:?} was never proposed",
                        String::from_utf8_lossy(c)
                    ),
                ));
            }
            match self.decided_in.get(c) {
                None => {
                    self.decided_in.insert(c.clone(), slot);
                }
                Some(&s) if s == slot => {}
                Some(_) => self.duplicates += 1,
            }
        }
        Ok(())
    }

    /// The first slot `command` was decided in, if it was.
    pub fn slot_of(&self, command: &[u8]) -> Option<Slot> {
        self.decided_in.get(command).copied()
    }

    /// Distinct commands decided so far.
    pub fn decided_commands(&self) -> usize {
        self.decided_in.len()
    }

    /// Decisions of a command already decided in another slot.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }
}

/// In-order, gap-free delivery: each incarnation of a node delivers slots
/// 0, 1, 2, ... consecutively; a restarted node delivers from 0 again (its
/// state machine is rebuilt from the log).
#[derive(Debug, Default)]
pub struct Delivery {
    next: BTreeMap<NodeId, Slot>,
}

impl Delivery {
    /// A checker that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// `node` started (or restarted): it delivers from slot 0.
    pub fn started(&mut self, node: NodeId) {
        self.next.insert(node, 0);
    }

    /// `node` delivered `slot` at `time`.
    pub fn decided(&mut self, node: NodeId, slot: Slot, time: u64) -> Result<(), Violation> {
        let next = self.next.entry(node).or_insert(0);
        if slot != *next {
            return Err(Violation::new(
                ViolationKind::Order,
                time,
                Some(node),
                Some(slot),
                format!("node {node} delivered slot {slot} when slot {next} was next"),
            ));
        }
        *next += 1;
        Ok(())
    }

    /// `node` replaced its state with a snapshot of every slot below
    /// `slot`: it delivers from `slot` on. A snapshot may not go back.
    pub fn installed(&mut self, node: NodeId, slot: Slot, time: u64) -> Result<(), Violation> {
        let next = self.next.entry(node).or_insert(0);
        if slot < *next {
            return Err(Violation::new(
                ViolationKind::Order,
                time,
                Some(node),
                Some(slot),
                format!(
                    "node {node} installed a snapshot of slots below {slot} after delivering slot {}",
                    *next - 1
                ),
            ));
        }
        *next = slot;
        Ok(())
    }

    /// The next slot `node` will deliver (how many it delivered since it
    /// last started).
    pub fn delivered(&self, node: NodeId) -> Slot {
        self.next.get(&node).copied().unwrap_or(0)
    }
}

/// Liveness: a command proposed while the cluster is healthy must be decided
/// on every one of a set of nodes by a deadline.
#[derive(Debug, Default)]
pub struct Liveness {
    /// command → (proposed at, deadline, nodes that have yet to decide it)
    pending: BTreeMap<Command, (u64, u64, Vec<NodeId>)>,
}

impl Liveness {
    /// A checker that expects nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Expect `command`, proposed at `now`, decided on every node of
    /// `nodes` by `deadline`.
    pub fn expect(&mut self, command: Command, nodes: Vec<NodeId>, now: u64, deadline: u64) {
        self.pending.insert(command, (now, deadline, nodes));
    }

    /// `node` decided `batch`.
    pub fn decided(&mut self, node: NodeId, batch: &Batch) {
        if self.pending.is_empty() {
            return;
        }
        for c in batch {
            if let Some((_, _, nodes)) = self.pending.get_mut(c) {
                nodes.retain(|&n| n != node);
                if nodes.is_empty() {
                    self.pending.remove(c);
                }
            }
        }
    }

    /// Whether every expectation has been met.
    pub fn satisfied(&self) -> bool {
        self.pending.is_empty()
    }

    /// Forget every expectation (the run injected faults again).
    pub fn clear(&mut self) {
        self.pending.clear();
    }

    /// The earliest deadline still pending.
    pub fn next_deadline(&self) -> Option<u64> {
        self.pending.values().map(|(_, d, _)| *d).min()
    }

    /// Fails if an expectation's deadline is past at `now`.
    pub fn check(&self, now: u64) -> Result<(), Violation> {
        for (c, (at, deadline, nodes)) in &self.pending {
            if now > *deadline {
                return Err(Violation::new(
                    ViolationKind::Liveness,
                    now,
                    nodes.first().copied(),
                    None,
                    format!(
                        "command {:?} proposed at {at} ns in a healthy cluster is still \
                         undecided on nodes {nodes:?} past its deadline {deadline} ns",
                        String::from_utf8_lossy(c)
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Lease exclusivity: at no instant do two nodes both believe they hold the
/// read lease (that would let both answer reads from their own state).
#[derive(Debug, Default)]
pub struct LeaseExclusive {
    grants: u64,
    last: Option<NodeId>,
}

impl LeaseExclusive {
    /// A checker that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// `holders` hold the read lease at `time`.
    pub fn holders(&mut self, holders: &[NodeId], time: u64) -> Result<(), Violation> {
        if holders.len() > 1 {
            return Err(Violation::new(
                ViolationKind::Lease,
                time,
                Some(holders[1]),
                None,
                format!("nodes {holders:?} all hold the read lease"),
            ));
        }
        let now = holders.first().copied();
        if now.is_some() && now != self.last {
            self.grants += 1;
        }
        self.last = now;
        Ok(())
    }

    /// How many times the lease passed to a new holder (or was regained).
    pub fn grants(&self) -> u64 {
        self.grants
    }
}

/// Linearizability of the log and of lease reads:
/// - a command proposed after slot `s` was delivered somewhere is decided
///   in a slot after `s` (real-time order);
/// - a node holding the read lease has delivered every slot delivered
///   anywhere (else a read served from its state misses a write a client
///   already saw).
#[derive(Debug, Default)]
pub struct Linearizable {
    /// Slots delivered anywhere: every slot below this.
    delivered: Slot,
    /// command → `delivered` when it was proposed.
    floor: HashMap<Command, Slot>,
}

impl Linearizable {
    /// A checker that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// A client proposed `command`.
    pub fn proposed(&mut self, command: &Command) {
        self.floor.entry(command.clone()).or_insert(self.delivered);
    }

    /// `node` delivered `batch` for `slot` at `time`.
    pub fn decided(
        &mut self,
        node: NodeId,
        slot: Slot,
        batch: &Batch,
        time: u64,
    ) -> Result<(), Violation> {
        for c in batch {
            if let Some(&floor) = self.floor.get(c)
                && slot < floor
            {
                return Err(Violation::new(
                    ViolationKind::Linearizability,
                    time,
                    Some(node),
                    Some(slot),
                    format!(
                        "command {:?} was proposed after slot {} was delivered, yet decided \
                         in slot {slot}",
                        String::from_utf8_lossy(c),
                        floor - 1
                    ),
                ));
            }
        }
        self.delivered = self.delivered.max(slot + 1);
        Ok(())
    }

    /// Every slot below this was delivered somewhere.
    pub fn delivered(&self) -> Slot {
        self.delivered
    }

    /// `node` holds the read lease at `time` having delivered `delivered`
    /// slots.
    pub fn lease_read(&self, node: NodeId, delivered: Slot, time: u64) -> Result<(), Violation> {
        if delivered < self.delivered {
            return Err(Violation::new(
                ViolationKind::Linearizability,
                time,
                Some(node),
                Some(delivered),
                format!(
                    "node {node} holds the read lease having delivered slots below {delivered}, \
                         but slots below {} were delivered elsewhere: a lease read would be stale",
                    self.delivered
                ),
            ));
        }
        Ok(())
    }
}

/// Snapshots: the state a node is handed for the slots below `slot` is the
/// state those slots' agreed values produce. The simulated application's
/// state is a digest of the batches it applied, in order; [`Snapshots::state`]
/// is what a snapshot at a slot must hold.
#[derive(Debug)]
pub struct Snapshots {
    /// `prefix[s]`: the digest after slots `0..s`.
    prefix: Vec<u64>,
    installs: u64,
}

impl Default for Snapshots {
    fn default() -> Self {
        Self::new()
    }
}

impl Snapshots {
    /// A checker that has seen nothing.
    pub fn new() -> Self {
        Snapshots {
            prefix: vec![0],
            installs: 0,
        }
    }

    /// The digest after applying `batch` to the state `digest`.
    pub fn apply(digest: u64, batch: &Batch) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (digest, batch).hash(&mut h);
        h.finish()
    }

    /// The bytes of the state after slots `0..slot` (as a node snapshots
    /// it), if every one of them was decided somewhere.
    pub fn state(&mut self, agreement: &Agreement, slot: Slot) -> Option<Vec<u8>> {
        while (self.prefix.len() as u64) <= slot {
            let s = self.prefix.len() as u64 - 1;
            let batch = agreement.value(s)?;
            let d = Self::apply(self.prefix[s as usize], batch);
            self.prefix.push(d);
        }
        let mut out = slot.to_le_bytes().to_vec();
        out.extend_from_slice(&self.prefix[slot as usize].to_le_bytes());
        Some(out)
    }

    /// `node` was handed `data` as the state below `slot` at `time`.
    pub fn installed(
        &mut self,
        agreement: &Agreement,
        node: NodeId,
        slot: Slot,
        data: &[u8],
        time: u64,
    ) -> Result<(), Violation> {
        self.installs += 1;
        let want = self.state(agreement, slot);
        if want.as_deref() != Some(data) {
            return Err(Violation::new(
                ViolationKind::Snapshot,
                time,
                Some(node),
                Some(slot),
                format!(
                    "node {node} was handed {data:02x?} as the state below slot {slot}, \
                     but the agreed slots give {want:02x?}"
                ),
            ));
        }
        Ok(())
    }

    /// Snapshots handed to nodes so far (restarts and installs).
    pub fn installs(&self) -> u64 {
        self.installs
    }
}

/// All the checkers, fed together; violations come out stamped with `seed`.
#[derive(Debug, Default)]
pub struct Checkers {
    seed: u64,
    /// Agreement.
    pub agreement: Agreement,
    /// Validity.
    pub validity: Validity,
    /// In-order delivery.
    pub delivery: Delivery,
    /// Liveness.
    pub liveness: Liveness,
    /// Lease exclusivity.
    pub lease: LeaseExclusive,
    /// Real-time order and fresh lease reads.
    pub linearizable: Linearizable,
    /// Snapshots hold the state of the slots they cover.
    pub snapshots: Snapshots,
}

impl Checkers {
    /// Fresh checkers for the run of `seed`.
    pub fn new(seed: u64) -> Self {
        Checkers {
            seed,
            ..Self::default()
        }
    }

    /// A client proposed `command`.
    pub fn proposed(&mut self, command: &Command) {
        self.validity.proposed(command);
        self.linearizable.proposed(command);
    }

    /// `node` (re)started.
    pub fn started(&mut self, node: NodeId) {
        self.delivery.started(node);
    }

    /// `node` decided `batch` for `slot` at `time`: agreement, validity,
    /// order, and progress towards liveness expectations.
    pub fn decided(
        &mut self,
        node: NodeId,
        slot: Slot,
        batch: &Batch,
        time: u64,
    ) -> Result<(), Violation> {
        let seed = self.seed;
        self.delivery
            .decided(node, slot, time)
            .and_then(|()| self.agreement.decided(node, slot, batch, time))
            .and_then(|()| self.validity.decided(node, slot, batch, time))
            .and_then(|()| self.linearizable.decided(node, slot, batch, time))
            .map_err(|v| v.with_seed(seed))?;
        self.liveness.decided(node, batch);
        Ok(())
    }

    /// `node` was handed `data` as its state below `slot` at `time`.
    pub fn installed(
        &mut self,
        node: NodeId,
        slot: Slot,
        data: &[u8],
        time: u64,
    ) -> Result<(), Violation> {
        let seed = self.seed;
        let from = self.delivery.delivered(node);
        self.snapshots
            .installed(&self.agreement, node, slot, data, time)
            .and_then(|()| self.delivery.installed(node, slot, time))
            .map_err(|v| v.with_seed(seed))?;
        // The slots the snapshot skipped are applied on `node` now.
        if !self.liveness.satisfied() {
            for s in from..slot {
                if let Some(batch) = self.agreement.value(s) {
                    self.liveness.decided(node, batch);
                }
            }
        }
        Ok(())
    }

    /// `holders` hold the read lease at `time`: exclusive, and (with
    /// `fresh`) each has delivered every slot delivered anywhere.
    pub fn lease_holders(
        &mut self,
        holders: &[NodeId],
        fresh: bool,
        time: u64,
    ) -> Result<(), Violation> {
        let seed = self.seed;
        self.lease
            .holders(holders, time)
            .map_err(|v| v.with_seed(seed))?;
        if fresh {
            for &h in holders {
                self.linearizable
                    .lease_read(h, self.delivery.delivered(h), time)
                    .map_err(|v| v.with_seed(seed))?;
            }
        }
        Ok(())
    }

    /// Fails if a liveness deadline passed by `now`.
    pub fn check(&self, now: u64) -> Result<(), Violation> {
        self.liveness.check(now).map_err(|v| v.with_seed(self.seed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(cmds: &[&str]) -> Batch {
        cmds.iter().map(|c| c.as_bytes().to_vec()).collect()
    }

    #[test]
    fn agreement_catches_a_conflicting_decision_on_another_node() {
        let mut a = Agreement::new();
        a.decided(0, 0, &b(&["x"]), 10).unwrap();
        a.decided(1, 0, &b(&["x"]), 11).unwrap();
        a.decided(1, 1, &b(&[]), 11).unwrap();
        let v = a.decided(2, 0, &b(&["y"]), 12).unwrap_err();
        assert_eq!(v.kind, ViolationKind::Agreement);
        assert_eq!((v.node, v.slot, v.time), (Some(2), Some(0), 12));
        assert!(v.detail.contains("[y]") && v.detail.contains("[x]"), "{v}");
        // A no-op against a value is a conflict too.
        assert!(a.decided(0, 1, &b(&["z"]), 13).is_err());
        assert_eq!(a.value(0), Some(&b(&["x"])));
        assert_eq!(a.slots(), 2);
    }

    #[test]
    fn validity_rejects_unproposed_commands_and_counts_duplicates() {
        let mut v = Validity::new();
        v.proposed(&b"a".to_vec());
        v.proposed(&b"b".to_vec());
        v.decided(0, 0, &b(&["a"]), 1).unwrap();
        v.decided(1, 0, &b(&["a"]), 1).unwrap();
        v.decided(0, 1, &b(&[]), 1).unwrap();
        assert_eq!(v.duplicates(), 0);
        v.decided(0, 2, &b(&["b", "a"]), 1).unwrap();
        assert_eq!(v.duplicates(), 1);
        assert_eq!(v.decided_commands(), 2);
        assert_eq!(
            (v.slot_of(b"a"), v.slot_of(b"b"), v.slot_of(b"c")),
            (Some(0), Some(2), None)
        );
        let e = v.decided(0, 3, &b(&["forged"]), 7).unwrap_err();
        assert_eq!(e.kind, ViolationKind::Validity);
        assert_eq!(e.slot, Some(3));
    }

    #[test]
    fn delivery_must_be_consecutive_from_zero_per_incarnation() {
        let mut d = Delivery::new();
        d.started(4);
        d.decided(4, 0, 1).unwrap();
        d.decided(4, 1, 1).unwrap();
        let gap = d.decided(4, 3, 2).unwrap_err();
        assert_eq!(gap.kind, ViolationKind::Order);
        assert!(gap.detail.contains("slot 2 was next"), "{gap}");
        // Redelivery without a restart is a violation; after one it is expected.
        assert!(d.decided(4, 0, 3).is_err());
        d.started(4);
        d.decided(4, 0, 4).unwrap();
        assert_eq!(d.delivered(4), 1);
        assert!(Delivery::new().decided(1, 5, 0).is_err());
    }

    #[test]
    fn liveness_fails_only_after_the_deadline() {
        let mut l = Liveness::new();
        l.expect(b"p".to_vec(), vec![0, 1, 2], 100, 1000);
        l.decided(0, &b(&["p"]));
        l.decided(2, &b(&["q", "p"]));
        assert!(l.check(1000).is_ok());
        let v = l.check(1001).unwrap_err();
        assert_eq!((v.kind, v.node), (ViolationKind::Liveness, Some(1)));
        l.decided(1, &b(&["p"]));
        assert!(l.satisfied());
        assert!(l.check(u64::MAX).is_ok());
    }

    #[test]
    fn lease_holders_must_be_exclusive() {
        let mut l = LeaseExclusive::new();
        l.holders(&[], 0).unwrap();
        l.holders(&[1], 1).unwrap();
        l.holders(&[1], 2).unwrap();
        l.holders(&[2], 3).unwrap();
        assert_eq!(l.grants(), 2);
        let v = l.holders(&[1, 2], 4).unwrap_err();
        assert_eq!(v.kind, ViolationKind::Lease);
    }

    #[test]
    fn linearizable_orders_by_real_time_and_wants_fresh_leaseholders() {
        let mut l = Linearizable::new();
        l.proposed(&b"a".to_vec());
        l.decided(0, 0, &b(&["a"]), 1).unwrap();
        l.decided(0, 1, &b(&[]), 1).unwrap();
        assert_eq!(l.delivered(), 2);
        // Proposed after slots 0 and 1 were delivered: slot 1 is too early.
        l.proposed(&b"b".to_vec());
        let v = l.decided(1, 1, &b(&["b"]), 2).unwrap_err();
        assert_eq!((v.kind, v.slot), (ViolationKind::Linearizability, Some(1)));
        l.decided(1, 2, &b(&["b"]), 2).unwrap();
        l.lease_read(1, 3, 3).unwrap();
        let v = l.lease_read(2, 2, 3).unwrap_err();
        assert_eq!((v.kind, v.node), (ViolationKind::Linearizability, Some(2)));
    }

    #[test]
    fn the_bundle_stamps_the_seed_and_checks_every_property() {
        let mut c = Checkers::new(77);
        c.started(0);
        c.started(1);
        c.proposed(&b"x".to_vec());
        c.decided(0, 0, &b(&["x"]), 5).unwrap();
        let v = c.decided(1, 0, &b(&[]), 6).unwrap_err();
        assert_eq!((v.kind, v.seed), (ViolationKind::Agreement, 77));
        assert!(v.to_string().contains("seed 77"), "{v}");
        let v = c.decided(0, 1, &b(&["nope"]), 6).unwrap_err();
        assert_eq!(v.kind, ViolationKind::Validity);
    }
}
