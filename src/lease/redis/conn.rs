//! Connections: a small pool of synchronous redis-rs connections with
//! connect and read/write timeouts, and the mapping of redis-rs errors to
//! the crate's [`Error`]. Plain threads, no async runtime: a blocked waiter
//! holds one connection for one bounded blocking read at a time.
//!
//! A `redis-cluster://` (or `rediss-cluster://`) URL names seed nodes of a
//! Redis Cluster; each pooled connection is then a redis-rs cluster
//! connection, which sends every command to the node owning its keys' slot
//! and follows MOVED/ASK redirects. All keys of one resource share a hash
//! tag (`keys.rs`), so each script and blocking read touches one slot.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::{Client, Connection, ConnectionLike, ErrorKind, RedisError, RedisResult};

use super::config::RedisConfig;
use crate::error::{Error, Result};

/// Where connections come from: one server, or a cluster's seed nodes.
enum Source {
    Single(Client),
    Cluster(ClusterClient),
}

/// One pooled connection.
pub(crate) enum Conn {
    Single(Connection),
    // Boxed: a cluster connection is several times a plain one's size.
    Cluster(Box<ClusterConnection>),
}

impl Conn {
    fn like(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Conn::Single(c) => c,
            Conn::Cluster(c) => &mut **c,
        }
    }

    fn set_timeouts(&self, read: Duration, write: Duration) -> RedisResult<()> {
        match self {
            Conn::Single(c) => {
                c.set_read_timeout(Some(read))?;
                c.set_write_timeout(Some(write))
            }
            Conn::Cluster(c) => {
                c.set_read_timeout(Some(read))?;
                c.set_write_timeout(Some(write))
            }
        }
    }
}

pub(crate) struct Pool {
    source: Source,
    idle: Mutex<Vec<Conn>>,
    connect_timeout: Duration,
    command_timeout: Duration,
    max_idle: usize,
}

/// Whether the connection is still in a known state after `e`: the server
/// answered with an error reply (or one we could not convert). Anything
/// else (I/O, timeouts, protocol errors) may leave a reply in flight.
fn connection_intact(e: &RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Server(_) | ErrorKind::Extension | ErrorKind::UnexpectedReturnType
    )
}

/// Maps a redis-rs error to the crate's error.
pub(crate) fn map_err(e: RedisError) -> Error {
    if e.code() == Some("WRONGTYPE") {
        return Error::corrupt(format!(
            "redis: a key in the lease namespace holds foreign data: {e}"
        ));
    }
    match e.kind() {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => {
            Error::corrupt(format!("redis: unexpected reply: {e}"))
        }
        ErrorKind::InvalidClientConfig => Error::invalid(format!("redis: {e}")),
        ErrorKind::AuthenticationFailed => {
            Error::unavailable(format!("redis: authentication failed: {e}"))
        }
        _ if e.is_timeout() => Error::unavailable(format!("redis: timed out: {e}")),
        _ => Error::unavailable(format!("redis: {e}")),
    }
}

/// The seed nodes' URLs of a `redis-cluster://[user:pass@]h1:p1,h2:p2[?…]`
/// URL (`rediss-cluster://` for TLS), or None for any other URL.
pub(crate) fn cluster_nodes(url: &str) -> Option<Result<Vec<String>>> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("redis-cluster://") {
        ("redis", r)
    } else if let Some(r) = url.strip_prefix("rediss-cluster://") {
        ("rediss", r)
    } else {
        return None;
    };
    let (creds, hosts) = match rest.rfind('@') {
        Some(at) => (&rest[..=at], &rest[at + 1..]),
        None => ("", rest),
    };
    // A path (a database) is refused: a cluster has database 0 only.
    let (hosts, tail) = match hosts.find(['/', '?', '#']) {
        Some(i) => (&hosts[..i], &hosts[i..]),
        None => (hosts, ""),
    };
    if tail.starts_with('/') && tail.len() > 1 && !tail.starts_with("/#") && !tail.starts_with("/?")
    {
        return Some(Err(Error::invalid(
            "a redis-cluster:// URL takes no database number (a cluster has only database 0)",
        )));
    }
    let tail = tail.trim_start_matches('/');
    let nodes: Vec<String> = hosts
        .split(',')
        .map(|h| {
            let slash = if tail.is_empty() { "" } else { "/" };
            format!("{scheme}://{creds}{h}{slash}{tail}")
        })
        .collect();
    if hosts.split(',').any(str::is_empty) {
        return Some(Err(Error::invalid(format!(
            "bad redis cluster URL {:?}: empty node address",
            redact(url)
        ))));
    }
    Some(Ok(nodes))
}

impl Pool {
    pub fn open(url: &str, config: &RedisConfig) -> Result<Pool> {
        // rustls needs a process-wide crypto provider; the first table
        // installs ring's (a no-op if the program installed one already).
        #[cfg(feature = "redis-tls")]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let bad = |e: RedisError| Error::invalid(format!("bad redis URL {:?}: {e}", redact(url)));
        let source = match cluster_nodes(url) {
            None => Source::Single(Client::open(url).map_err(bad)?),
            Some(nodes) => Source::Cluster(
                // 3 retries, not the crate's 16: with nodes that accept but
                // never answer, each retry waits out a command timeout.
                ClusterClient::builder(nodes?)
                    .connection_timeout(config.connect_timeout)
                    .response_timeout(config.command_timeout)
                    .retries(3)
                    .build()
                    .map_err(bad)?,
            ),
        };
        Ok(Pool {
            source,
            idle: Mutex::new(Vec::new()),
            connect_timeout: config.connect_timeout,
            command_timeout: config.command_timeout,
            max_idle: config.max_idle_connections,
        })
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Conn>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn connect(&self) -> Result<Conn> {
        let con = match &self.source {
            Source::Single(client) => Conn::Single(
                client
                    .get_connection_with_timeout(self.connect_timeout)
                    .map_err(map_err)?,
            ),
            // The builder set the connect and response timeouts.
            Source::Cluster(client) => {
                Conn::Cluster(Box::new(client.get_connection().map_err(map_err)?))
            }
        };
        con.set_timeouts(self.command_timeout, self.command_timeout)
            .map_err(map_err)?;
        Ok(con)
    }

    fn put_back(&self, con: Conn) {
        let mut idle = self.idle();
        if idle.len() < self.max_idle {
            idle.push(con);
        }
    }

    /// Runs `f` on a pooled connection (a new one if none is idle). A
    /// connection that failed at the transport level is dropped. If a
    /// reused one turns out closed (likely dead since the server
    /// restarted), every idle connection is dropped too and `f` runs once
    /// more on a fresh one. So a call takes at most `command_timeout`
    /// (plus `connect_timeout` when it needs a new connection).
    ///
    /// The retry can repeat a call the server had already run only if the
    /// connection broke between the request and its reply; the scripts are
    /// safe under that (at worst an unused grant ends with its TTL, or a
    /// repeated release answers `NotHolder`).
    pub fn run<T>(
        &self,
        mut f: impl FnMut(&mut dyn ConnectionLike) -> RedisResult<T>,
    ) -> Result<T> {
        self.run_conn(|c| f(c.like()))
    }

    fn run_conn<T>(&self, mut f: impl FnMut(&mut Conn) -> RedisResult<T>) -> Result<T> {
        let pooled = self.idle().pop();
        let reused = pooled.is_some();
        let mut con = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        match f(&mut con) {
            Ok(v) => {
                self.put_back(con);
                Ok(v)
            }
            Err(e) if connection_intact(&e) => {
                self.put_back(con);
                Err(map_err(e))
            }
            // Not after a timeout: a slow or stopped server would only
            // double the wait.
            Err(e) if reused && e.is_connection_dropped() && !e.is_timeout() => {
                drop(con);
                self.idle().clear();
                let mut con = self.connect()?;
                match f(&mut con) {
                    Ok(v) => {
                        self.put_back(con);
                        Ok(v)
                    }
                    Err(e) => {
                        if connection_intact(&e) {
                            self.put_back(con);
                        }
                        Err(map_err(e))
                    }
                }
            }
            Err(e) => Err(map_err(e)),
        }
    }

    /// Waits up to `wait` (at least 1 ms; Redis reads 0 as forever) for an
    /// entry in list `key`, with a read timeout of `wait + command_timeout`.
    /// `BLMOVE key key` reads without taking: if the reply is lost (a broken
    /// connection), the entry is still there for the next re-check. Once
    /// read, the list is deleted on the same connection, except after a
    /// [`NUDGE`], which alone is removed (a grant pushed meanwhile stays).
    pub fn wait_entry(&self, key: &str, wait: Duration) -> Result<Option<String>> {
        let wait = wait.max(Duration::from_millis(1));
        let secs = format!("{:.3}", wait.as_secs_f64());
        let read_timeout = wait + self.command_timeout;
        self.run_conn(|conn| {
            conn.set_timeouts(read_timeout, self.command_timeout)?;
            let out: RedisResult<Option<String>> = redis::cmd("BLMOVE")
                .arg(key)
                .arg(key)
                .arg("LEFT")
                .arg("LEFT")
                .arg(&secs)
                .query(conn.like());
            conn.set_timeouts(self.command_timeout, self.command_timeout)?;
            let out = out?;
            let con = conn.like();
            match out.as_deref() {
                None => {}
                Some(NUDGE) => redis::cmd("LREM").arg(key).arg(0).arg(NUDGE).exec(con)?,
                Some(_) => redis::cmd("DEL").arg(key).exec(con)?,
            }
            Ok(out)
        })
    }

    /// Pushes a [`NUDGE`] onto list `key` so that a waiter blocked reading
    /// it wakes at once (or does not block at all if it reads later). A new
    /// list lives `ttl_ms`; an existing one (holding a grant) keeps its TTL.
    pub fn nudge(&self, key: &str, ttl_ms: u64) -> Result<()> {
        self.run(|con| {
            NUDGE_SCRIPT
                .key(key)
                .arg(NUDGE)
                .arg(ttl_ms.max(1))
                .invoke::<i64>(con)
                .map(|_| ())
        })
    }
}

/// What a cancel pushes onto a waiter's wake-up list: not a grant (grants
/// are `"token expiry"`); the scripts skip it.
pub(crate) const NUDGE: &str = "c";

static NUDGE_SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        "local n = redis.call('LPUSH', KEYS[1], ARGV[1])\n\
         if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end\n\
         return n",
    )
});

/// A URL with its password replaced, for messages.
pub(crate) fn redact(url: &str) -> String {
    // scheme://user:password@host... -> scheme://user:***@host...
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let Some(at) = rest.rfind('@') else {
        return url.to_owned();
    };
    let creds = &rest[..at];
    match creds.find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &creds[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact("redis://u:secret@h:1/0"),
            "redis://u:***@h:1/0".to_owned()
        );
        assert_eq!(redact("redis://h:1"), "redis://h:1");
        assert_eq!(redact("redis://:pw@h"), "redis://:***@h");
    }
}
