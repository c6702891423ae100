//! Exactly-once application of retried requests. Each replica keeps, per
//! client session, the last request id applied and its result; a decided
//! command whose request id is not newer is not applied again (its cached
//! result answers a retry). Every replica applies the same log, so every
//! replica's table is the same, evictions included.

use std::collections::HashMap;

/// Sessions kept before the least recently active are forgotten (a client
/// silent through this many other sessions' requests loses its dedup).
pub const DEFAULT_MAX_SESSIONS: usize = 100_000;

#[derive(Debug)]
struct Session {
    request: u64,
    /// `None` while the request's result is deferred.
    result: Option<Vec<u8>>,
    /// The position of its last command in the log (for eviction order).
    seen: u64,
}

/// The session table.
#[derive(Debug)]
pub struct Sessions {
    map: HashMap<u64, Session>,
    max: usize,
    seq: u64,
}

/// What to do with a decided command.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// New: apply it, then call [`Sessions::record`].
    Apply,
    /// Already applied: this was its result.
    Duplicate(&'a [u8]),
    /// Already applied, and its result is still to come.
    Deferred,
    /// Older than the session's last request: its answer is gone (the
    /// client moved on, so nobody waits for it).
    Stale,
}

impl Sessions {
    /// An empty table keeping at most `max` sessions (at least 1).
    pub fn new(max: usize) -> Self {
        Sessions {
            map: HashMap::new(),
            max: max.max(1),
            seq: 0,
        }
    }

    /// Classifies a decided command of `client` with id `request`.
    pub fn check(&self, client: u64, request: u64) -> Verdict<'_> {
        match self.map.get(&client) {
            Some(s) if request == s.request => match &s.result {
                Some(r) => Verdict::Duplicate(r),
                None => Verdict::Deferred,
            },
            Some(s) if request < s.request => Verdict::Stale,
            _ => Verdict::Apply,
        }
    }

    /// Records the deferred result of `request`, if it is still the
    /// session's latest.
    pub fn complete(&mut self, client: u64, request: u64, result: Vec<u8>) {
        if let Some(s) = self.map.get_mut(&client)
            && s.request == request
        {
            s.result = Some(result);
        }
    }

    /// Records that `request` of `client` was applied with `result`
    /// (`None`: deferred, see [`Self::complete`]).
    pub fn record(&mut self, client: u64, request: u64, result: Option<Vec<u8>>) {
        self.seq += 1;
        self.map.insert(
            client,
            Session {
                request,
                result,
                seen: self.seq,
            },
        );
        if self.map.len() > self.max {
            // Forget the least recently active tenth at once (deterministic:
            // `seen` is the log order), so eviction costs O(1) amortized.
            let mut seen: Vec<u64> = self.map.values().map(|s| s.seen).collect();
            let cut = (self.max / 10).max(1);
            seen.select_nth_unstable(cut - 1);
            let bound = seen[cut - 1];
            self.map.retain(|_, s| s.seen > bound);
        }
    }

    /// Appends the table to `out` (for a snapshot; every replica's table
    /// is the same, so its encoding is too: sessions in client order).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.max as u64).to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&(self.map.len() as u64).to_be_bytes());
        let mut clients: Vec<&u64> = self.map.keys().collect();
        clients.sort_unstable();
        for c in clients {
            let s = &self.map[c];
            out.extend_from_slice(&c.to_be_bytes());
            out.extend_from_slice(&s.request.to_be_bytes());
            out.extend_from_slice(&s.seen.to_be_bytes());
            match &s.result {
                None => out.push(0),
                Some(r) => {
                    out.push(1);
                    super::frame::put_bytes(out, r);
                }
            }
        }
    }

    /// The table [`encode`](Self::encode) wrote.
    pub(crate) fn decode(r: &mut super::frame::Reader<'_>) -> crate::Result<Self> {
        let max = r.u64()? as usize;
        let seq = r.u64()?;
        let n = r.u64()?;
        let mut map = HashMap::new();
        for _ in 0..n {
            let client = r.u64()?;
            let request = r.u64()?;
            let seen = r.u64()?;
            let result = match r.u8()? {
                0 => None,
                1 => Some(r.bytes()?.to_vec()),
                b => {
                    return Err(crate::Error::corrupt(format!(
                        "sessions: a result flag of {b}"
                    )));
                }
            };
            map.insert(
                client,
                Session {
                    request,
                    result,
                    seen,
                },
            );
        }
        Ok(Sessions {
            map,
            max: max.max(1),
            seq,
        })
    }

    /// How many sessions are kept.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_is_not_applied_twice_and_old_sessions_go() {
        let mut s = Sessions::new(20);
        assert_eq!(s.check(1, 1), Verdict::Apply);
        s.record(1, 1, Some(b"r1".to_vec()));
        assert_eq!(s.check(1, 1), Verdict::Duplicate(b"r1"));
        assert_eq!(s.check(1, 0), Verdict::Stale);
        assert_eq!(s.check(1, 2), Verdict::Apply);
        for c in 2..=21 {
            s.record(c, 1, Some(vec![]));
        }
        // Client 1 was the least recently active: forgotten with one other.
        assert!(s.len() <= 20);
        assert_eq!(s.check(1, 1), Verdict::Apply);
        assert_eq!(s.check(21, 1), Verdict::Duplicate(b""));
        s.record(30, 4, None);
        assert_eq!(s.check(30, 4), Verdict::Deferred);
        s.complete(30, 3, b"old".to_vec()); // not the latest: ignored
        assert_eq!(s.check(30, 4), Verdict::Deferred);
        s.complete(30, 4, b"late".to_vec());
        assert_eq!(s.check(30, 4), Verdict::Duplicate(b"late"));
        // Through a snapshot and back: the same table.
        s.record(31, 9, None);
        let mut bytes = Vec::new();
        s.encode(&mut bytes);
        let mut r = crate::net::frame::Reader::new(&bytes);
        let t = Sessions::decode(&mut r).unwrap();
        r.finish().unwrap();
        let mut again = Vec::new();
        t.encode(&mut again);
        assert_eq!(again, bytes);
        assert_eq!(t.check(30, 4), Verdict::Duplicate(b"late"));
        assert_eq!(t.check(31, 9), Verdict::Deferred);
        assert_eq!(t.len(), s.len());
        // Cut anywhere: an error, never a panic.
        for cut in 0..bytes.len() {
            assert!(Sessions::decode(&mut crate::net::frame::Reader::new(&bytes[..cut])).is_err());
        }
    }
}
