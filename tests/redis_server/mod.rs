//! A throwaway `redis-server` for tests: a free loopback port, a temp dir,
//! no persistence; stopped by its PID (SIGKILL) when dropped.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const REDIS_SERVER: &str = "/usr/bin/redis-server";

pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
}

/// `None` (after saying why) when redis-server is not installed.
pub fn start() -> Option<RedisServer> {
    start_with(&[])
}

/// As [`start`], with extra server arguments (e.g. `--requirepass x`).
pub fn start_with(extra: &[&str]) -> Option<RedisServer> {
    if !Path::new(REDIS_SERVER).exists() {
        eprintln!(
            "SKIPPED: {REDIS_SERVER} not found; install Debian's redis-server to run this test"
        );
        return None;
    }
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "qk-redis-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut s = RedisServer {
        port: 0,
        dir,
        child: None,
        extra: extra.iter().map(|s| s.to_string()).collect(),
    };
    // A port taken between probing and binding: try another (bounded).
    for _ in 0..5 {
        s.port = free_port();
        if s.spawn() {
            return Some(s);
        }
    }
    panic!("could not start redis-server");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl RedisServer {
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Starts the server on `self.port`; whether it answers PING in time.
    fn spawn(&mut self) -> bool {
        let port = self.port.to_string();
        let child = Command::new(REDIS_SERVER)
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if self
                .child
                .as_mut()
                .unwrap()
                .try_wait()
                .ok()
                .flatten()
                .is_some()
            {
                self.child = None;
                return false;
            }
            match self.owns_port() {
                Some(true) => return true,
                // Another process (say, a parallel test run's server) got
                // the port first: ours cannot bind it. Try another port.
                Some(false) => {
                    self.kill();
                    return false;
                }
                None => {}
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
        false
    }

    /// Whether the server answering on the port is our child (its `INFO`
    /// process id); `None` while nothing answers yet.
    fn owns_port(&self) -> Option<bool> {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        c.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        let mut req = String::new();
        let pw = self.extra.iter().position(|a| a == "--requirepass");
        if let Some(pw) = pw.and_then(|i| self.extra.get(i + 1)) {
            req.push_str(&format!("AUTH {pw}\r\n"));
        }
        req.push_str("INFO server\r\n");
        c.write_all(req.as_bytes()).ok()?;
        let want = format!("process_id:{}\r", self.child.as_ref()?.id());
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while seen.len() < 64 * 1024 {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
            let text = String::from_utf8_lossy(&seen);
            if text.contains("process_id:") && text.contains("\r\n\r\n") {
                return Some(text.contains(&want));
            }
        }
        let text = String::from_utf8_lossy(&seen);
        text.contains("process_id:").then(|| text.contains(&want))
    }

    /// SIGKILL: the data is gone (no persistence).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the server and starts a fresh one on the same port.
    pub fn restart(&mut self) {
        self.kill();
        for _ in 0..50 {
            if self.spawn() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("could not restart redis-server on port {}", self.port);
    }

    /// SIGSTOP / SIGCONT: a server that accepts connections but never answers.
    pub fn pause(&self, stop: bool) {
        let sig = if stop { "-STOP" } else { "-CONT" };
        let ok = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok);
    }

    /// A plain redis-rs connection for checks.
    pub fn conn(&self) -> redis::Connection {
        let c = redis::Client::open(self.url()).unwrap();
        let con = c
            .get_connection_with_timeout(Duration::from_secs(2))
            .unwrap();
        con.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        con
    }

    /// Every key in the server, with its PTTL (ms; -1 none).
    pub fn keys(&self) -> Vec<(String, i64)> {
        let mut con = self.conn();
        let mut cursor: u64 = 0;
        let mut out = Vec::new();
        // SCAN, bounded: a test keyspace is small.
        for _ in 0..10_000 {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(1000)
                .query(&mut con)
                .unwrap();
            for k in batch {
                let ttl: i64 = redis::cmd("PTTL").arg(&k).query(&mut con).unwrap();
                out.push((k, ttl));
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        out.sort();
        out
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL ends a stopped (SIGSTOP) process too.
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
