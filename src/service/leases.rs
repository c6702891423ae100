//! `LeaseService`: lease commands on a [`LeaseMachine`], as a replicated
//! state machine, and the byte encoding of its commands and results.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::Error;
use crate::lease::{
    AcquireOutcome, AcquireRequest, Event, Lease, LeaseConfig, LeaseMachine, Mode, WaiterId,
};
use crate::net::frame::{Reader, put_bytes};
use crate::net::{Applied, Applying, Completion, StateMachine};

const ACQUIRE: u8 = b'A';
const RENEW: u8 = b'R';
const RELEASE: u8 = b'L';
const HOLDERS: u8 = b'H';

/// Result codes.
const OK: u8 = 0;
const BUSY: u8 = 1;
const TIMEOUT: u8 = 2;
const NOT_HOLDER: u8 = 3;
const EXPIRED: u8 = 4;
const INVALID: u8 = 5;

/// An acquire: `wait` None is a try-acquire; `Some(0)` waits without end.
pub fn acquire(
    resource: &str,
    owner: &str,
    ttl_ns: u64,
    mode: Mode,
    wait_ns: Option<u64>,
) -> Vec<u8> {
    let mut c = vec![ACQUIRE];
    put_bytes(&mut c, resource.as_bytes());
    put_bytes(&mut c, owner.as_bytes());
    c.extend_from_slice(&ttl_ns.to_be_bytes());
    c.push(matches!(mode, Mode::Shared) as u8);
    c.push(wait_ns.is_some() as u8);
    c.extend_from_slice(&wait_ns.unwrap_or(0).to_be_bytes());
    c
}

/// A renew.
pub fn renew(resource: &str, owner: &str, token: u64, ttl_ns: u64) -> Vec<u8> {
    let mut c = vec![RENEW];
    put_bytes(&mut c, resource.as_bytes());
    put_bytes(&mut c, owner.as_bytes());
    c.extend_from_slice(&token.to_be_bytes());
    c.extend_from_slice(&ttl_ns.to_be_bytes());
    c
}

/// A release.
pub fn release(resource: &str, owner: &str, token: u64) -> Vec<u8> {
    let mut c = vec![RELEASE];
    put_bytes(&mut c, resource.as_bytes());
    put_bytes(&mut c, owner.as_bytes());
    c.extend_from_slice(&token.to_be_bytes());
    c
}

/// The query for a resource's holders.
pub fn holders(resource: &str) -> Vec<u8> {
    let mut q = vec![HOLDERS];
    put_bytes(&mut q, resource.as_bytes());
    q
}

fn encode_lease(out: &mut Vec<u8>, l: &Lease) {
    put_bytes(out, l.owner.as_bytes());
    out.extend_from_slice(&l.token.to_be_bytes());
    out.extend_from_slice(&l.expires_at.to_be_bytes());
    out.push(matches!(l.mode, Mode::Shared) as u8);
}

fn decode_lease(r: &mut Reader<'_>, resource: &str) -> crate::Result<Lease> {
    let owner = r.string()?;
    let token = r.u64()?;
    let expires_at = r.u64()?;
    let mode = if r.u8()? == 1 {
        Mode::Shared
    } else {
        Mode::Exclusive
    };
    Ok(Lease {
        resource: Arc::from(resource),
        owner: Arc::from(owner.as_str()),
        token,
        mode,
        expires_at,
    })
}

fn ok_lease(l: &Lease) -> Vec<u8> {
    let mut out = vec![OK];
    encode_lease(&mut out, l);
    out
}

fn error_result(e: &Error) -> Vec<u8> {
    let code = match e {
        Error::Busy { .. } => BUSY,
        Error::Timeout { .. } => TIMEOUT,
        Error::NotHolder { .. } => NOT_HOLDER,
        Error::LeaseExpired { .. } => EXPIRED,
        _ => INVALID,
    };
    let mut out = vec![code];
    out.extend_from_slice(e.to_string().as_bytes());
    out
}

/// Decodes an acquire or renew result into the lease or the error the
/// in-process table would return.
pub fn decode_lease_result(
    result: &[u8],
    resource: &str,
    owner: &str,
    token: u64,
) -> crate::Result<Lease> {
    let (&code, rest) = result
        .split_first()
        .ok_or_else(|| Error::corrupt("lease service: empty result"))?;
    if code == OK {
        let mut r = Reader::new(rest);
        let lease = decode_lease(&mut r, resource)?;
        r.finish()?;
        return Ok(lease);
    }
    Err(decode_error(code, rest, resource, owner, token))
}

/// Decodes a release result.
pub fn decode_unit_result(
    result: &[u8],
    resource: &str,
    owner: &str,
    token: u64,
) -> crate::Result<()> {
    match result.split_first() {
        Some((&OK, [])) => Ok(()),
        Some((&code, rest)) => Err(decode_error(code, rest, resource, owner, token)),
        None => Err(Error::corrupt("lease service: empty result")),
    }
}

fn decode_error(code: u8, rest: &[u8], resource: &str, owner: &str, token: u64) -> Error {
    let resource = resource.to_string();
    match code {
        BUSY => Error::Busy { resource },
        TIMEOUT => Error::Timeout { resource },
        NOT_HOLDER => Error::NotHolder {
            resource,
            owner: owner.to_string(),
            token,
        },
        EXPIRED => Error::LeaseExpired { resource, token },
        INVALID => Error::invalid(String::from_utf8_lossy(rest).into_owned()),
        c => Error::corrupt(format!("lease service: unknown result code {c}")),
    }
}

/// Decodes a holders answer.
pub fn decode_holders(result: &[u8], resource: &str) -> crate::Result<Vec<Lease>> {
    let mut r = Reader::new(result);
    let n = r.u32()? as usize;
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        out.push(decode_lease(&mut r, resource)?);
    }
    r.finish()?;
    Ok(out)
}

/// The replicated lease table.
pub struct LeaseService {
    machine: LeaseMachine,
    /// Queued acquires and the request each answers.
    waiters: HashMap<WaiterId, (u64, u64)>,
    done: Vec<Completion>,
}

impl Default for LeaseService {
    fn default() -> Self {
        Self::new(LeaseConfig::default())
    }
}

impl LeaseService {
    /// An empty table.
    pub fn new(config: LeaseConfig) -> Self {
        LeaseService {
            machine: LeaseMachine::new(config),
            waiters: HashMap::new(),
            done: Vec::new(),
        }
    }

    fn collect(&mut self) {
        for ev in self.machine.drain_events() {
            let (waiter, result) = match ev {
                Event::Granted {
                    waiter: Some(w),
                    lease,
                } => (w, ok_lease(&lease)),
                Event::TimedOut { waiter, resource } => (
                    waiter,
                    error_result(&Error::Timeout {
                        resource: resource.to_string(),
                    }),
                ),
                _ => continue,
            };
            if let Some((client, request)) = self.waiters.remove(&waiter) {
                self.done.push(Completion {
                    client,
                    request,
                    result,
                });
            }
        }
    }

    fn run(&mut self, c: &Applying<'_>) -> crate::Result<Applied> {
        let mut r = Reader::new(c.command);
        let op = r.u8()?;
        let resource = r.string()?;
        let owner = r.string()?;
        let now = c.time;
        Ok(match op {
            ACQUIRE => {
                let ttl_ns = r.u64()?;
                let mode = if r.u8()? == 1 {
                    Mode::Shared
                } else {
                    Mode::Exclusive
                };
                let wait = r.u8()? == 1;
                let wait_ns = r.u64()?;
                r.finish()?;
                let deadline = (wait && wait_ns > 0).then(|| now.saturating_add(wait_ns));
                let req = AcquireRequest {
                    resource: &resource,
                    owner: &owner,
                    ttl_ns,
                    mode,
                    wait,
                    deadline,
                };
                match self.machine.acquire(now, req)? {
                    AcquireOutcome::Granted(l) => Applied::Done(ok_lease(&l)),
                    AcquireOutcome::Busy if wait => {
                        Applied::Done(error_result(&Error::Timeout { resource }))
                    }
                    AcquireOutcome::Busy => Applied::Done(error_result(&Error::Busy { resource })),
                    AcquireOutcome::Queued(w) => {
                        self.waiters.insert(w, (c.client, c.request));
                        Applied::Deferred
                    }
                }
            }
            RENEW => {
                let token = r.u64()?;
                let ttl_ns = r.u64()?;
                r.finish()?;
                Applied::Done(ok_lease(
                    &self.machine.renew(now, &resource, &owner, token, ttl_ns)?,
                ))
            }
            RELEASE => {
                let token = r.u64()?;
                r.finish()?;
                self.machine.release(now, &resource, &owner, token)?;
                Applied::Done(vec![OK])
            }
            _ => return Err(Error::invalid("lease service: unknown command")),
        })
    }
}

impl StateMachine for LeaseService {
    fn apply(&mut self, c: &Applying<'_>) -> Applied {
        let out = match self.run(c) {
            Ok(a) => a,
            Err(e) => Applied::Done(error_result(&e)),
        };
        self.collect();
        out
    }

    fn advance(&mut self, time: u64) {
        self.machine.advance(time);
        self.collect();
    }

    fn next_deadline(&mut self) -> Option<u64> {
        self.machine.next_deadline()
    }

    /// The lease table and which client request each queued acquire
    /// answers (in waiter order, so equal states give equal bytes).
    fn snapshot(&mut self) -> Option<Vec<u8>> {
        let table = self.machine.snapshot();
        let mut out = Vec::with_capacity(table.len() + 16 + 24 * self.waiters.len());
        put_bytes(&mut out, &table);
        let mut waiters: Vec<(&WaiterId, &(u64, u64))> = self.waiters.iter().collect();
        waiters.sort_unstable();
        out.extend_from_slice(&(waiters.len() as u64).to_be_bytes());
        for (w, (client, request)) in waiters {
            out.extend_from_slice(&w.0.to_be_bytes());
            out.extend_from_slice(&client.to_be_bytes());
            out.extend_from_slice(&request.to_be_bytes());
        }
        Some(out)
    }

    fn restore(&mut self, data: &[u8]) -> std::result::Result<(), String> {
        let mut r = Reader::new(data);
        let parsed = (|| {
            let machine = LeaseMachine::restore(self.machine.config(), r.bytes()?)?;
            let n = r.u64()?;
            let mut waiters = HashMap::new();
            for _ in 0..n {
                let w = WaiterId(r.u64()?);
                let client = r.u64()?;
                waiters.insert(w, (client, r.u64()?));
            }
            r.finish()?;
            Ok::<_, Error>((machine, waiters))
        })();
        let (machine, waiters) =
            parsed.map_err(|e| format!("lease service: not a snapshot of this service: {e}"))?;
        self.machine = machine;
        self.waiters = waiters;
        self.done.clear();
        Ok(())
    }

    fn take_completions(&mut self) -> Vec<Completion> {
        std::mem::take(&mut self.done)
    }

    fn query(&mut self, query: &[u8]) -> std::result::Result<Vec<u8>, String> {
        let mut r = Reader::new(query);
        let (Ok(HOLDERS), Ok(resource)) = (r.u8(), r.string()) else {
            return Err("lease service: not a query of this service".into());
        };
        // Holders as of the last applied time (which changes nothing).
        let now = self.machine.now();
        let hs = self.machine.holders(now, &resource);
        let mut out = (hs.len() as u32).to_be_bytes().to_vec();
        for h in &hs {
            encode_lease(&mut out, h);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(svc: &mut LeaseService, client: u64, request: u64, time: u64, c: &[u8]) -> Applied {
        svc.apply(&Applying {
            client,
            request,
            time,
            command: c,
        })
    }

    #[test]
    fn grants_queue_expire_and_hand_off_deterministically() {
        let mut s = LeaseService::default();
        let Applied::Done(r) = cmd(
            &mut s,
            1,
            1,
            100,
            &acquire("db", "a", 1_000, Mode::Exclusive, None),
        ) else {
            panic!()
        };
        let a = decode_lease_result(&r, "db", "a", 0).unwrap();
        assert_eq!((a.token, a.expires_at), (1, 1_100));
        // A try-acquire is busy; a waiting one is deferred.
        let Applied::Done(r) = cmd(
            &mut s,
            2,
            1,
            200,
            &acquire("db", "b", 1_000, Mode::Exclusive, None),
        ) else {
            panic!()
        };
        assert!(matches!(
            decode_lease_result(&r, "db", "b", 0),
            Err(Error::Busy { .. })
        ));
        assert_eq!(
            cmd(
                &mut s,
                2,
                2,
                200,
                &acquire("db", "b", 1_000, Mode::Exclusive, Some(0))
            ),
            Applied::Deferred
        );
        assert!(s.take_completions().is_empty());
        assert_eq!(s.next_deadline(), Some(1_100));
        // The holder's expiry (a tick) hands the lease to the waiter, with a larger token.
        s.advance(1_100);
        let done = s.take_completions();
        assert_eq!(done.len(), 1);
        assert_eq!((done[0].client, done[0].request), (2, 2));
        let b = decode_lease_result(&done[0].result, "db", "b", 0).unwrap();
        assert_eq!((b.owner.as_ref(), b.token, b.expires_at), ("b", 2, 2_100));
        // The old holder is no holder (the lease went to b); renew and release by b work.
        let Applied::Done(r) = cmd(&mut s, 1, 2, 1_200, &renew("db", "a", 1, 1_000)) else {
            panic!()
        };
        assert!(matches!(
            decode_lease_result(&r, "db", "a", 1),
            Err(Error::NotHolder { .. })
        ));
        let Applied::Done(r) = cmd(&mut s, 2, 3, 1_300, &renew("db", "b", 2, 5_000)) else {
            panic!()
        };
        assert_eq!(
            decode_lease_result(&r, "db", "b", 2).unwrap().expires_at,
            6_300
        );
        let hs = decode_holders(&s.query(&holders("db")).unwrap(), "db").unwrap();
        assert_eq!(hs.len(), 1);
        let Applied::Done(r) = cmd(&mut s, 2, 4, 1_400, &release("db", "b", 2)) else {
            panic!()
        };
        decode_unit_result(&r, "db", "b", 2).unwrap();
        let Applied::Done(r) = cmd(&mut s, 2, 5, 1_400, &release("db", "b", 2)) else {
            panic!()
        };
        assert!(matches!(
            decode_unit_result(&r, "db", "b", 2),
            Err(Error::NotHolder { .. })
        ));
        // A waiter with a deadline times out through a tick.
        cmd(
            &mut s,
            3,
            1,
            2_000,
            &acquire("q", "x", 10_000, Mode::Exclusive, None),
        );
        assert_eq!(
            cmd(
                &mut s,
                4,
                1,
                2_000,
                &acquire("q", "y", 10, Mode::Exclusive, Some(500))
            ),
            Applied::Deferred
        );
        s.advance(2_500);
        let done = s.take_completions();
        assert!(matches!(
            decode_lease_result(&done[0].result, "q", "y", 0),
            Err(Error::Timeout { .. })
        ));
    }

    #[test]
    fn garbage_commands_are_answered_and_change_nothing() {
        let mut s = LeaseService::default();
        for bad in [
            &b""[..],
            b"A",
            b"Z\0\0\0\x01r\0\0\0\x01o",
            &acquire("", "o", 1, Mode::Exclusive, None)[..],
        ] {
            let Applied::Done(r) = cmd(&mut s, 1, 1, 10, bad) else {
                panic!()
            };
            assert!(
                matches!(
                    decode_lease_result(&r, "r", "o", 0),
                    Err(Error::InvalidArgument(_))
                ),
                "{bad:?}"
            );
        }
        assert_eq!(s.next_deadline(), None);
        assert!(s.query(b"?").is_err());
    }
}
