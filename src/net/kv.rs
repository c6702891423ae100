//! A replicated key-value store on the runtime: the example state machine
//! of `quorumkit serve --state kv`, and what the fault tests check for
//! linearizability. Keys and values are bytes; `add` treats a value as a
//! big-endian i64 (absent = 0).

use std::collections::BTreeMap;

use super::frame::{Reader, put_bytes};
use super::replica::{Applied, Applying, StateMachine};

const PUT: u8 = b'P';
const DELETE: u8 = b'D';
const ADD: u8 = b'A';
const GET: u8 = b'G';

/// The command that sets `key` to `value` (result: [`decode_previous`]).
pub fn put(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut c = vec![PUT];
    put_bytes(&mut c, key);
    c.extend_from_slice(value);
    c
}

/// The command that removes `key` (result: [`decode_previous`]).
pub fn delete(key: &[u8]) -> Vec<u8> {
    let mut c = vec![DELETE];
    put_bytes(&mut c, key);
    c
}

/// The command that adds `delta` to the i64 at `key` (result: the new
/// value, 8 bytes big-endian; [`decode_i64`]).
pub fn add(key: &[u8], delta: i64) -> Vec<u8> {
    let mut c = vec![ADD];
    put_bytes(&mut c, key);
    c.extend_from_slice(&delta.to_be_bytes());
    c
}

/// The query that reads `key` (result: [`decode_previous`] form: the value
/// or `None`).
pub fn get(key: &[u8]) -> Vec<u8> {
    let mut q = vec![GET];
    put_bytes(&mut q, key);
    q
}

/// A put, delete or get result: the value that was there, if any.
pub fn decode_previous(result: &[u8]) -> Option<Vec<u8>> {
    match result.split_first() {
        Some((1, v)) => Some(v.to_vec()),
        _ => None,
    }
}

/// An add result (or an i64 value).
pub fn decode_i64(result: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(result.try_into().ok()?))
}

/// The store.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KvStore {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl KvStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value at `key`.
    pub fn value(&self, key: &[u8]) -> Option<&[u8]> {
        self.map.get(key).map(Vec::as_slice)
    }
}

fn previous(v: Option<Vec<u8>>) -> Vec<u8> {
    match v {
        Some(mut v) => {
            v.insert(0, 1);
            v
        }
        None => vec![0],
    }
}

/// The result of a command the store cannot parse (the same everywhere).
pub const BAD_COMMAND: &[u8] = b"\xffbad command";

impl StateMachine for KvStore {
    fn apply(&mut self, command: &Applying<'_>) -> Applied {
        Applied::Done(self.apply_bytes(command.command))
    }

    fn snapshot(&mut self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        out.extend_from_slice(&(self.map.len() as u64).to_be_bytes());
        for (k, v) in &self.map {
            put_bytes(&mut out, k);
            put_bytes(&mut out, v);
        }
        Some(out)
    }

    fn restore(&mut self, data: &[u8]) -> std::result::Result<(), String> {
        let mut r = Reader::new(data);
        let parsed = (|| {
            let n = r.u64()?;
            let mut map = BTreeMap::new();
            for _ in 0..n {
                let k = r.bytes()?.to_vec();
                map.insert(k, r.bytes()?.to_vec());
            }
            r.finish()?;
            Ok::<_, crate::Error>(map)
        })();
        self.map = parsed.map_err(|e| format!("kv: not a snapshot of this store: {e}"))?;
        Ok(())
    }

    fn query(&mut self, query: &[u8]) -> std::result::Result<Vec<u8>, String> {
        let mut r = Reader::new(query);
        match (r.u8(), r.bytes()) {
            (Ok(GET), Ok(key)) if r.finish().is_ok() => Ok(previous(self.map.get(key).cloned())),
            _ => Err("kv: not a query of this store".into()),
        }
    }
}

impl KvStore {
    /// Applies one command's bytes; returns its result.
    pub fn apply_bytes(&mut self, command: &[u8]) -> Vec<u8> {
        let mut r = Reader::new(command);
        let parsed = (|| {
            let op = r.u8().ok()?;
            let key = r.bytes().ok()?.to_vec();
            Some((op, key))
        })();
        let Some((op, key)) = parsed else {
            return BAD_COMMAND.to_vec();
        };
        match op {
            PUT => previous(self.map.insert(key, r.rest().to_vec())),
            DELETE if r.finish().is_ok() => previous(self.map.remove(&key)),
            ADD => {
                let Ok(delta) = r.u64() else {
                    return BAD_COMMAND.to_vec();
                };
                let cur = self.map.get(&key).and_then(|v| decode_i64(v)).unwrap_or(0);
                let new = cur.wrapping_add(delta as i64);
                self.map.insert(key, new.to_be_bytes().to_vec());
                new.to_be_bytes().to_vec()
            }
            _ => BAD_COMMAND.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_queries() {
        let mut kv = KvStore::new();
        assert_eq!(decode_previous(&kv.apply_bytes(&put(b"a", b"1"))), None);
        assert_eq!(
            decode_previous(&kv.apply_bytes(&put(b"a", b"2"))),
            Some(b"1".to_vec())
        );
        assert_eq!(
            decode_previous(&kv.query(&get(b"a")).unwrap()),
            Some(b"2".to_vec())
        );
        assert_eq!(decode_i64(&kv.apply_bytes(&add(b"n", 5))), Some(5));
        assert_eq!(decode_i64(&kv.apply_bytes(&add(b"n", -7))), Some(-2));
        assert_eq!(
            decode_previous(&kv.apply_bytes(&delete(b"a"))),
            Some(b"2".to_vec())
        );
        assert_eq!(decode_previous(&kv.query(&get(b"a")).unwrap()), None);
        // Garbage is answered, the same on every replica, and changes nothing.
        let before = kv.clone();
        for bad in [
            &b""[..],
            b"P",
            b"Z\0\0\0\0",
            b"A\0\0\0\x01n\x01",
            b"D\0\0\0\x01ax",
        ] {
            assert_eq!(kv.apply_bytes(bad), BAD_COMMAND, "{bad:?}");
        }
        assert_eq!(kv, before);
        assert!(kv.query(b"X").is_err() && kv.query(&put(b"a", b"")).is_err());
    }
}
