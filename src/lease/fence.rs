//! `Fence`: what a protected resource checks before acting on a lease
//! holder's request. A holder that paused past its TTL carries an old
//! token; once a newer holder has been seen, the old token is refused
//! (Kleppmann, "How to do distributed locking"; Chubby's sequencers).

use std::sync::Mutex;

use crossbeam_utils::CachePadded;

use crate::error::{Error, Result};

type Map<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

const SHARDS: usize = 16;

type Shard = CachePadded<Mutex<Map<Box<str>, u64>>>;

/// Highest fencing token seen per resource. Thread-safe (`&self`); sharded
/// by resource so unrelated resources do not contend.
pub struct Fence {
    hasher: ahash::RandomState,
    shards: Box<[Shard]>,
}

impl std::fmt::Debug for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fence")
            .field("resources", &self.len())
            .finish()
    }
}

impl Default for Fence {
    fn default() -> Self {
        Self::new()
    }
}

impl Fence {
    /// A fence that has seen no tokens.
    pub fn new() -> Self {
        Fence {
            hasher: ahash::RandomState::new(),
            shards: (0..SHARDS)
                .map(|_| CachePadded::new(Mutex::default()))
                .collect(),
        }
    }

    fn shard(&self, resource: &str) -> std::sync::MutexGuard<'_, Map<Box<str>, u64>> {
        let i = (self.hasher.hash_one(resource) as usize) % SHARDS;
        // A poisoned shard still holds consistent data (one integer per key).
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Accepts `token` if it is at least the highest seen for `resource`
    /// (equal: the same holder again) and records it; otherwise
    /// `StaleToken`. Check and record are one atomic step.
    pub fn check(&self, resource: &str, token: u64) -> Result<()> {
        let mut m = self.shard(resource);
        match m.get_mut(resource) {
            Some(highest) if token < *highest => Err(Error::StaleToken {
                resource: resource.to_owned(),
                token,
                highest: *highest,
            }),
            Some(highest) => {
                *highest = token;
                Ok(())
            }
            None => {
                m.insert(resource.into(), token);
                Ok(())
            }
        }
    }

    /// The highest token seen for `resource`.
    pub fn highest(&self, resource: &str) -> Option<u64> {
        self.shard(resource).get(resource).copied()
    }

    /// The number of resources seen.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    /// Whether no token has been seen.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
