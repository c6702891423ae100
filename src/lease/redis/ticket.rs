//! `RedisTicket`: a queued acquire request. Waiting is a loop of one
//! bounded blocking read (`BLMOVE`) of the waiter's wake-up list (a release
//! pushes the grant there) and one re-check script (takes a grant that arrived meanwhile,
//! renews the heartbeat, says when time alone could let it in). No polling
//! of the resource: the read returns as soon as the grant is pushed. A
//! grant whose reply was lost stays in the list for the next re-check.
//!
//! Waiting in slices (`wait(Some(slice))`, as the Python face does to
//! check for Ctrl-C) costs one blocking read per slice; the re-check
//! script still runs only every `recheck_interval` (or at a hinted time).
//! A [`CancelToken`] wakes a blocked read at once: its cancel pushes a
//! nudge onto the waiter's wake-up list (`wait_cancellable`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conn::NUDGE;
use super::keys::ResourceKeys;
use super::scripts;
use super::{Call, RedisLeaseTable, Stamp, lease, mode_char};
use crate::error::{Error, Result};
use crate::lease::cancel::Wake;
use crate::lease::table::Cancelled;
use crate::lease::{CancelToken, Lease, Mode};

/// What [`RedisLeaseTable::enqueue`] did.
#[derive(Debug)]
pub enum RedisEnqueued {
    /// Granted at once.
    Granted(Lease),
    /// Queued: wait on the ticket.
    Queued(RedisTicket),
}

pub(crate) struct Request {
    pub resource: Arc<str>,
    pub owner: Arc<str>,
    pub mode: Mode,
    pub ttl_ms: u64,
    pub keys: ResourceKeys,
    pub id: u64,
    pub deadline: Option<Instant>,
}

/// A queued acquire request. [`wait`](Self::wait) for it (in slices if you
/// like) or [`cancel`](Self::cancel) it. Dropping an unfinished ticket
/// cancels it (and releases a lease that was granted but never read); a
/// ticket abandoned without a drop (a crashed process) leaves the queue
/// once its heartbeat lapses (`waiter_ttl`).
pub struct RedisTicket {
    table: RedisLeaseTable,
    /// Boxed: keeps `RedisEnqueued` small.
    req: Box<Request>,
    /// The time reference of the last script reply.
    stamp: Stamp,
    /// Until when time alone keeps this request out (head of the queue).
    look: Option<Instant>,
    /// When the next re-check is due (heartbeat, lost wake-ups).
    next_check: Instant,
    finished: bool,
}

/// Registered with a [`CancelToken`] while a ticket waits: a cancel pushes
/// a nudge onto the wake-up list, which ends the blocking read at once.
struct Nudge {
    table: RedisLeaseTable,
    key: String,
}

impl Wake for Nudge {
    fn wake(&self) {
        // Best effort: if Redis is unreachable the read ends with its slice.
        let ttl = super::config::ceil_ms(self.table.config().waiter_ttl);
        let _ = self.table.pool().nudge(&self.key, ttl);
    }
}

impl std::fmt::Debug for RedisTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTicket")
            .field("resource", &self.req.resource)
            .field("id", &self.req.id)
            .field("finished", &self.finished)
            .finish()
    }
}

/// How late a blocking read can time out: Redis checks blocked clients' timeouts
/// on its event loop, which may sleep up to `1000 / hz` ms (100 ms at the
/// default `hz 10`). Sleeps toward a known time stop this much early.
const READ_SLACK: Duration = Duration::from_millis(100);

/// A script's sleep hint (ms from `sent`, -1: none), plus 1 ms so a
/// deadline that falls inside a millisecond has passed when we look.
fn hint(sent: Instant, ms: i64) -> Option<Instant> {
    u64::try_from(ms)
        .ok()
        .map(|ms| sent + Duration::from_millis(ms + 1))
}

impl RedisTicket {
    pub(crate) fn new(
        table: RedisLeaseTable,
        req: Request,
        stamp: Stamp,
        sent: Instant,
        look_ms: i64,
    ) -> Self {
        let next_check = sent + table.config().recheck_interval;
        RedisTicket {
            table,
            req: Box::new(req),
            stamp,
            look: hint(sent, look_ms),
            next_check,
            finished: false,
        }
    }

    /// The request's id in its resource's queue (ids increase in queue order).
    pub fn id(&self) -> u64 {
        self.req.id
    }

    fn granted(&mut self, token: i64, expires_at: u64) -> Lease {
        self.finished = true;
        lease(
            &self.req.resource,
            &self.req.owner,
            token,
            self.req.mode,
            expires_at,
        )
    }

    /// Blocks up to `max` (`None`: until decided) for the outcome:
    /// `Ok(Some(lease))` granted, `Err(Timeout)` the request's timeout
    /// passed, `Ok(None)` still queued, `Err(BackendUnavailable)` Redis did
    /// not answer (the ticket stays queued while its heartbeat lasts; wait
    /// again). After the outcome is given this answers `InvalidArgument`.
    pub fn wait(&mut self, max: Option<Duration>) -> Result<Option<Lease>> {
        self.wait_inner(max, None)
    }

    /// [`wait`](Self::wait) that also returns `Ok(None)` as soon as
    /// `cancel` is cancelled, from any thread (the request stays queued:
    /// withdraw it with [`cancel`](Self::cancel)). The cancel wakes a
    /// blocked read by pushing a nudge onto this waiter's wake-up list, so
    /// it is seen within a round trip, not at the end of a slice.
    pub fn wait_cancellable(
        &mut self,
        max: Option<Duration>,
        cancel: &CancelToken,
    ) -> Result<Option<Lease>> {
        if self.finished {
            return Err(Error::invalid("this ticket's outcome was already taken"));
        }
        let nudge: Arc<dyn Wake> = Arc::new(Nudge {
            table: self.table.clone(),
            key: self.req.keys.wake(self.req.id),
        });
        cancel.register(Arc::downgrade(&nudge));
        let out = self.wait_inner(max, Some(cancel));
        drop(nudge);
        out
    }

    fn wait_inner(
        &mut self,
        max: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> Result<Option<Lease>> {
        if self.finished {
            return Err(Error::invalid("this ticket's outcome was already taken"));
        }
        let until = max.map(|m| Instant::now() + m);
        loop {
            let now = Instant::now();
            if self.req.deadline.is_some_and(|d| now >= d) {
                return match self.cancel()? {
                    // Granted as the time ran out: it is the caller's.
                    Cancelled::Granted(l) => Ok(Some(l)),
                    _ => Err(Error::Timeout {
                        resource: self.req.resource.to_string(),
                    }),
                };
            }
            if cancel.is_some_and(CancelToken::is_cancelled) || until.is_some_and(|u| now >= u) {
                return Ok(None);
            }
            // A re-check is due every recheck_interval, and at the hinted
            // time (the holder's expiry, the lock-delay's end).
            let check_at = match self.look {
                Some(l) => l.min(self.next_check),
                None => self.next_check,
            };
            if now >= check_at {
                if let Some(l) = self.recheck()? {
                    return Ok(Some(l));
                }
                continue;
            }
            let look = self.look.map(|l| l.saturating_duration_since(now));
            let mut slice = check_at - now;
            for bound in [self.req.deadline.map(|d| d - now), until.map(|u| u - now)]
                .into_iter()
                .flatten()
            {
                slice = slice.min(bound);
            }
            if slice < Duration::from_millis(1)
                || look.is_some_and(|l| l <= slice && l <= READ_SLACK)
            {
                // The holder's expiry (or lock-delay end) is imminent: a
                // blocking read's timeout could overshoot it, so sleep here. A grant
                // pushed meanwhile waits in the list for the re-check.
                std::thread::sleep(slice);
                continue;
            }
            // Wake before a hinted time even if the server is late; the
            // re-check then gives the short rest of it.
            let sleep = match look {
                Some(l) if l <= slice => l - READ_SLACK,
                _ => slice,
            };
            let wake = self.req.keys.wake(self.req.id);
            match self.table.pool().wait_entry(&wake, sleep)? {
                // A cancel's nudge (or a stale one): the loop looks at the token.
                Some(entry) if entry == NUDGE => {}
                Some(entry) => {
                    let (token, exp_ms) = scripts::parse_grant(&entry)?;
                    let at = self.stamp.local(exp_ms);
                    return Ok(Some(self.granted(token as i64, at)));
                }
                None => {}
            }
        }
    }

    /// The re-check script: a grant, or the new sleep hint.
    fn recheck(&mut self) -> Result<Option<Lease>> {
        let id = self.req.id.to_string();
        let ttl = self.req.ttl_ms.to_string();
        let hb = super::config::ceil_ms(self.table.config().waiter_ttl).to_string();
        let sent = Instant::now();
        self.next_check = sent + self.table.config().recheck_interval;
        let (r, stamp) = self.table.call(
            &scripts::POLL,
            Call {
                keys: &self.req.keys,
                args: &[
                    id.as_bytes(),
                    self.req.owner.as_bytes(),
                    mode_char(self.req.mode),
                    ttl.as_bytes(),
                    hb.as_bytes(),
                ],
            },
        )?;
        self.stamp = stamp;
        match r.status {
            1 => Ok(Some(self.granted(r.a, stamp.local(r.now_ms + r.b)))),
            2 => {
                self.look = hint(sent, r.b);
                Ok(None)
            }
            _ => Err(Error::corrupt(format!(
                "redis: unexpected re-check reply {r:?}"
            ))),
        }
    }

    /// Withdraws the request; says what became of it. After a grant that
    /// raced ahead (`Cancelled::Granted`) the caller holds the lease and
    /// should release it.
    pub fn cancel(&mut self) -> Result<Cancelled> {
        if self.finished {
            return Ok(Cancelled::AlreadyTaken);
        }
        let id = self.req.id.to_string();
        let (r, stamp) = self.table.call(
            &scripts::CANCEL,
            Call {
                keys: &self.req.keys,
                args: &[id.as_bytes()],
            },
        )?;
        self.finished = true;
        match r.status {
            1 => Ok(Cancelled::Granted(
                self.granted(r.a, stamp.local(r.now_ms + r.b)),
            )),
            _ => Ok(Cancelled::Withdrawn),
        }
    }
}

impl Drop for RedisTicket {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Best effort: if Redis is unreachable the heartbeat lapses instead.
        if let Ok(Cancelled::Granted(l)) = self.cancel() {
            let _ = self.table.release(&l);
        }
    }
}
