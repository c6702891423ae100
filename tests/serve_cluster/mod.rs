//! `quorumkit serve` processes for the process-level tests: free loopback
//! ports, a temp dir, kill -9 / SIGSTOP / SIGCONT by PID, stopped on drop
//! (`mod serve_cluster;` in each test file).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use quorumkit::net::ClientConfig;

pub mod proxy;
use proxy::{LinkMode, LinkProxy};

/// A cluster of `quorumkit serve --state STATE` processes.
/// Slots between two compactions of every replica in these tests.
pub const COMPACT_EVERY: &str = "50";

pub struct Procs {
    pub dir: std::path::PathBuf,
    pub peers: BTreeMap<u32, SocketAddr>,
    pub children: BTreeMap<u32, Child>,
    pub state: &'static str,
    pub cluster: u64,
    pub secret: &'static str,
    /// With proxies: the proxy of each directed link (from, to); replica
    /// `from` reaches `to` through it.
    pub links: BTreeMap<(u32, u32), LinkProxy>,
}

impl Procs {
    /// `n` new replicas (each started with --init).
    pub fn new(
        n: u32,
        name: &str,
        state: &'static str,
        cluster: u64,
        secret: &'static str,
    ) -> Procs {
        let dir = std::env::temp_dir().join(format!("qk-procs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ls: Vec<TcpListener> = (0..n)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let peers = (1..=n)
            .zip(ls.iter().map(|l| l.local_addr().unwrap()))
            .collect();
        drop(ls);
        let mut p = Procs {
            dir,
            peers,
            children: BTreeMap::new(),
            state,
            cluster,
            secret,
            links: BTreeMap::new(),
        };
        for id in 1..=n {
            p.spawn(id, true);
        }
        p
    }

    /// As [`new`](Self::new), with every replica-to-replica link through
    /// its own proxy, so that tests can partition, drop and delay.
    pub fn with_proxies(
        n: u32,
        name: &str,
        state: &'static str,
        cluster: u64,
        secret: &'static str,
    ) -> Procs {
        let mut p = Procs::new(0, name, state, cluster, secret);
        let ls: Vec<TcpListener> = (0..n)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        p.peers = (1..=n)
            .zip(ls.iter().map(|l| l.local_addr().unwrap()))
            .collect();
        drop(ls);
        for from in 1..=n {
            for to in 1..=n {
                if from != to {
                    p.links.insert((from, to), LinkProxy::start(p.peers[&to]));
                }
            }
        }
        for id in 1..=n {
            p.spawn(id, true);
        }
        p
    }

    /// Sets both directions between every replica of `a` and every one of
    /// `b` (a partition is `set_between(side, other, Cut)`).
    pub fn set_between(&self, a: &[u32], b: &[u32], mode: LinkMode) {
        for &x in a {
            for &y in b {
                for key in [(x, y), (y, x)] {
                    if let Some(l) = self.links.get(&key) {
                        l.set(mode);
                    }
                }
            }
        }
    }

    /// Heals every link (and removes delays).
    pub fn heal(&self) {
        for l in self.links.values() {
            l.set_delay(0);
            l.set(LinkMode::Pass);
        }
    }

    /// `--peers` for this cluster.
    pub fn peer_list(&self) -> String {
        self.peer_list_of(0)
    }

    /// `--peers` as replica `me` sees it: its own address, and the others
    /// through the links' proxies when there are some.
    pub fn peer_list_of(&self, me: u32) -> String {
        self.peers
            .iter()
            .map(|(&id, a)| {
                let addr = self.links.get(&(me, id)).map_or(*a, |l| l.addr);
                format!("{id}={addr}")
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts replica `id` (a new one with `init`, else from its directory).
    pub fn spawn(&mut self, id: u32, init: bool) {
        self.spawn_with(id, init, &[]);
    }

    /// As [`spawn`](Self::spawn), with more `serve` arguments (`--join`).
    pub fn spawn_with(&mut self, id: u32, init: bool, extra: &[&str]) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_quorumkit"));
        cmd.args([
            "serve",
            "--state",
            self.state,
            "--id",
            &id.to_string(),
            "--peers",
            &self.peer_list_of(id),
        ])
        .args([
            "--cluster-id",
            &self.cluster.to_string(),
            "--heartbeat-ms",
            "20",
            // Compact often, so the faults meet compactions and replicas
            // that come back behind them install snapshots.
            "--compact-every",
            COMPACT_EVERY,
        ])
        .arg("--data")
        .arg(self.dir.join(format!("r{id}")))
        .env("QK_CLUSTER_SECRET", self.secret)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if init {
            cmd.arg("--init");
        }
        cmd.args(extra);
        self.children
            .insert(id, cmd.spawn().expect("start quorumkit serve"));
    }

    /// kill -9, and reap.
    pub fn kill9(&mut self, id: u32) {
        if let Some(mut c) = self.children.remove(&id) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `kill SIG pid` (e.g. "-STOP", "-CONT").
    pub fn signal(&self, id: u32, sig: &str) {
        if let Some(c) = self.children.get(&id) {
            let _ = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status();
        }
    }

    /// A client config for this cluster with `timeout` per call.
    pub fn client_config(&self, timeout: Duration) -> ClientConfig {
        let mut cfg = ClientConfig::new(
            self.peers.values().copied().collect(),
            self.cluster,
            self.secret,
        );
        cfg.timeout = timeout;
        cfg.attempt_timeout = Duration::from_millis(400).min(timeout);
        cfg
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        let ids: Vec<u32> = self.children.keys().copied().collect();
        for id in ids {
            self.signal(id, "-CONT");
            self.kill9(id);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The seed of a randomized schedule: QK_SEED, else the clock.
pub fn seed() -> u64 {
    std::env::var("QK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

/// How many fault rounds a test runs: QK_FAULT_ROUNDS (the `make jepsen`
/// soak sets it), else `default`.
pub fn rounds(default: usize) -> usize {
    std::env::var("QK_FAULT_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// How long workers may run for `rounds` fault rounds (a bound, not a goal).
pub fn work_bound(rounds: usize) -> Duration {
    Duration::from_secs(60 + 6 * rounds as u64)
}
