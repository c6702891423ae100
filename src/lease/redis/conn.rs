//! Connections: a small pool of synchronous redis-rs connections with
//! connect and read/write timeouts, and the mapping of redis-rs errors to
//! the crate's [`Error`]. Plain threads, no async runtime: a blocked waiter
//! holds one connection for one bounded blocking read at a time.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use redis::{Client, Connection, ErrorKind, RedisError, RedisResult};

use super::config::RedisConfig;
use crate::error::{Error, Result};

pub(crate) struct Pool {
    client: Client,
    idle: Mutex<Vec<Connection>>,
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

impl Pool {
    pub fn open(url: &str, config: &RedisConfig) -> Result<Pool> {
        // rustls needs a process-wide crypto provider; the first table
        // installs ring's (a no-op if the program installed one already).
        #[cfg(feature = "redis-tls")]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::open(url)
            .map_err(|e| Error::invalid(format!("bad redis URL {:?}: {e}", redact(url))))?;
        Ok(Pool {
            client,
            idle: Mutex::new(Vec::new()),
            connect_timeout: config.connect_timeout,
            command_timeout: config.command_timeout,
            max_idle: config.max_idle_connections,
        })
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn connect(&self) -> Result<Connection> {
        let con = self
            .client
            .get_connection_with_timeout(self.connect_timeout)
            .map_err(map_err)?;
        con.set_read_timeout(Some(self.command_timeout))
            .and_then(|()| con.set_write_timeout(Some(self.command_timeout)))
            .map_err(map_err)?;
        Ok(con)
    }

    fn put_back(&self, con: Connection) {
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
    pub fn run<T>(&self, mut f: impl FnMut(&mut Connection) -> RedisResult<T>) -> Result<T> {
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
        self.run(|con| {
            con.set_read_timeout(Some(read_timeout))?;
            let out: RedisResult<Option<String>> = redis::cmd("BLMOVE")
                .arg(key)
                .arg(key)
                .arg("LEFT")
                .arg("LEFT")
                .arg(&secs)
                .query(con);
            con.set_read_timeout(Some(self.command_timeout))?;
            let out = out?;
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
