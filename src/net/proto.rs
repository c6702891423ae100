//! The frames that follow the handshake. Between replicas: one kind, the
//! Paxos wire format (`docs/WIRE.md`). Between a client and a replica: a
//! request with a request id, and its answer.
//!
//! A command in the replicated log carries its client id and request id,
//! so a retried request is applied once (see `sessions`).

use super::frame::{Reader, put_bytes};
use crate::error::{Error, Result};

/// Replica to replica: a Paxos message.
pub const KIND_PAXOS: u8 = 10;
/// Client: propose a command (client id, request id, command).
pub const KIND_PROPOSE: u8 = 20;
/// Client: a read-only query (request id, query).
pub const KIND_READ: u8 = 21;
/// Client: the replica's status (request id).
pub const KIND_STATUS: u8 = 22;
/// Client: an administrative request (request id, [`AdminOp`]).
pub const KIND_ADMIN: u8 = 23;
/// Replica: the answer (request id, result).
pub const KIND_OK: u8 = 30;
/// Replica: ask the leader (request id, leader id or 0, its address).
pub const KIND_REDIRECT: u8 = 31;
/// Replica: a failure (request id, code, message).
pub const KIND_ERROR: u8 = 32;

/// Why a replica refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ErrorCode {
    /// No leader is known yet, or the leader could not serve it in time:
    /// retry later.
    Unavailable = 1,
    /// Too many requests are pending: retry later.
    Busy = 2,
    /// The request is malformed.
    Invalid = 3,
    /// The state machine refused the query.
    Rejected = 4,
}

impl ErrorCode {
    fn from_u8(v: u8) -> Result<Self> {
        Ok(match v {
            1 => ErrorCode::Unavailable,
            2 => ErrorCode::Busy,
            3 => ErrorCode::Invalid,
            4 => ErrorCode::Rejected,
            _ => return Err(Error::corrupt(format!("net: unknown error code {v}"))),
        })
    }
}

/// A client's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Replicate `command`; answered with the state machine's result once
    /// it is decided and applied.
    Propose {
        /// The client session (random, chosen by the client).
        client: u64,
        /// Increases with each new request of the session; a retry reuses it.
        request: u64,
        /// The command.
        command: Vec<u8>,
    },
    /// Answer `query` from the leader's state (under its lease).
    Read {
        /// Echoed in the answer.
        request: u64,
        /// The query.
        query: Vec<u8>,
    },
    /// The replica's status.
    Status {
        /// Echoed in the answer.
        request: u64,
    },
    /// Change the cluster (membership, leadership) or ask its membership.
    Admin {
        /// Echoed in the answer.
        request: u64,
        /// What to do.
        op: AdminOp,
    },
}

/// An administrative request. Membership changes and transfers go to the
/// leader (others redirect); `AddPeer` and `Membership` are answered by
/// the replica asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminOp {
    /// Make replica `id` at `addr` known to this replica.
    AddPeer {
        /// The replica.
        id: u32,
        /// Its address.
        addr: std::net::SocketAddr,
    },
    /// Propose a membership change.
    Change(crate::paxos::MembershipChange),
    /// Hand the leadership to voter `to`.
    Transfer {
        /// The voter.
        to: u32,
    },
    /// This replica's membership, answered as [`encode_membership`] bytes.
    Membership,
}

impl AdminOp {
    fn encode(&self, p: &mut Vec<u8>) {
        use crate::paxos::MembershipChange as C;
        match *self {
            AdminOp::AddPeer { id, addr } => {
                p.push(1);
                p.extend_from_slice(&id.to_be_bytes());
                put_bytes(p, addr.to_string().as_bytes());
            }
            AdminOp::Change(c) => {
                let (kind, id, other) = match c {
                    C::AddLearner(id) => (1, id, 0),
                    C::Promote(id) => (2, id, 0),
                    C::Remove(id) => (3, id, 0),
                    C::Replace { old, new } => (4, old, new),
                };
                p.push(2);
                p.push(kind);
                p.extend_from_slice(&id.to_be_bytes());
                p.extend_from_slice(&other.to_be_bytes());
            }
            AdminOp::Transfer { to } => {
                p.push(3);
                p.extend_from_slice(&to.to_be_bytes());
            }
            AdminOp::Membership => p.push(4),
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        use crate::paxos::MembershipChange as C;
        Ok(match r.u8()? {
            1 => {
                let id = r.u32()?;
                let addr = r.string()?;
                let addr = addr
                    .parse()
                    .map_err(|_| Error::corrupt(format!("net: {addr:?} is not an address")))?;
                AdminOp::AddPeer { id, addr }
            }
            2 => {
                let kind = r.u8()?;
                let (id, other) = (r.u32()?, r.u32()?);
                AdminOp::Change(match kind {
                    1 => C::AddLearner(id),
                    2 => C::Promote(id),
                    3 => C::Remove(id),
                    4 => C::Replace {
                        old: id,
                        new: other,
                    },
                    k => return Err(Error::corrupt(format!("net: unknown change kind {k}"))),
                })
            }
            3 => AdminOp::Transfer { to: r.u32()? },
            4 => AdminOp::Membership,
            k => return Err(Error::corrupt(format!("net: unknown admin request {k}"))),
        })
    }
}

/// A membership as an admin answer carries it: epoch and start (u64
/// each), then the voters and the learners, each a u32 count and u32 ids
/// (big-endian).
pub fn encode_membership(m: &crate::paxos::Membership) -> Vec<u8> {
    let mut p = Vec::with_capacity(24 + 4 * (m.voters.len() + m.learners.len()));
    p.extend_from_slice(&m.epoch.to_be_bytes());
    p.extend_from_slice(&m.start.to_be_bytes());
    for list in [&m.voters, &m.learners] {
        p.extend_from_slice(&(list.len() as u32).to_be_bytes());
        for id in list {
            p.extend_from_slice(&id.to_be_bytes());
        }
    }
    p
}

/// Decodes [`encode_membership`]'s bytes: (epoch, start, voters, learners).
pub fn decode_membership(bytes: &[u8]) -> Result<(u64, u64, Vec<u32>, Vec<u32>)> {
    let mut r = Reader::new(bytes);
    let (epoch, start) = (r.u64()?, r.u64()?);
    let mut lists = [Vec::new(), Vec::new()];
    for list in &mut lists {
        let n = r.u32()?;
        if n as usize > crate::paxos::membership::MAX_MEMBERS {
            return Err(Error::corrupt(format!("net: a membership of {n} ids")));
        }
        for _ in 0..n {
            list.push(r.u32()?);
        }
    }
    r.finish()?;
    let [voters, learners] = lists;
    Ok((epoch, start, voters, learners))
}

impl Request {
    /// Encodes as `(kind, payload)`.
    pub fn encode(&self) -> (u8, Vec<u8>) {
        let mut p = Vec::new();
        match self {
            Request::Propose {
                client,
                request,
                command,
            } => {
                p.extend_from_slice(&client.to_be_bytes());
                p.extend_from_slice(&request.to_be_bytes());
                p.extend_from_slice(command);
                (KIND_PROPOSE, p)
            }
            Request::Read { request, query } => {
                p.extend_from_slice(&request.to_be_bytes());
                p.extend_from_slice(query);
                (KIND_READ, p)
            }
            Request::Status { request } => {
                p.extend_from_slice(&request.to_be_bytes());
                (KIND_STATUS, p)
            }
            Request::Admin { request, op } => {
                p.extend_from_slice(&request.to_be_bytes());
                op.encode(&mut p);
                (KIND_ADMIN, p)
            }
        }
    }

    /// Decodes a client frame.
    pub fn decode(kind: u8, payload: &[u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        Ok(match kind {
            KIND_PROPOSE => Request::Propose {
                client: r.u64()?,
                request: r.u64()?,
                command: r.rest().to_vec(),
            },
            KIND_READ => Request::Read {
                request: r.u64()?,
                query: r.rest().to_vec(),
            },
            KIND_STATUS => {
                let request = r.u64()?;
                r.finish()?;
                Request::Status { request }
            }
            KIND_ADMIN => {
                let request = r.u64()?;
                let op = AdminOp::decode(&mut r)?;
                r.finish()?;
                Request::Admin { request, op }
            }
            k => return Err(Error::corrupt(format!("net: unknown request kind {k}"))),
        })
    }
}

/// A replica's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Done: the result (a status answer is [`Status`] encoded).
    Ok {
        /// The request answered.
        request: u64,
        /// The result.
        result: Vec<u8>,
    },
    /// This replica does not lead: ask `leader` (0: unknown) at `addr`.
    Redirect {
        /// The request answered.
        request: u64,
        /// The leader's id, 0 when none is known.
        leader: u32,
        /// The leader's client address ("" when unknown).
        addr: String,
    },
    /// Refused.
    Error {
        /// The request answered.
        request: u64,
        /// Why.
        code: ErrorCode,
        /// For people.
        message: String,
    },
}

impl Response {
    /// The request this answers.
    pub fn request(&self) -> u64 {
        match self {
            Response::Ok { request, .. }
            | Response::Redirect { request, .. }
            | Response::Error { request, .. } => *request,
        }
    }

    /// Encodes as `(kind, payload)`.
    pub fn encode(&self) -> (u8, Vec<u8>) {
        let mut p = Vec::new();
        p.extend_from_slice(&self.request().to_be_bytes());
        match self {
            Response::Ok { result, .. } => {
                p.extend_from_slice(result);
                (KIND_OK, p)
            }
            Response::Redirect { leader, addr, .. } => {
                p.extend_from_slice(&leader.to_be_bytes());
                put_bytes(&mut p, addr.as_bytes());
                (KIND_REDIRECT, p)
            }
            Response::Error { code, message, .. } => {
                p.push(*code as u8);
                put_bytes(&mut p, message.as_bytes());
                (KIND_ERROR, p)
            }
        }
    }

    /// Decodes a replica's frame.
    pub fn decode(kind: u8, payload: &[u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        let request = r.u64()?;
        let resp = match kind {
            KIND_OK => {
                return Ok(Response::Ok {
                    request,
                    result: r.rest().to_vec(),
                });
            }
            KIND_REDIRECT => Response::Redirect {
                request,
                leader: r.u32()?,
                addr: r.string()?,
            },
            KIND_ERROR => Response::Error {
                request,
                code: ErrorCode::from_u8(r.u8()?)?,
                message: r.string()?,
            },
            k => return Err(Error::corrupt(format!("net: unknown response kind {k}"))),
        };
        r.finish()?;
        Ok(resp)
    }
}

/// What `quorumkit status` shows of one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The replica's id.
    pub id: u32,
    /// The leader it follows (0: none known).
    pub leader: u32,
    /// The ballot it promised or leads: round and proposer.
    pub ballot_round: u64,
    /// The ballot's proposer.
    pub ballot_node: u32,
    /// Every slot below this is chosen and applied here.
    pub commit_index: u64,
    /// Commands applied here since the process started (replayed ones included).
    pub applied: u64,
    /// Whether it holds a read lease now.
    pub read_lease: bool,
}

impl Status {
    /// Encodes as a result payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(45);
        p.extend_from_slice(&self.id.to_be_bytes());
        p.extend_from_slice(&self.leader.to_be_bytes());
        p.extend_from_slice(&self.ballot_round.to_be_bytes());
        p.extend_from_slice(&self.ballot_node.to_be_bytes());
        p.extend_from_slice(&self.commit_index.to_be_bytes());
        p.extend_from_slice(&self.applied.to_be_bytes());
        p.push(self.read_lease as u8);
        p
    }

    /// Decodes a result payload.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let s = Status {
            id: r.u32()?,
            leader: r.u32()?,
            ballot_round: r.u64()?,
            ballot_node: r.u32()?,
            commit_index: r.u64()?,
            applied: r.u64()?,
            read_lease: r.u8()? != 0,
        };
        r.finish()?;
        Ok(s)
    }
}

/// A command as the log holds it: the client session, the request id, the
/// cluster time the leader stamped on it, and the user's command. Session
/// 0 is the runtime's own: a tick that only moves time.
pub(crate) fn encode_command(client: u64, request: u64, time: u64, command: &[u8]) -> Vec<u8> {
    let mut c = Vec::with_capacity(24 + command.len());
    c.extend_from_slice(&client.to_be_bytes());
    c.extend_from_slice(&request.to_be_bytes());
    c.extend_from_slice(&time.to_be_bytes());
    c.extend_from_slice(command);
    c
}

/// A logged command's parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Logged<'a> {
    pub client: u64,
    pub request: u64,
    pub time: u64,
    pub command: &'a [u8],
}

/// Splits a logged command; `None` for bytes too short to be one.
pub(crate) fn decode_command(c: &[u8]) -> Option<Logged<'_>> {
    if c.len() < 24 {
        return None;
    }
    let word = |i: usize| u64::from_be_bytes(c[i..i + 8].try_into().unwrap());
    Some(Logged {
        client: word(0),
        request: word(8),
        time: word(16),
        command: &c[24..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_round_trip() {
        for req in [
            Request::Propose {
                client: 9,
                request: 3,
                command: b"put x 1".to_vec(),
            },
            Request::Read {
                request: 4,
                query: vec![],
            },
            Request::Status { request: 5 },
            Request::Admin {
                request: 6,
                op: AdminOp::AddPeer {
                    id: 4,
                    addr: "127.0.0.1:7004".parse().unwrap(),
                },
            },
            Request::Admin {
                request: 7,
                op: AdminOp::Change(crate::paxos::MembershipChange::Replace { old: 1, new: 4 }),
            },
            Request::Admin {
                request: 8,
                op: AdminOp::Change(crate::paxos::MembershipChange::Promote(4)),
            },
            Request::Admin {
                request: 9,
                op: AdminOp::Transfer { to: 2 },
            },
            Request::Admin {
                request: 10,
                op: AdminOp::Membership,
            },
        ] {
            let (k, p) = req.encode();
            assert_eq!(Request::decode(k, &p).unwrap(), req);
            // Every cut of a fixed-size request is refused, never a panic
            // (a command or query runs to the end of the frame).
            for cut in 0..p.len() {
                let cut_ok = Request::decode(k, &p[..cut]).is_ok();
                assert!(
                    !cut_ok || k == KIND_READ || k == KIND_PROPOSE,
                    "{req:?} cut at {cut}"
                );
            }
        }
        // Unknown admin requests and change kinds, a bad address, a trailing byte.
        let mut bad = 1u64.to_be_bytes().to_vec();
        bad.push(9);
        assert!(Request::decode(KIND_ADMIN, &bad).is_err());
        let mut bad = 1u64.to_be_bytes().to_vec();
        bad.extend_from_slice(&[2, 7, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert!(Request::decode(KIND_ADMIN, &bad).is_err());
        let mut bad = 1u64.to_be_bytes().to_vec();
        bad.extend_from_slice(&[1, 0, 0, 0, 4]);
        put_bytes(&mut bad, b"nowhere");
        assert!(Request::decode(KIND_ADMIN, &bad).is_err());
        let (_, mut p) = Request::Admin {
            request: 1,
            op: AdminOp::Membership,
        }
        .encode();
        p.push(0);
        assert!(Request::decode(KIND_ADMIN, &p).is_err());
        // A membership answer round-trips; a damaged one is refused.
        let m = crate::paxos::Membership {
            epoch: 3,
            start: 17,
            voters: vec![2, 3, 4],
            learners: vec![5],
        };
        let b = encode_membership(&m);
        assert_eq!(
            decode_membership(&b).unwrap(),
            (3, 17, vec![2, 3, 4], vec![5])
        );
        for cut in 0..b.len() {
            assert!(decode_membership(&b[..cut]).is_err());
        }
        let mut huge = b[..16].to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode_membership(&huge).is_err());
        for resp in [
            Response::Ok {
                request: 1,
                result: b"r".to_vec(),
            },
            Response::Redirect {
                request: 2,
                leader: 3,
                addr: "127.0.0.1:7003".into(),
            },
            Response::Error {
                request: 3,
                code: ErrorCode::Busy,
                message: "full".into(),
            },
        ] {
            let (k, p) = resp.encode();
            assert_eq!(Response::decode(k, &p).unwrap(), resp);
        }
        let s = Status {
            id: 1,
            leader: 2,
            ballot_round: 3,
            ballot_node: 2,
            commit_index: 10,
            applied: 9,
            read_lease: true,
        };
        assert_eq!(Status::decode(&s.encode()).unwrap(), s);
        let c = encode_command(1, 2, 3, b"x");
        let want = Logged {
            client: 1,
            request: 2,
            time: 3,
            command: b"x",
        };
        assert_eq!(decode_command(&c), Some(want));
    }

    #[test]
    fn bad_frames_are_errors() {
        assert!(Request::decode(99, &[0; 16]).is_err());
        assert!(Request::decode(KIND_PROPOSE, &[0; 15]).is_err());
        assert!(Request::decode(KIND_STATUS, &[0; 9]).is_err());
        assert!(Response::decode(KIND_ERROR, &[0, 0, 0, 0, 0, 0, 0, 1, 77, 0, 0, 0, 0]).is_err());
        assert!(Response::decode(KIND_REDIRECT, &[0; 12]).is_err());
        assert!(Status::decode(&[0; 44]).is_err());
        assert_eq!(decode_command(&[0; 23]), None);
    }
}
