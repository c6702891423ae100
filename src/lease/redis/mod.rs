//! `RedisLeaseTable`: the lease table shared by processes and machines
//! through one Redis server (feature `redis`). The same surface and the
//! same contract as [`LeaseTable`](super::LeaseTable): exclusive and shared
//! leases with TTLs, owner-checked renew and release that tell
//! `LeaseExpired` from `NotHolder`, lock-delay, fencing tokens, and a fair
//! FIFO blocking acquire with prompt hand-off.
//!
//! - [`config`]: [`RedisConfig`] (namespace, timeouts, re-check interval).
//! - [`keys`]: key names; all keys of a resource share the hash tag
//!   `{namespace:resource}`, so they live in one Redis Cluster slot.
//! - [`conn`](self): the connection pool and the error mapping.
//! - `scripts` and `lua/`: one atomic Lua script per operation, run with
//!   `EVALSHA` (loaded again after `NOSCRIPT`).
//! - [`ticket`]: [`RedisTicket`], a queued request and its wake-ups.
//! - [`renewer`]: [`KeepAlive`], a lease renewed in the background by the
//!   table's one renewer thread.
//!
//! How it works:
//! - **Expiry** is the server's: a lease's end is a server-clock score the
//!   scripts compare with `TIME`, and every key carries a PX TTL that
//!   covers what it holds (or is deleted), so a crashed holder's lease ends
//!   with no client alive and nothing is left behind.
//! - **Tokens** are `max(last + 1, server time in µs)`, per resource. They
//!   strictly increase while the counter lives, and keep increasing after
//!   it is lost (a restart without persistence, a failover to a replica
//!   that missed the write, or simply all of the resource's keys expiring)
//!   as long as the server clock does not step back past the last token.
//!   With `appendfsync always` the counter survives a crash; with `WAIT`
//!   on replicas it survives a failover; neither is needed for ordering
//!   unless the clock of the new server is behind by more than the
//!   failover took. Tokens of different resources are not comparable (a
//!   [`Fence`](super::Fence) compares per resource).
//! - **Fair blocking acquire**: a queued request gets an id (from the same
//!   counter, so ids are FIFO order) in a per-resource queue, with a
//!   heartbeat. A release (or any script that finds the head grantable)
//!   grants the head server-side and pushes the grant to the waiter's
//!   wake-up list, which the waiter reads with a blocking `BLMOVE`: one
//!   hop after the release. The read does not take the entry (the waiter
//!   deletes it after), so a grant whose reply was lost is found by the
//!   next re-check. A waiter re-checks at least every `recheck_interval` (so a
//!   lost wake-up costs at most that) and the head also at the holder's
//!   expiry; each re-check renews its heartbeat, and a waiter silent for
//!   `waiter_ttl` is evicted by the next script that runs on the resource.
//! - Needs Redis 6.2 or later (`BLMOVE`; Lua effects replication).
//! - **Times** on a [`Lease`] are in this process's monotonic clock
//!   ([`MonotonicClock`]): a grant's expiry is counted from when the request
//!   was sent (minus 1 ms of rounding), so it errs early, never late.

pub mod config;
mod conn;
pub mod keys;
pub mod renewer;
mod scripts;
pub mod ticket;

use std::sync::Arc;
use std::time::Duration;

use redis::Value;

pub use config::RedisConfig;
pub use keys::{MAX_NAME_LEN, MAX_NAMESPACE_LEN};
pub use renewer::KeepAlive;
pub use ticket::{RedisEnqueued, RedisTicket};

use super::clock::MonotonicClock;
use super::{Lease, Mode};
use crate::error::{Error, Result};
use conn::Pool;
use keys::{ResourceKeys, check_name};
use scripts::{Common, Reply};

struct Inner {
    pool: Pool,
    config: RedisConfig,
    common: Common,
    renewer: renewer::Renewer,
}

/// A lease table kept in Redis. Cheap to clone (one shared pool); safe to
/// use from many threads. See the module docs.
#[derive(Clone)]
pub struct RedisLeaseTable {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisLeaseTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLeaseTable")
            .field("namespace", &self.inner.config.namespace)
            .finish()
    }
}

fn mode_char(mode: Mode) -> &'static [u8] {
    match mode {
        Mode::Exclusive => b"x",
        Mode::Shared => b"s",
    }
}

fn mode_of(c: u8) -> Result<Mode> {
    match c {
        b'x' => Ok(Mode::Exclusive),
        b's' => Ok(Mode::Shared),
        _ => Err(Error::corrupt("redis: unknown lease mode in stored data")),
    }
}

/// A reply's time reference: when the request left (local monotonic ns)
/// and the server's clock (ms) when it ran, which was later.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp {
    pub sent_ns: u64,
    pub server_ms: i64,
}

impl Stamp {
    /// The local time by which the server's clock has surely reached
    /// `server_ms` (assuming both clocks run at the same rate).
    pub fn local(&self, at_server_ms: i64) -> u64 {
        let ahead_ms = at_server_ms
            .saturating_sub(self.server_ms)
            .saturating_sub(1);
        let ahead_ns = u64::try_from(ahead_ms)
            .unwrap_or(0)
            .saturating_mul(1_000_000);
        self.sent_ns.saturating_add(ahead_ns)
    }
}

/// What one script call on one resource needs.
pub(crate) struct Call<'a> {
    pub keys: &'a ResourceKeys,
    pub args: &'a [&'a [u8]],
}

impl RedisLeaseTable {
    /// A table on the server at `url`: `redis://[user:password@]host[:port][/db]`,
    /// `rediss://…` (TLS, feature `redis-tls`, on by default: certificates
    /// checked against the system roots, or not at all with a trailing
    /// `#insecure`), `redis+unix:///path[?db=N]`, or
    /// `redis-cluster://[user:password@]host:port,host:port,…` (seed nodes of
    /// a Redis Cluster; `rediss-cluster://` with TLS; no database number).
    /// Connects lazily: a bad URL fails here, an unreachable server at the
    /// first call (see [`ping`](Self::ping)).
    pub fn open(url: &str, config: RedisConfig) -> Result<Self> {
        config.validate()?;
        let pool = Pool::open(url, &config)?;
        let common = Common {
            memory_ms: config.memory_ms(),
            delay_ms: config::ceil_ms(config.lock_delay),
        };
        Ok(RedisLeaseTable {
            inner: Arc::new(Inner {
                pool,
                config,
                common,
                renewer: renewer::Renewer::default(),
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    /// The local monotonic clock's reading: the time base of
    /// [`Lease::expires_at`].
    pub fn now_ns(&self) -> u64 {
        MonotonicClock.now_ns()
    }

    /// Checks that the server answers (`BackendUnavailable` if not).
    pub fn ping(&self) -> Result<()> {
        self.inner
            .pool
            .run(|con| redis::cmd("PING").query::<String>(con))
            .map(|_| ())
    }

    fn keys(&self, resource: &str) -> Result<ResourceKeys> {
        check_name("resource", resource)?;
        Ok(ResourceKeys::new(&self.inner.config.namespace, resource))
    }

    /// Runs one script; returns its reply and its time reference.
    pub(crate) fn call_raw(&self, script: &redis::Script, call: Call<'_>) -> Result<(Value, u64)> {
        let sent_ns = self.now_ns();
        let v = self
            .inner
            .pool
            .run(|con| scripts::invoke(con, script, call.keys, &self.inner.common, call.args))?;
        Ok((v, sent_ns))
    }

    pub(crate) fn call(&self, script: &redis::Script, call: Call<'_>) -> Result<(Reply, Stamp)> {
        let (v, sent_ns) = self.call_raw(script, call)?;
        let r = scripts::reply(&v)?;
        Ok((
            r,
            Stamp {
                sent_ns,
                server_ms: r.now_ms,
            },
        ))
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    pub(crate) fn renewer(&self) -> &renewer::Renewer {
        &self.inner.renewer
    }

    fn acquire_call(
        &self,
        keys: &ResourceKeys,
        owner: &str,
        ttl_ms: u64,
        mode: Mode,
        wait: bool,
    ) -> Result<(Reply, Stamp)> {
        let ttl = ttl_ms.to_string();
        let hb = config::ceil_ms(self.inner.config.waiter_ttl).to_string();
        let wait: &[u8] = if wait { b"1" } else { b"0" };
        self.call(
            &scripts::ACQUIRE,
            Call {
                keys,
                args: &[
                    owner.as_bytes(),
                    mode_char(mode),
                    ttl.as_bytes(),
                    wait,
                    hb.as_bytes(),
                ],
            },
        )
    }

    /// Grants the lease if it is free now (nobody holds it incompatibly,
    /// nobody is queued, no lock-delay), else `Busy`; never queues.
    pub fn try_acquire(
        &self,
        resource: &str,
        owner: &str,
        ttl: Duration,
        mode: Mode,
    ) -> Result<Lease> {
        let keys = self.keys(resource)?;
        check_name("owner", owner)?;
        let ttl_ms = config::ttl_ms(ttl)?;
        let (r, stamp) = self.acquire_call(&keys, owner, ttl_ms, mode, false)?;
        match r.status {
            1 => Ok(lease(
                resource,
                owner,
                r.a,
                mode,
                stamp.local(r.now_ms + r.b),
            )),
            0 => Err(Error::Busy {
                resource: resource.to_owned(),
            }),
            _ => Err(scripts_bad(&r)),
        }
    }

    /// Acquires a lease, blocking until it is granted (FIFO behind earlier
    /// requests from any process) or until `timeout` passes (`Timeout`;
    /// `None` waits as long as it takes; zero fails at once unless the
    /// lease is free). The lease expires `ttl` after the grant.
    pub fn acquire(
        &self,
        resource: &str,
        owner: &str,
        ttl: Duration,
        mode: Mode,
        timeout: Option<Duration>,
    ) -> Result<Lease> {
        match self.enqueue(resource, owner, ttl, mode, timeout)? {
            RedisEnqueued::Granted(l) => Ok(l),
            RedisEnqueued::Queued(mut ticket) => loop {
                if let Some(l) = ticket.wait(None)? {
                    return Ok(l);
                }
            },
        }
    }

    /// The non-blocking half of [`acquire`](Self::acquire): grants at once
    /// or queues and returns a [`RedisTicket`] to wait on in slices. A zero
    /// `timeout` on a busy resource gives `Timeout` at once.
    pub fn enqueue(
        &self,
        resource: &str,
        owner: &str,
        ttl: Duration,
        mode: Mode,
        timeout: Option<Duration>,
    ) -> Result<RedisEnqueued> {
        let keys = self.keys(resource)?;
        check_name("owner", owner)?;
        let ttl_ms = config::ttl_ms(ttl)?;
        let sent = std::time::Instant::now();
        let deadline = timeout.map(|t| sent + t);
        let wait = timeout != Some(Duration::ZERO);
        let (r, stamp) = self.acquire_call(&keys, owner, ttl_ms, mode, wait)?;
        match r.status {
            1 => Ok(RedisEnqueued::Granted(lease(
                resource,
                owner,
                r.a,
                mode,
                stamp.local(r.now_ms + r.b),
            ))),
            0 => Err(Error::Timeout {
                resource: resource.to_owned(),
            }),
            2 => Ok(RedisEnqueued::Queued(RedisTicket::new(
                self.clone(),
                ticket::Request {
                    resource: resource.into(),
                    owner: owner.into(),
                    mode,
                    ttl_ms,
                    keys,
                    id: u64::try_from(r.a).map_err(|_| scripts_bad(&r))?,
                    deadline,
                },
                stamp,
                sent,
                r.b,
            ))),
            _ => Err(scripts_bad(&r)),
        }
    }

    /// Extends `lease` to now + `ttl`; returns the renewed lease.
    /// `LeaseExpired` if it ran out first, `NotHolder` if it is not held
    /// (released, superseded, never granted, another owner's).
    pub fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease> {
        self.renew_token(&lease.resource, &lease.owner, lease.token, ttl)
    }

    /// [`renew`](Self::renew) by resource, owner and token.
    pub fn renew_token(
        &self,
        resource: &str,
        owner: &str,
        token: u64,
        ttl: Duration,
    ) -> Result<Lease> {
        let keys = self.keys(resource)?;
        check_name("owner", owner)?;
        let ttl_ms = config::ttl_ms(ttl)?;
        let (tok, ttl) = (token.to_string(), ttl_ms.to_string());
        let (r, stamp) = self.call(
            &scripts::RENEW,
            Call {
                keys: &keys,
                args: &[owner.as_bytes(), tok.as_bytes(), ttl.as_bytes()],
            },
        )?;
        self.check_held(&r, resource, owner, token)?;
        let mode = if r.a == 1 {
            Mode::Exclusive
        } else {
            Mode::Shared
        };
        Ok(lease(
            resource,
            owner,
            token as i64,
            mode,
            stamp.local(r.now_ms + r.b),
        ))
    }

    /// Ends `lease` and grants the next waiters. Errors as
    /// [`renew`](Self::renew); a second release gives `NotHolder`.
    pub fn release(&self, lease: &Lease) -> Result<()> {
        self.release_token(&lease.resource, &lease.owner, lease.token)
    }

    /// [`release`](Self::release) by resource, owner and token.
    pub fn release_token(&self, resource: &str, owner: &str, token: u64) -> Result<()> {
        let keys = self.keys(resource)?;
        check_name("owner", owner)?;
        let tok = token.to_string();
        let (r, _) = self.call(
            &scripts::RELEASE,
            Call {
                keys: &keys,
                args: &[owner.as_bytes(), tok.as_bytes()],
            },
        )?;
        self.check_held(&r, resource, owner, token)
    }

    fn check_held(&self, r: &Reply, resource: &str, owner: &str, token: u64) -> Result<()> {
        match r.status {
            1 => Ok(()),
            -1 => Err(Error::LeaseExpired {
                resource: resource.to_owned(),
                token,
            }),
            -2 => Err(Error::NotHolder {
                resource: resource.to_owned(),
                owner: owner.to_owned(),
                token,
            }),
            _ => Err(scripts_bad(r)),
        }
    }

    /// The live leases on `resource` (oldest first) and its queue length.
    fn inspect(&self, resource: &str) -> Result<(Vec<Lease>, usize)> {
        let keys = self.keys(resource)?;
        let (v, sent_ns) = self.call_raw(
            &scripts::INSPECT,
            Call {
                keys: &keys,
                args: &[],
            },
        )?;
        let bad = || Error::corrupt(format!("redis: unexpected inspect reply {v:?}"));
        let Value::Array(items) = &v else {
            return Err(bad());
        };
        if items.len() < 2 || (items.len() - 2) % 3 != 0 {
            return Err(bad());
        }
        let stamp = Stamp {
            sent_ns,
            server_ms: scripts::int(&items[0])?,
        };
        let queued = usize::try_from(scripts::int(&items[1])?).map_err(|_| bad())?;
        let mut out = Vec::new();
        for h in items[2..].chunks(3) {
            let tok = scripts::int(&h[0])?;
            let left = scripts::int(&h[1])?;
            let Value::BulkString(info) = &h[2] else {
                return Err(bad());
            };
            let Some((&m, owner)) = info.split_first() else {
                return Err(bad());
            };
            let owner = String::from_utf8_lossy(owner);
            out.push(lease(
                resource,
                &owner,
                tok,
                mode_of(m)?,
                stamp.local(stamp.server_ms + left),
            ));
        }
        out.sort_by_key(|l| l.token);
        Ok((out, queued))
    }

    /// The live leases on `resource`, oldest first.
    pub fn holders(&self, resource: &str) -> Result<Vec<Lease>> {
        Ok(self.inspect(resource)?.0)
    }

    /// The live lease `token` on `resource`, if it is still held now.
    pub fn lease_status(&self, resource: &str, token: u64) -> Result<Option<Lease>> {
        Ok(self
            .holders(resource)?
            .into_iter()
            .find(|l| l.token == token))
    }

    /// The number of queued requests on `resource`.
    pub fn queue_len(&self, resource: &str) -> Result<usize> {
        Ok(self.inspect(resource)?.1)
    }
}

fn scripts_bad(r: &Reply) -> Error {
    Error::corrupt(format!("redis: unexpected script reply {r:?}"))
}

pub(crate) fn lease(resource: &str, owner: &str, token: i64, mode: Mode, expires_at: u64) -> Lease {
    Lease {
        resource: resource.into(),
        owner: owner.into(),
        token: token as u64,
        mode,
        expires_at,
    }
}
