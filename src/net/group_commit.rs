//! Group commit: one fsync for every record appended while a batch of
//! events was handled. The node's own `sync` only marks the storage dirty;
//! the runtime calls [`GroupCommit::commit`] once per batch, before it
//! polls (and so before any message that depends on the records leaves, or
//! any decision is applied).

use crate::error::Result;
use crate::paxos::{Record, Storage};

/// A storage whose `sync` is deferred to [`GroupCommit::commit`].
#[derive(Debug)]
pub struct GroupCommit<S> {
    inner: S,
    dirty: bool,
    commits: u64,
}

impl<S: Storage> GroupCommit<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        GroupCommit {
            inner,
            dirty: false,
            commits: 0,
        }
    }

    /// Syncs what the node asked to sync since the last commit (nothing
    /// when it asked nothing).
    pub fn commit(&mut self) -> Result<()> {
        if self.dirty {
            self.inner.sync()?;
            self.dirty = false;
            self.commits += 1;
        }
        Ok(())
    }

    /// Real syncs so far.
    pub fn commits(&self) -> u64 {
        self.commits
    }

    /// The wrapped storage.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: Storage> Storage for GroupCommit<S> {
    fn append(&mut self, record: &Record) -> Result<()> {
        self.inner.append(record)
    }

    fn append_owned(&mut self, record: Record) -> Result<()> {
        self.inner.append_owned(record)
    }

    fn sync(&mut self) -> Result<()> {
        self.dirty = true;
        Ok(())
    }

    fn load(&mut self) -> Result<Vec<Record>> {
        self.inner.load()
    }

    /// Not deferred: a checkpoint is durable when this returns.
    fn compact(&mut self, checkpoint: Vec<Record>) -> Result<()> {
        self.inner.compact(checkpoint)
    }

    /// The inner store's: a checkpoint written in the background lands at
    /// a later [`commit`](GroupCommit::commit).
    fn compact_in_background(&mut self, checkpoint: Vec<Record>) -> Result<()> {
        self.inner.compact_in_background(checkpoint)
    }

    fn compacting(&self) -> bool {
        self.inner.compacting()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paxos::{Ballot, MemoryStorage};

    #[test]
    fn many_syncs_become_one_and_unsynced_records_are_lost_in_a_crash() {
        let mut s = GroupCommit::new(MemoryStorage::new());
        for round in 1..=3 {
            s.append(&Record::Promise {
                ballot: Ballot { round, node: 1 },
            })
            .unwrap();
            s.sync().unwrap();
        }
        assert_eq!(s.inner().syncs(), 0);
        s.commit().unwrap();
        s.commit().unwrap(); // nothing new: no sync
        assert_eq!((s.inner().syncs(), s.commits()), (1, 1));
        s.append(&Record::Commit { commit: 1 }).unwrap();
        s.sync().unwrap();
        let mut inner = s.inner;
        inner.crash(); // before the runtime's commit: the record is gone
        assert_eq!(inner.load().unwrap().len(), 3);
    }
}
