//! A state machine that the host program supplies as functions — the C
//! face's callbacks and the Python face's callables — for the replica
//! runtime. The host's function may refuse a command; the refusal is part
//! of the replicated result (every replica refuses alike, so it must be a
//! deterministic function of the state and the command), and the client
//! gets it back as an error.
//!
//! A replica applies its whole log again after a restart, so a hosted
//! state must start empty each time its replica starts.

use super::client::Client;
use super::replica::{Applied, Applying, StateMachine};
use crate::error::{Error, Result};

/// Applies a decided command at cluster time `time_ns`: its result, or the
/// host's refusal.
pub type ApplyFn = Box<dyn FnMut(u64, &[u8]) -> std::result::Result<Vec<u8>, String> + Send>;
/// Answers a read-only query from the current state, or refuses it.
pub type QueryFn = Box<dyn FnMut(&[u8]) -> std::result::Result<Vec<u8>, String> + Send>;
/// The host's whole state as bytes (for log compaction); `Err` skips this
/// compaction (the replica tries again at the next one).
pub type SnapshotFn = Box<dyn FnMut() -> std::result::Result<Vec<u8>, String> + Send>;
/// Replaces the host's state with a snapshot's bytes; `Err` stops the
/// replica.
pub type RestoreFn = Box<dyn FnMut(&[u8]) -> std::result::Result<(), String> + Send>;

const DONE: u8 = 0;
const REFUSED: u8 = 1;

/// A [`StateMachine`] made of the host's functions.
pub struct HostedMachine {
    apply: ApplyFn,
    query: Option<QueryFn>,
    snapshots: Option<(SnapshotFn, RestoreFn)>,
}

impl HostedMachine {
    /// A machine applying with `apply` and answering reads with `query`
    /// (`None`: reads are refused).
    pub fn new(apply: ApplyFn, query: Option<QueryFn>) -> HostedMachine {
        HostedMachine {
            apply,
            query,
            snapshots: None,
        }
    }

    /// The same machine, able to snapshot and restore its state: its
    /// replica then compacts its log.
    pub fn with_snapshots(mut self, snapshot: SnapshotFn, restore: RestoreFn) -> HostedMachine {
        self.snapshots = Some((snapshot, restore));
        self
    }
}

impl StateMachine for HostedMachine {
    fn apply(&mut self, command: &Applying<'_>) -> Applied {
        let mut out;
        match (self.apply)(command.time, command.command) {
            Ok(r) => {
                out = Vec::with_capacity(r.len() + 1);
                out.push(DONE);
                out.extend_from_slice(&r);
            }
            Err(m) => {
                out = Vec::with_capacity(m.len() + 1);
                out.push(REFUSED);
                out.extend_from_slice(m.as_bytes());
            }
        }
        Applied::Done(out)
    }

    fn snapshot(&mut self) -> Option<Vec<u8>> {
        let (snapshot, _) = self.snapshots.as_mut()?;
        match snapshot() {
            Ok(bytes) => Some(bytes),
            Err(m) => {
                // Skipped; the next compaction asks again.
                eprintln!("quorumkit: the state machine's snapshot failed: {m}");
                None
            }
        }
    }

    fn restore(&mut self, data: &[u8]) -> std::result::Result<(), String> {
        match self.snapshots.as_mut() {
            Some((_, restore)) => restore(data),
            None => Err("this replica was started without snapshot and restore functions".into()),
        }
    }

    fn query(&mut self, query: &[u8]) -> std::result::Result<Vec<u8>, String> {
        match &mut self.query {
            Some(f) => f(query),
            None => Err("this replica was started without a query function".into()),
        }
    }
}

/// The result of a command applied by a [`HostedMachine`]: the host's
/// result, or `InvalidArgument` carrying its refusal.
pub fn decode_result(result: &[u8]) -> Result<Vec<u8>> {
    match result.split_first() {
        Some((&DONE, r)) => Ok(r.to_vec()),
        Some((&REFUSED, m)) => Err(Error::invalid(format!(
            "the state machine refused the command: {}",
            String::from_utf8_lossy(m)
        ))),
        _ => Err(Error::Corrupt(
            "a result that no hosted state machine produced (is the cluster running another state?)"
                .into(),
        )),
    }
}

/// Replicates `command` through `client` and returns the hosted machine's
/// result ([`decode_result`]).
pub fn propose(client: &mut Client, command: &[u8]) -> Result<Vec<u8>> {
    decode_result(&client.propose(command)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_and_refusals_travel_through_the_encoding() {
        let mut m = HostedMachine::new(
            Box::new(|t, c| {
                if c.is_empty() {
                    Err("empty".into())
                } else {
                    Ok(format!("{t}:{}", c.len()).into_bytes())
                }
            }),
            None,
        );
        let at = |c: &'static [u8]| Applying {
            client: 1,
            request: 1,
            time: 7,
            command: c,
        };
        let Applied::Done(ok) = m.apply(&at(b"abc")) else {
            panic!()
        };
        assert_eq!(decode_result(&ok).unwrap(), b"7:3");
        let Applied::Done(bad) = m.apply(&at(b"")) else {
            panic!()
        };
        let e = decode_result(&bad).unwrap_err().to_string();
        assert!(e.contains("refused") && e.contains("empty"), "{e}");
        assert!(matches!(decode_result(b""), Err(Error::Corrupt(_))));
        assert!(matches!(decode_result(b"\x07x"), Err(Error::Corrupt(_))));
        assert!(m.query(b"q").is_err());
    }
}
