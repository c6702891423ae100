//! Durable acceptor state: the records a node persists before it sends the
//! messages that depend on them, and the [`Storage`] interface behind which
//! they live ([`MemoryStorage`] here, a checksummed file in `file_storage`).

use super::ballot::{Ballot, Slot};
use super::membership::Membership;
use super::message::Batch;
use crate::error::Result;

/// One durable fact. A node replays its records in order on restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The acceptor promised `ballot` (for every slot). A candidate persists
    /// its own ballot this way too, so it never reuses one after a restart.
    Promise {
        /// The ballot promised.
        ballot: Ballot,
    },
    /// The acceptor accepted `batch` for `slot` in `ballot`.
    Accept {
        /// The slot.
        slot: Slot,
        /// The ballot.
        ballot: Ballot,
        /// The value.
        batch: Batch,
    },
    /// The node learned (by catch-up) that `batch` is chosen for `slot`.
    Chosen {
        /// The slot.
        slot: Slot,
        /// The chosen value.
        batch: Batch,
    },
    /// Every slot below `commit` is chosen and its value is in the records
    /// before this one. Written lazily: losing one only costs a catch-up.
    Commit {
        /// The commit index.
        commit: Slot,
    },
    /// The application's state after every slot below `slot`, which stands
    /// in for those slots: replay drops what came before for them. The
    /// first record of a checkpoint ([`Storage::compact`]).
    Snapshot {
        /// Every slot below this is in `data`.
        slot: Slot,
        /// The application's snapshot bytes.
        data: SnapshotData,
    },
    /// The node entered a membership epoch: every entry recorded before
    /// this from `start` on belonged to an older epoch and is void.
    Membership(Membership),
}

/// A snapshot's bytes, shared between the node, its storage and its
/// outputs without copies.
pub type SnapshotData = std::sync::Arc<Vec<u8>>;

/// Where a node keeps its records. A node appends the records of one call,
/// then calls [`sync`](Storage::sync) once before any message that depends
/// on them leaves the node.
///
/// Implement it to keep records elsewhere (a database, a replicated disk);
/// the contract is that after `sync` returns `Ok`, `load` after any crash
/// returns every record appended before it, in order, and may return a
/// prefix of the records appended after it — never a damaged one.
pub trait Storage {
    /// Add a record; it need not be durable until `sync`.
    fn append(&mut self, record: &Record) -> Result<()>;
    /// Add a record the caller no longer needs (a store that keeps records
    /// as values takes it without a copy). Same contract as `append`.
    fn append_owned(&mut self, record: Record) -> Result<()> {
        self.append(&record)
    }
    /// Make every appended record durable.
    fn sync(&mut self) -> Result<()>;
    /// The durable records, in append order (a node calls this once, when
    /// it starts).
    fn load(&mut self) -> Result<Vec<Record>>;
    /// Replace every record with `checkpoint`, durably: a
    /// [`Record::Snapshot`] first, then what the node still needs (its
    /// promise, the entries after the snapshot, its commit index). After
    /// `Ok`, `load` returns the checkpoint followed by whatever is
    /// appended later; a crash inside the call leaves either the old
    /// records or the checkpoint (both describe a valid state).
    ///
    /// The default appends the checkpoint after the old records and syncs:
    /// correct (replay lets a snapshot stand in for what came before it)
    /// but it frees nothing. A store that can drop records overrides it.
    fn compact(&mut self, checkpoint: Vec<Record>) -> Result<()> {
        for r in checkpoint {
            self.append_owned(r)?;
        }
        self.sync()
    }

    /// As [`compact`](Storage::compact), for a checkpoint that the records
    /// held already imply: a snapshot the node took of slots it applied
    /// from these very records, not one installed from a peer. Such a
    /// checkpoint need not be durable when the call returns: a store may
    /// write it in the background, while appends and syncs go on. Until
    /// it is in place, `load` after a crash returns the old records
    /// followed by the later appends, which replay to the same state (the
    /// application applies the slots again instead of restoring the
    /// snapshot). A store may also skip it while an earlier one is still
    /// being written (that one stands for the same records). The default
    /// compacts at once.
    fn compact_in_background(&mut self, checkpoint: Vec<Record>) -> Result<()> {
        self.compact(checkpoint)
    }

    /// Whether a checkpoint from
    /// [`compact_in_background`](Storage::compact_in_background) is still
    /// being written (not yet in place). The default never is.
    fn compacting(&self) -> bool {
        false
    }
}

/// Records in memory: for tests, the simulator and nodes whose durability
/// comes from elsewhere. [`crash`](MemoryStorage::crash) models losing
/// whatever was appended but not synced.
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    records: Vec<Record>,
    synced: usize,
    syncs: u64,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget every record not yet synced, as a power cut would.
    pub fn crash(&mut self) {
        self.records.truncate(self.synced);
    }

    /// Every record held (synced or not).
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// How many times `sync` was called.
    pub fn syncs(&self) -> u64 {
        self.syncs
    }
}

impl Storage for MemoryStorage {
    fn append(&mut self, record: &Record) -> Result<()> {
        self.records.push(record.clone());
        Ok(())
    }

    fn append_owned(&mut self, record: Record) -> Result<()> {
        self.records.push(record);
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.synced = self.records.len();
        self.syncs += 1;
        Ok(())
    }

    fn load(&mut self) -> Result<Vec<Record>> {
        Ok(self.records.clone())
    }

    fn compact(&mut self, checkpoint: Vec<Record>) -> Result<()> {
        self.records = checkpoint;
        self.synced = self.records.len();
        self.syncs += 1;
        Ok(())
    }
}

impl<S: Storage + ?Sized> Storage for Box<S> {
    fn append(&mut self, record: &Record) -> Result<()> {
        (**self).append(record)
    }
    fn append_owned(&mut self, record: Record) -> Result<()> {
        (**self).append_owned(record)
    }
    fn sync(&mut self) -> Result<()> {
        (**self).sync()
    }
    fn load(&mut self) -> Result<Vec<Record>> {
        (**self).load()
    }
    fn compact(&mut self, checkpoint: Vec<Record>) -> Result<()> {
        (**self).compact(checkpoint)
    }
    fn compact_in_background(&mut self, checkpoint: Vec<Record>) -> Result<()> {
        (**self).compact_in_background(checkpoint)
    }
    fn compacting(&self) -> bool {
        (**self).compacting()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_keeps_only_synced_records() {
        let mut s = MemoryStorage::new();
        let p = Record::Promise {
            ballot: Ballot::new(1, 1),
        };
        s.append(&p).unwrap();
        s.sync().unwrap();
        s.append(&Record::Commit { commit: 3 }).unwrap();
        assert_eq!(s.records().len(), 2);
        s.crash();
        assert_eq!(s.load().unwrap(), vec![p]);
        assert_eq!(s.syncs(), 1);
    }
}
