//! The messages Multi-Paxos replicas exchange. `paxos::wire` encodes them to
//! bytes (a documented, versioned format) so any transport can carry them.

use super::ballot::{Ballot, NodeId, Slot};

/// One client command: opaque bytes the application gives to `propose`.
pub type Command = Vec<u8>;

/// The value of one log slot: the commands a leader batched into it, in
/// order. An empty batch is a no-op (a new leader fills gaps with them).
pub type Batch = Vec<Command>;

/// A slot's accepted value as an acceptor reports it in a promise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedEntry {
    /// The slot.
    pub slot: Slot,
    /// The ballot the value was accepted in.
    pub ballot: Ballot,
    /// The value.
    pub batch: Batch,
    /// The acceptor knows this value is chosen (a new leader adopts it as is).
    pub chosen: bool,
}

/// A Multi-Paxos message. Every message but `Forward` and the catch-up pair
/// carries the sender's ballot so stale ones are recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Phase 1a for every slot from `first_slot` on: a would-be leader asks
    /// for promises.
    Prepare {
        /// The candidate's ballot.
        ballot: Ballot,
        /// The first slot the candidate has not seen chosen.
        first_slot: Slot,
    },
    /// Phase 1b: the acceptor promises to ignore ballots below `ballot` and
    /// reports what it accepted at or after the prepare's `first_slot`.
    Promise {
        /// The ballot promised.
        ballot: Ballot,
        /// Accepted (or known chosen) values at or after `first_slot`.
        accepted: Vec<AcceptedEntry>,
        /// The acceptor's commit index: every slot below it is chosen.
        commit: Slot,
    },
    /// Phase 2a for consecutive slots `first_slot..first_slot + batches.len()`.
    Accept {
        /// The leader's ballot.
        ballot: Ballot,
        /// The first slot.
        first_slot: Slot,
        /// One value per slot.
        batches: Vec<Batch>,
        /// The leader's commit index (piggybacked so followers learn it).
        commit: Slot,
    },
    /// Phase 2b: the acceptor accepted slots `first_slot..first_slot + count`.
    Accepted {
        /// The ballot accepted.
        ballot: Ballot,
        /// The first slot.
        first_slot: Slot,
        /// How many consecutive slots.
        count: u64,
    },
    /// The receiver has promised `promised`, which is above the sender's
    /// `ballot`: the sender's prepare or accept was refused.
    Nack {
        /// The refused ballot.
        ballot: Ballot,
        /// The higher ballot the acceptor has promised.
        promised: Ballot,
    },
    /// The leader's periodic heartbeat; it also renews the leader lease.
    Heartbeat {
        /// The leader's ballot.
        ballot: Ballot,
        /// The leader's commit index.
        commit: Slot,
        /// Matches the acknowledgement to the time the leader sent it.
        seq: u64,
    },
    /// A follower acknowledges heartbeat `seq`, granting the lease.
    HeartbeatAck {
        /// The ballot of the heartbeat.
        ballot: Ballot,
        /// The heartbeat's sequence number.
        seq: u64,
    },
    /// Commands proposed at a non-leader, passed to the leader it knows.
    Forward {
        /// The sender's sequence number for this `Forward` (a per-sender
        /// counter from a random start, one per message): receivers drop a
        /// seq they have seen from that sender, so a duplicated `Forward`
        /// is proposed once.
        seq: u64,
        /// The commands, in the order they were proposed.
        commands: Vec<Command>,
    },
    /// A lagging replica asks for chosen values from `first_slot` on.
    CatchUpRequest {
        /// The first slot the requester lacks.
        first_slot: Slot,
    },
    /// Chosen values `first_slot..first_slot + batches.len()`.
    CatchUp {
        /// The first slot.
        first_slot: Slot,
        /// One chosen value per slot.
        batches: Vec<Batch>,
        /// The sender's commit index.
        commit: Slot,
    },
    /// Pre-vote: a node whose election timer ran out asks whether the
    /// receiver would promise `ballot`, before it raises any promise. Nothing
    /// is promised or persisted on either side.
    PreVote {
        /// The ballot the sender would stand with.
        ballot: Ballot,
    },
    /// The answer to a pre-vote.
    PreVoteReply {
        /// The ballot of the pre-vote.
        ballot: Ballot,
        /// The receiver would promise it: `ballot` is above its promise, it
        /// has not heard from a leader within the election timeout, and no
        /// lease binds it to another node.
        granted: bool,
        /// The receiver's promise (so the sender can outbid it next time).
        promised: Ballot,
    },
    /// Part of a snapshot, sent to a replica that asked for slots this
    /// node has compacted away (a `CatchUpRequest` below its log, or a
    /// `SnapshotRequest`). The receiver pulls the next part with a
    /// `SnapshotRequest`, so one part per receiver is in flight at a time.
    SnapshotChunk {
        /// The cluster the snapshot belongs to (`Config::cluster_id`);
        /// a chunk of another cluster is ignored.
        cluster: u64,
        /// The snapshot covers every slot below this.
        slot: Slot,
        /// The whole snapshot's length in bytes.
        total: u64,
        /// CRC-32 of the whole snapshot, checked once it is assembled.
        checksum: u32,
        /// Where `data` starts in the snapshot.
        offset: u64,
        /// The bytes `offset..offset + data.len()`.
        data: Vec<u8>,
    },
    /// Asks for the part of snapshot `slot` from `offset` on (the
    /// resumption of an install, or the next part).
    SnapshotRequest {
        /// The snapshot being assembled.
        slot: Slot,
        /// The bytes already held.
        offset: u64,
    },
    /// The leader of `ballot` hands its leadership to `to`
    /// ([`Node::transfer_leadership`](super::Node::transfer_leadership)):
    /// `to` stands for election at once; every other voter releases the
    /// lease promise it gave this leader (which gave up its lease first).
    Handoff {
        /// The sender's ballot (it led in it until now).
        ballot: Ballot,
        /// The voter that is to lead next.
        to: NodeId,
    },
}

/// A message with its sender and destination, as a node emits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The sending node.
    pub from: NodeId,
    /// The node to deliver to.
    pub to: NodeId,
    /// The message.
    pub message: Message,
}
