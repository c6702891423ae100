//! Property test: the `LeaseMachine` against a deliberately naive reference
//! model (flat lists, linear scans, time processed event by event) on random
//! command sequences; after every command the results, the events and the
//! whole observable state must agree, and safety invariants must hold.
//!
//! Replay: proptest prints the failing (shrunk) input and saves its seed in
//! `tests/lease_model.proptest-regressions`, which later runs replay first.
//! Set `PROPTEST_CASES=10000` for a longer run.

use std::collections::BTreeMap;

use proptest::prelude::*;
use quorumkit::Error;
use quorumkit::lease::{AcquireOutcome, AcquireRequest, Event, LeaseConfig, LeaseMachine, Mode};

const RES: [&str; 3] = ["r0", "r1", "r2"];
const OWN: [&str; 3] = ["a", "b", "c"];

#[derive(Debug, Clone)]
enum Op {
    Acquire {
        r: usize,
        o: usize,
        ttl: u64,
        shared: bool,
        wait: bool,
        timeout: Option<u64>,
    },
    Renew {
        r: usize,
        o: usize,
        tok: u64,
        ttl: u64,
    },
    Release {
        r: usize,
        o: usize,
        tok: u64,
    },
    Cancel {
        w: u64,
    },
    Advance,
}

fn op() -> impl Strategy<Value = (u64, Op)> {
    let acquire = (
        0..3usize,
        0..3usize,
        1..40u64,
        any::<bool>(),
        prop::bool::weighted(0.8),
        prop::option::of(0..50u64),
    )
        .prop_map(|(r, o, ttl, shared, wait, timeout)| Op::Acquire {
            r,
            o,
            ttl,
            shared,
            wait,
            timeout,
        });
    let renew = (0..3usize, 0..3usize, 0..12u64, 1..40u64).prop_map(|(r, o, tok, ttl)| Op::Renew {
        r,
        o,
        tok,
        ttl,
    });
    let release =
        (0..3usize, 0..3usize, 0..12u64).prop_map(|(r, o, tok)| Op::Release { r, o, tok });
    let cancel = (1..12u64).prop_map(|w| Op::Cancel { w });
    let op = prop_oneof![
        4 => acquire,
        2 => renew,
        3 => release,
        1 => cancel,
        1 => Just(Op::Advance),
    ];
    (0..15u64, op)
}

#[derive(Debug, Clone, PartialEq)]
struct MHolder {
    token: u64,
    owner: String,
    mode: Mode,
    expires_at: u64,
}

#[derive(Debug, Clone)]
struct MWaiter {
    id: u64,
    owner: String,
    ttl: u64,
    mode: Mode,
    deadline: Option<u64>,
}

#[derive(Debug, Default, Clone)]
struct MRes {
    holders: Vec<MHolder>,
    queue: Vec<MWaiter>,
    expired: Vec<MHolder>,
    blocked_until: u64,
    delay_pending: bool,
}

/// The reference: no heap, no indices, no caches.
#[derive(Debug, Default)]
struct Model {
    delay: u64,
    now: u64,
    token: u64,
    waiter: u64,
    res: BTreeMap<String, MRes>,
    /// (waiter or None, resource, token) per grant, and timed-out waiters.
    events: Vec<String>,
}

fn fits(r: &MRes, mode: Mode) -> bool {
    r.holders
        .first()
        .is_none_or(|h| mode == Mode::Shared && h.mode == Mode::Shared)
}

impl Model {
    fn grant(&mut self, name: &str, owner: String, ttl: u64, mode: Mode, w: Option<u64>) -> u64 {
        self.token += 1;
        let now = self.now;
        let r = self.res.get_mut(name).unwrap();
        r.expired.clear();
        r.holders.push(MHolder {
            token: self.token,
            owner,
            mode,
            expires_at: now + ttl,
        });
        self.events
            .push(format!("grant {w:?} {name} {}", self.token));
        self.token
    }

    fn pump(&mut self, name: &str) {
        loop {
            let r = &self.res[name];
            if r.blocked_until > self.now {
                return;
            }
            let Some(w) = r.queue.first().cloned() else {
                return;
            };
            if !fits(r, w.mode) {
                return;
            }
            self.res.get_mut(name).unwrap().queue.remove(0);
            self.grant(name, w.owner, w.ttl, w.mode, Some(w.id));
        }
    }

    fn advance(&mut self, to: u64) {
        self.now = self.now.max(to);
        loop {
            // The earliest due thing: (time, class, key, resource); classes
            // 0 expiry (key token), 1 waiter timeout (key id), 2 delay end.
            let mut best: Option<(u64, u8, u64, String)> = None;
            for (name, r) in &self.res {
                let mut cand = vec![];
                for h in &r.holders {
                    cand.push((h.expires_at, 0, h.token));
                }
                for w in &r.queue {
                    if let Some(d) = w.deadline {
                        cand.push((d, 1, w.id));
                    }
                }
                if r.delay_pending {
                    cand.push((r.blocked_until, 2, 0));
                }
                for (t, c, k) in cand {
                    // The machine's order: time, then resource name, then
                    // expiry < timeout < delay end, then token or id.
                    if t <= self.now
                        && best
                            .as_ref()
                            .is_none_or(|b| (t, name, c, k) < (b.0, &b.3, b.1, b.2))
                    {
                        best = Some((t, c, k, name.clone()));
                    }
                }
            }
            let Some((t, class, key, name)) = best else {
                break;
            };
            let r = self.res.get_mut(&name).unwrap();
            if class == 0 {
                let i = r.holders.iter().position(|h| h.token == key).unwrap();
                let h = r.holders.remove(i);
                r.expired.push(h);
                if self.delay > 0 && t + self.delay > r.blocked_until {
                    r.blocked_until = t + self.delay;
                    r.delay_pending = true;
                }
            } else if class == 2 {
                r.delay_pending = false;
            } else {
                r.queue.retain(|w| w.id != key);
                self.events.push(format!("timeout {key}"));
            }
            self.pump(&name);
        }
    }

    fn acquire(&mut self, op: &Op) -> Result<AcquireOutcome, Error> {
        let Op::Acquire {
            r,
            o,
            ttl,
            shared,
            wait,
            timeout,
        } = *op
        else {
            unreachable!()
        };
        let mode = if shared {
            Mode::Shared
        } else {
            Mode::Exclusive
        };
        let name = RES[r];
        let e = self.res.entry(name.into()).or_default();
        if e.queue.is_empty() && e.blocked_until <= self.now && fits(e, mode) {
            let token = self.grant(name, OWN[o].into(), ttl, mode, None);
            return Ok(AcquireOutcome::Granted(quorumkit::lease::Lease {
                resource: name.into(),
                owner: OWN[o].into(),
                token,
                mode,
                expires_at: self.now + ttl,
            }));
        }
        let deadline = timeout.map(|t| self.now + t);
        if !wait || deadline.is_some_and(|d| d <= self.now) {
            return Ok(AcquireOutcome::Busy);
        }
        self.waiter += 1;
        e.queue.push(MWaiter {
            id: self.waiter,
            owner: OWN[o].into(),
            ttl,
            mode,
            deadline,
        });
        Ok(AcquireOutcome::Queued(quorumkit::lease::WaiterId(
            self.waiter,
        )))
    }

    fn check_holder(&self, name: &str, owner: &str, tok: u64) -> Result<(), &'static str> {
        let Some(r) = self.res.get(name) else {
            return Err("not holder");
        };
        if r.holders.iter().any(|h| h.token == tok && h.owner == owner) {
            Ok(())
        } else if r.expired.iter().any(|h| h.token == tok && h.owner == owner) {
            Err("expired")
        } else {
            Err("not holder")
        }
    }
}

fn kind(e: &Error) -> &'static str {
    match e {
        Error::LeaseExpired { .. } => "expired",
        Error::NotHolder { .. } => "not holder",
        _ => "other",
    }
}

/// Observable state of the machine, in the model's shape.
fn machine_state(m: &mut LeaseMachine, now: u64) -> Vec<(String, Vec<MHolder>, Vec<u64>)> {
    RES.iter()
        .map(|&r| {
            let hs = m
                .holders(now, r)
                .into_iter()
                .map(|l| MHolder {
                    token: l.token,
                    owner: l.owner.to_string(),
                    mode: l.mode,
                    expires_at: l.expires_at,
                })
                .collect();
            (r.to_owned(), hs, m.queued(r).iter().map(|w| w.0).collect())
        })
        .collect()
}

fn model_state(m: &Model) -> Vec<(String, Vec<MHolder>, Vec<u64>)> {
    RES.iter()
        .map(|&r| match m.res.get(r) {
            Some(x) => (
                r.to_owned(),
                x.holders.clone(),
                x.queue.iter().map(|w| w.id).collect(),
            ),
            None => (r.to_owned(), vec![], vec![]),
        })
        .collect()
}

fn run(delay: u64, ops: &[(u64, Op)]) -> Result<(), TestCaseError> {
    let mut m = LeaseMachine::new(LeaseConfig {
        lock_delay_ns: delay,
    });
    let mut model = Model {
        delay,
        ..Model::default()
    };
    let mut now = 0;
    let mut last_token = 0;
    for (step, (dt, op)) in ops.iter().enumerate() {
        now += dt;
        model.advance(now);
        match op {
            Op::Acquire {
                r,
                o,
                ttl,
                shared,
                wait,
                timeout,
            } => {
                let req = AcquireRequest {
                    resource: RES[*r],
                    owner: OWN[*o],
                    ttl_ns: *ttl,
                    mode: if *shared {
                        Mode::Shared
                    } else {
                        Mode::Exclusive
                    },
                    wait: *wait,
                    deadline: timeout.map(|t| now + t),
                };
                let got = m.acquire(now, req).unwrap();
                let want = model.acquire(op).unwrap();
                prop_assert_eq!(got, want, "step {}: {:?}", step, op);
            }
            Op::Renew { r, o, tok, ttl } => {
                let got = m.renew(now, RES[*r], OWN[*o], *tok, *ttl);
                let want = model.check_holder(RES[*r], OWN[*o], *tok);
                match (&got, want) {
                    (Ok(l), Ok(())) => {
                        prop_assert_eq!(l.expires_at, now + ttl);
                        let h = model
                            .res
                            .get_mut(RES[*r])
                            .unwrap()
                            .holders
                            .iter_mut()
                            .find(|h| h.token == *tok)
                            .unwrap();
                        h.expires_at = now + ttl;
                    }
                    (Err(e), Err(k)) => prop_assert_eq!(kind(e), k, "step {}", step),
                    _ => prop_assert!(false, "step {step}: {op:?}: {got:?} vs {want:?}"),
                }
            }
            Op::Release { r, o, tok } => {
                let got = m.release(now, RES[*r], OWN[*o], *tok);
                let want = model.check_holder(RES[*r], OWN[*o], *tok);
                match (&got, want) {
                    (Ok(()), Ok(())) => {
                        model
                            .res
                            .get_mut(RES[*r])
                            .unwrap()
                            .holders
                            .retain(|h| h.token != *tok);
                        model.pump(RES[*r]);
                    }
                    (Err(e), Err(k)) => prop_assert_eq!(kind(e), k, "step {}", step),
                    _ => prop_assert!(false, "step {step}: {op:?}: {got:?} vs {want:?}"),
                }
            }
            Op::Cancel { w } => {
                let got = m.cancel(now, quorumkit::lease::WaiterId(*w));
                let mut want = false;
                let mut at = None;
                for (n, r) in model.res.iter_mut() {
                    if let Some(i) = r.queue.iter().position(|x| x.id == *w) {
                        r.queue.remove(i);
                        want = true;
                        at = Some(n.clone());
                    }
                }
                if let Some(n) = at {
                    model.pump(&n);
                }
                prop_assert_eq!(got, want, "step {}", step);
            }
            Op::Advance => m.advance(now),
        }
        // Events agree (grants with their waiter and token, timeouts).
        let mut got_events = vec![];
        for ev in m.drain_events() {
            match ev {
                Event::Granted { waiter, lease } => {
                    prop_assert!(lease.token > last_token, "tokens strictly increase");
                    prop_assert!(lease.expires_at > now, "granted an expired lease");
                    last_token = lease.token;
                    got_events.push(format!(
                        "grant {:?} {} {}",
                        waiter.map(|w| w.0),
                        lease.resource,
                        lease.token
                    ));
                }
                Event::TimedOut { waiter, .. } => got_events.push(format!("timeout {}", waiter.0)),
                _ => {}
            }
        }
        let want_events = std::mem::take(&mut model.events);
        prop_assert_eq!(got_events, want_events, "step {}: {:?}", step, op);
        // Whole state agrees; mutual exclusion holds.
        let ms = machine_state(&mut m, now);
        prop_assert_eq!(&ms, &model_state(&model), "step {}: {:?}", step, op);
        for (_, hs, _) in &ms {
            prop_assert!(
                hs.len() <= 1 || hs.iter().all(|h| h.mode == Mode::Shared),
                "exclusive holder shares"
            );
        }
        prop_assert_eq!(m.waiting(), ms.iter().map(|s| s.2.len()).sum::<usize>());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn machine_matches_model(ops in prop::collection::vec(op(), 1..60)) {
        run(0, &ops)?;
    }

    #[test]
    fn machine_matches_model_with_lock_delay(
        delay in 1..30u64,
        ops in prop::collection::vec(op(), 1..60),
    ) {
        run(delay, &ops)?;
    }
}

/// The test can fail: a model that forgets FIFO disagrees with the machine.
#[test]
fn a_wrong_model_is_caught() {
    let ops = vec![
        (
            0,
            Op::Acquire {
                r: 0,
                o: 0,
                ttl: 10,
                shared: true,
                wait: true,
                timeout: None,
            },
        ),
        (
            0,
            Op::Acquire {
                r: 0,
                o: 1,
                ttl: 10,
                shared: false,
                wait: true,
                timeout: None,
            },
        ),
        (
            0,
            Op::Acquire {
                r: 0,
                o: 2,
                ttl: 10,
                shared: true,
                wait: true,
                timeout: None,
            },
        ),
    ];
    run(0, &ops).unwrap();
    // The machine must queue the third (shared behind a queued exclusive).
    let mut m = LeaseMachine::new(LeaseConfig::default());
    for (_, op) in &ops[..2] {
        if let Op::Acquire { o, shared, .. } = op {
            let req = AcquireRequest {
                resource: "r0",
                owner: OWN[*o],
                ttl_ns: 10,
                mode: if *shared {
                    Mode::Shared
                } else {
                    Mode::Exclusive
                },
                wait: true,
                deadline: None,
            };
            m.acquire(0, req).unwrap();
        }
    }
    let req = AcquireRequest {
        resource: "r0",
        owner: "c",
        ttl_ns: 10,
        mode: Mode::Shared,
        wait: true,
        deadline: None,
    };
    assert!(matches!(
        m.acquire(0, req).unwrap(),
        AcquireOutcome::Queued(_)
    ));
}
