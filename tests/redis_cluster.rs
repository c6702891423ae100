//! `RedisLeaseTable` on a real Redis Cluster: three masters this test starts
//! (free loopback ports, temp dirs, `--cluster-enabled yes`), joins with
//! `redis-cli --cluster create` and kills by PID. Resources spread over
//! every master; grants, FIFO hand-off, shared mode, expiry, keep-alive and
//! cleanup work on each; bad cluster URLs get clear errors.
#![cfg(feature = "redis")]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quorumkit::Error;
use quorumkit::lease::Mode;
use quorumkit::lease::redis::{RedisConfig, RedisLeaseTable};

const REDIS_SERVER: &str = "/usr/bin/redis-server";
const REDIS_CLI: &str = "/usr/bin/redis-cli";
const MS: Duration = Duration::from_millis(1);
const X: Mode = Mode::Exclusive;

struct Cluster {
    ports: Vec<u16>,
    children: Vec<Child>,
    dir: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new(REDIS_CLI)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Cluster {
    /// Three masters joined into one cluster; None when redis is missing.
    fn start() -> Option<Cluster> {
        if !std::path::Path::new(REDIS_SERVER).exists() || !std::path::Path::new(REDIS_CLI).exists()
        {
            eprintln!("SKIPPED: redis-server or redis-cli not found (make sysdeps installs them)");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("qk-cluster-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut c = Cluster {
            ports: Vec::new(),
            children: Vec::new(),
            dir,
        };
        for i in 0..3 {
            let (port, bus) = (free_port(), free_port());
            let child = Command::new(REDIS_SERVER)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &bus.to_string(),
                ])
                .args(["--cluster-config-file", &format!("nodes-{i}.conf")])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&c.dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            c.ports.push(port);
            c.children.push(child);
        }
        for &p in &c.ports {
            let until = Instant::now() + Duration::from_secs(5);
            while cli(p, &["PING"]).trim() != "PONG" {
                assert!(Instant::now() < until, "redis-server on {p} did not start");
                std::thread::sleep(10 * MS);
            }
        }
        let nodes: Vec<String> = c.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = Command::new(REDIS_CLI)
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli --cluster create");
        assert!(created.success(), "redis-cli --cluster create failed");
        let until = Instant::now() + Duration::from_secs(20);
        while !c
            .ports
            .iter()
            .all(|&p| cli(p, &["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        {
            assert!(Instant::now() < until, "the cluster did not reach state ok");
            std::thread::sleep(50 * MS);
        }
        Some(c)
    }

    fn url(&self) -> String {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis-cluster://{}", nodes.join(","))
    }

    /// Every key on every master.
    fn keys(&self) -> Vec<(u16, String)> {
        let mut out = Vec::new();
        for &p in &self.ports {
            for k in cli(p, &["--scan"]).lines() {
                out.push((p, k.to_owned()));
            }
        }
        out
    }

    /// The master whose slots include `key`'s.
    fn owner_of(&self, key: &str) -> u16 {
        let slot: u16 = cli(self.ports[0], &["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .unwrap();
        for &p in &self.ports {
            // A master serves a key of its own slot; others answer MOVED.
            let id = cli(p, &["CLUSTER", "MYID"]);
            let nodes = cli(p, &["CLUSTER", "NODES"]);
            let mine = nodes.lines().find(|l| l.starts_with(id.trim())).unwrap();
            for range in mine.split_whitespace().skip(8) {
                let (a, b) = match range.split_once('-') {
                    Some((a, b)) => (a.parse::<u16>().unwrap(), b.parse::<u16>().unwrap()),
                    None => {
                        let s = range.parse::<u16>().unwrap();
                        (s, s)
                    }
                };
                if (a..=b).contains(&slot) {
                    return p;
                }
            }
        }
        panic!("no master owns slot {slot}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn quick() -> RedisConfig {
    RedisConfig {
        connect_timeout: 1000 * MS,
        command_timeout: 1000 * MS,
        recheck_interval: 200 * MS,
        waiter_ttl: 2000 * MS,
        expired_memory: 300 * MS,
        ..RedisConfig::default()
    }
}

#[test]
fn leases_work_on_every_master_of_a_three_node_cluster() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let t = RedisLeaseTable::open(&cluster.url(), quick()).unwrap();
    t.ping().unwrap();

    // Resources spread over the masters; each works on its own.
    let mut masters = std::collections::BTreeSet::new();
    let mut last = 0;
    for i in 0..24 {
        let r = format!("res-{i}");
        let l = t.acquire(&r, "a", 10_000 * MS, X, None).unwrap();
        assert!(l.token > 0);
        assert!(matches!(
            t.try_acquire(&r, "b", 1000 * MS, X),
            Err(Error::Busy { .. })
        ));
        // Every key of the resource lives on the master owning its tag.
        let owner = cluster.owner_of(&format!("{{qk:{r}}}"));
        masters.insert(owner);
        let keys: Vec<_> = cluster
            .keys()
            .into_iter()
            .filter(|(_, k)| k.starts_with(&format!("{{qk:{r}}}")))
            .collect();
        assert!(!keys.is_empty());
        assert!(
            keys.iter().all(|(p, _)| *p == owner),
            "{keys:?} not all on {owner}"
        );
        t.release(&l).unwrap();
        last = last.max(l.token);
    }
    assert_eq!(masters.len(), 3, "24 resources landed on {masters:?}");

    // FIFO hand-off to blocked waiters, on whichever master owns it.
    let t = Arc::new(t);
    let held = t.acquire("queue", "a", 10_000 * MS, X, None).unwrap();
    let mut waiters = Vec::new();
    for name in ["w1", "w2", "w3"] {
        let t2 = t.clone();
        waiters.push(std::thread::spawn(move || {
            let l = t2
                .acquire("queue", name, 10_000 * MS, X, Some(Duration::from_secs(10)))
                .unwrap();
            let at = Instant::now();
            std::thread::sleep(20 * MS);
            t2.release(&l).unwrap();
            (name, l.token, at)
        }));
        let until = Instant::now() + Duration::from_secs(3);
        while t.queue_len("queue").unwrap() < waiters.len() {
            assert!(Instant::now() < until);
            std::thread::sleep(5 * MS);
        }
    }
    t.release(&held).unwrap();
    let mut got: Vec<_> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
    got.sort_by_key(|g| g.2);
    assert_eq!(
        got.iter().map(|g| g.0).collect::<Vec<_>>(),
        ["w1", "w2", "w3"],
        "FIFO"
    );
    assert!(got.windows(2).all(|w| w[0].1 < w[1].1) && got[0].1 > held.token);

    // Shared holders together; an exclusive request waits for both.
    let s1 = t
        .acquire("shared", "s1", 10_000 * MS, Mode::Shared, None)
        .unwrap();
    let s2 = t
        .acquire("shared", "s2", 10_000 * MS, Mode::Shared, None)
        .unwrap();
    assert_eq!(t.holders("shared").unwrap().len(), 2);
    assert!(matches!(
        t.try_acquire("shared", "x", 1000 * MS, X),
        Err(Error::Busy { .. })
    ));
    t.release(&s1).unwrap();
    t.release(&s2).unwrap();

    // Expiry is the server's: another owner gets it after the TTL, with a
    // higher token; the late holder hears LeaseExpired / NotHolder.
    let short = t.acquire("exp", "a", 200 * MS, X, None).unwrap();
    std::thread::sleep(300 * MS);
    let next = t.try_acquire("exp", "b", 1000 * MS, X).unwrap();
    assert!(next.token > short.token);
    assert!(t.release(&short).is_err());
    t.release(&next).unwrap();

    // Keep-alive renews through the cluster.
    let l = t.acquire("kept", "a", 300 * MS, X, None).unwrap();
    let k = t.keep_alive(l, 300 * MS).unwrap();
    std::thread::sleep(800 * MS);
    assert!(!k.is_lost() && k.renewals() >= 2, "{k:?}");
    k.release().unwrap();

    // Nothing is left behind on any master once the expired memory lapses.
    let until = Instant::now() + Duration::from_secs(5);
    while !cluster.keys().is_empty() {
        assert!(Instant::now() < until, "{:?}", cluster.keys());
        std::thread::sleep(50 * MS);
    }

    // One master forgets everything (a restart without persistence): its
    // resources' tokens re-seed from that node's TIME and keep increasing;
    // the leases on the other masters stay held.
    let mut held = Vec::new();
    for i in 0..12 {
        let r = format!("seed-{i}");
        let l = t.acquire(&r, "a", 60_000 * MS, X, None).unwrap();
        held.push((cluster.owner_of(&format!("{{qk:{r}}}")), l));
    }
    let victim = held[0].0;
    assert!(held.iter().any(|(p, _)| *p != victim), "all on one master");
    assert_eq!(cli(victim, &["FLUSHALL"]).trim(), "OK");
    for (port, l) in &held {
        let again = t.try_acquire(&l.resource, "b", 5_000 * MS, X);
        if *port == victim {
            let again = again.expect("the forgotten lease is free again");
            assert!(again.token > l.token, "{} after {}", again.token, l.token);
            t.release(&again).unwrap();
        } else {
            assert!(matches!(again, Err(Error::Busy { .. })), "{again:?}");
            t.release(l).unwrap();
        }
    }
}

#[test]
fn bad_cluster_urls_get_clear_errors() {
    let bad = |url: &str| match RedisLeaseTable::open(url, quick()) {
        Err(Error::InvalidArgument(m)) => m,
        other => panic!("{url}: {other:?}"),
    };
    let m = bad("redis-cluster://127.0.0.1:1/3");
    assert!(m.contains("database"), "{m}");
    assert!(bad("redis-cluster://127.0.0.1:1,,127.0.0.1:2").contains("empty"));
    assert!(bad("redis-cluster://").contains("empty"));
    // Nothing listens on the seeds: unavailable within the timeouts.
    let (a, b) = (free_port(), free_port());
    let t = RedisLeaseTable::open(
        &format!("redis-cluster://127.0.0.1:{a},127.0.0.1:{b}"),
        quick(),
    )
    .unwrap();
    let start = Instant::now();
    assert!(matches!(
        t.try_acquire("r", "o", 1000 * MS, X),
        Err(Error::BackendUnavailable(_))
    ));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    // Seeds that accept connections and never answer: bounded by the
    // command timeout per node, not a hang.
    let mute: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let nodes: Vec<String> = mute
        .iter()
        .map(|l| l.local_addr().unwrap().to_string())
        .collect();
    let t =
        RedisLeaseTable::open(&format!("redis-cluster://{}", nodes.join(",")), quick()).unwrap();
    let start = Instant::now();
    assert!(matches!(
        t.try_acquire("r", "o", 1000 * MS, X),
        Err(Error::BackendUnavailable(_))
    ));
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
    drop(mute);
}
