//! A small versioned byte encoding of [`Message`], so C and Python callers
//! (and any transport) can carry transaction messages.
//!
//! Layout: a version byte ([`TXN_WIRE_VERSION`]), a tag byte, the transaction
//! id (u64), then the variant's fields; integers little-endian, bools one
//! byte (0 or 1), lists a u32 count then u32 ids, ballots u64 round + u32
//! node. Tags: 1 Prepare (participants, acceptors), 2 Vote (yes),
//! 3 Outcome (commit), 4 DecisionRequest, 5 Paxos (rm u32, then a sub-tag:
//! 1 Prepare ballot, 2 Promise ballot + flag [+ ballot + value], 3 Accept
//! ballot + value, 4 Accepted ballot + value, 5 Nack ballot + promised).
//!
//! [`decode`] never panics: truncated input, an unknown tag, a bool that is
//! not 0 or 1, a list longer than the input or trailing bytes are
//! `Error::Corrupt`; another version byte is `Error::UnsupportedVersion`.

use super::message::{Message, PaxosMsg};
use crate::error::{Error, Result};
use crate::paxos::Ballot;

/// The encoding's version, the first byte of every message.
pub const TXN_WIRE_VERSION: u8 = 1;

/// The bytes of `message`.
pub fn encode(message: &Message) -> Vec<u8> {
    let mut b = vec![TXN_WIRE_VERSION];
    let txn = message.txn();
    match message {
        Message::Prepare {
            participants,
            acceptors,
            ..
        } => {
            b.push(1);
            b.extend_from_slice(&txn.to_le_bytes());
            for list in [participants, acceptors] {
                b.extend_from_slice(&(list.len() as u32).to_le_bytes());
                for p in list {
                    b.extend_from_slice(&p.to_le_bytes());
                }
            }
        }
        Message::Vote { yes, .. } => {
            b.push(2);
            b.extend_from_slice(&txn.to_le_bytes());
            b.push(*yes as u8);
        }
        Message::Outcome { commit, .. } => {
            b.push(3);
            b.extend_from_slice(&txn.to_le_bytes());
            b.push(*commit as u8);
        }
        Message::DecisionRequest { .. } => {
            b.push(4);
            b.extend_from_slice(&txn.to_le_bytes());
        }
        Message::Paxos { rm, msg, .. } => {
            b.push(5);
            b.extend_from_slice(&txn.to_le_bytes());
            b.extend_from_slice(&rm.to_le_bytes());
            let ballot = |b: &mut Vec<u8>, x: &Ballot| {
                b.extend_from_slice(&x.round.to_le_bytes());
                b.extend_from_slice(&x.node.to_le_bytes());
            };
            match msg {
                PaxosMsg::Prepare { ballot: x } => {
                    b.push(1);
                    ballot(&mut b, x);
                }
                PaxosMsg::Promise {
                    ballot: x,
                    accepted,
                } => {
                    b.push(2);
                    ballot(&mut b, x);
                    match accepted {
                        None => b.push(0),
                        Some((ab, v)) => {
                            b.push(1);
                            ballot(&mut b, ab);
                            b.push(*v as u8);
                        }
                    }
                }
                PaxosMsg::Accept {
                    ballot: x,
                    prepared,
                } => {
                    b.push(3);
                    ballot(&mut b, x);
                    b.push(*prepared as u8);
                }
                PaxosMsg::Accepted {
                    ballot: x,
                    prepared,
                } => {
                    b.push(4);
                    ballot(&mut b, x);
                    b.push(*prepared as u8);
                }
                PaxosMsg::Nack {
                    ballot: x,
                    promised,
                } => {
                    b.push(5);
                    ballot(&mut b, x);
                    ballot(&mut b, promised);
                }
            }
        }
    }
    b
}

struct Reader<'a> {
    b: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.b.len() < n {
            return Err(Error::corrupt("transaction message is truncated"));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
    fn bool(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            x => Err(Error::corrupt(format!("bool byte {x} is neither 0 nor 1"))),
        }
    }
    fn ballot(&mut self) -> Result<Ballot> {
        Ok(Ballot::new(self.u64()?, self.u32()?))
    }
    fn list(&mut self) -> Result<Vec<u32>> {
        let n = self.u32()? as usize;
        if n > self.b.len() / 4 {
            return Err(Error::corrupt(format!(
                "a list of {n} ids does not fit in the message"
            )));
        }
        (0..n).map(|_| self.u32()).collect()
    }
}

/// The message encoded in `bytes`.
///
/// Errors: `Corrupt` for damaged bytes; `UnsupportedVersion` for another
/// encoding version.
pub fn decode(bytes: &[u8]) -> Result<Message> {
    let mut r = Reader { b: bytes };
    let version = r.u8()?;
    if version != TXN_WIRE_VERSION {
        return Err(Error::UnsupportedVersion {
            found: version as u16,
            supported: TXN_WIRE_VERSION as u16,
        });
    }
    let tag = r.u8()?;
    let txn = r.u64()?;
    let m = match tag {
        1 => Message::Prepare {
            txn,
            participants: r.list()?,
            acceptors: r.list()?,
        },
        2 => Message::Vote {
            txn,
            yes: r.bool()?,
        },
        3 => Message::Outcome {
            txn,
            commit: r.bool()?,
        },
        4 => Message::DecisionRequest { txn },
        5 => {
            let rm = r.u32()?;
            let msg = match r.u8()? {
                1 => PaxosMsg::Prepare {
                    ballot: r.ballot()?,
                },
                2 => {
                    let ballot = r.ballot()?;
                    let accepted = if r.bool()? {
                        Some((r.ballot()?, r.bool()?))
                    } else {
                        None
                    };
                    PaxosMsg::Promise { ballot, accepted }
                }
                3 => PaxosMsg::Accept {
                    ballot: r.ballot()?,
                    prepared: r.bool()?,
                },
                4 => PaxosMsg::Accepted {
                    ballot: r.ballot()?,
                    prepared: r.bool()?,
                },
                5 => PaxosMsg::Nack {
                    ballot: r.ballot()?,
                    promised: r.ballot()?,
                },
                t => return Err(Error::corrupt(format!("unknown Paxos message tag {t}"))),
            };
            Message::Paxos { txn, rm, msg }
        }
        t => {
            return Err(Error::corrupt(format!(
                "unknown transaction message tag {t}"
            )));
        }
    };
    if !r.b.is_empty() {
        return Err(Error::corrupt(format!(
            "{} trailing bytes after a transaction message",
            r.b.len()
        )));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Message> {
        let b = Ballot::new(3, 7);
        let mut v = vec![
            Message::Prepare {
                txn: 1,
                participants: vec![1, 2, 3],
                acceptors: vec![],
            },
            Message::Prepare {
                txn: u64::MAX,
                participants: vec![9],
                acceptors: vec![10, 11, 12],
            },
            Message::Vote { txn: 2, yes: true },
            Message::Vote { txn: 2, yes: false },
            Message::Outcome {
                txn: 3,
                commit: true,
            },
            Message::DecisionRequest { txn: 4 },
        ];
        for msg in [
            PaxosMsg::Prepare { ballot: b },
            PaxosMsg::Promise {
                ballot: b,
                accepted: None,
            },
            PaxosMsg::Promise {
                ballot: b,
                accepted: Some((Ballot::ZERO, true)),
            },
            PaxosMsg::Accept {
                ballot: b,
                prepared: false,
            },
            PaxosMsg::Accepted {
                ballot: b,
                prepared: true,
            },
            PaxosMsg::Nack {
                ballot: b,
                promised: Ballot::new(9, 1),
            },
        ] {
            v.push(Message::Paxos { txn: 5, rm: 2, msg });
        }
        v
    }

    #[test]
    fn round_trips() {
        for m in samples() {
            assert_eq!(decode(&encode(&m)).unwrap(), m, "{m:?}");
        }
    }

    #[test]
    fn layout_is_pinned() {
        let b = encode(&Message::Vote {
            txn: 258,
            yes: true,
        });
        assert_eq!(b, [1, 2, 2, 1, 0, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn every_truncation_and_extension_is_corrupt() {
        for m in samples() {
            let b = encode(&m);
            for n in 0..b.len() {
                assert!(
                    matches!(decode(&b[..n]), Err(Error::Corrupt(_))),
                    "{m:?} cut at {n}"
                );
            }
            let mut longer = b.clone();
            longer.push(0);
            assert!(matches!(decode(&longer), Err(Error::Corrupt(_))));
        }
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        assert!(matches!(
            decode(&[2, 2]),
            Err(Error::UnsupportedVersion { found: 2, .. })
        ));
        let mut b = encode(&Message::Vote { txn: 1, yes: true });
        b[10] = 2;
        assert!(matches!(decode(&b), Err(Error::Corrupt(_))));
        b[1] = 99;
        assert!(matches!(decode(&b), Err(Error::Corrupt(_))));
        // A list count far beyond the input must not allocate or panic.
        let mut p = vec![1, 1];
        p.extend_from_slice(&0u64.to_le_bytes());
        p.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode(&p), Err(Error::Corrupt(_))));
        // Random garbage: never a panic.
        let mut rng = crate::rng::SplitMix64::new(7);
        for _ in 0..20_000 {
            let n = rng.below(40) as usize;
            let mut g: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            if !g.is_empty() && rng.chance(500_000) {
                g[0] = TXN_WIRE_VERSION;
            }
            let _ = decode(&g);
        }
    }
}
