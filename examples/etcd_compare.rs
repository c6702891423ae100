//! The replicated lease service and KV side by side with a 3-member etcd
//! cluster, in one run on this machine (loopback, fsync on for both):
//! lock+unlock pairs/s and puts/s with N concurrent clients, and the time
//! from a kill -9 of the leader to the first grant and put after it.
//!
//! `make bench-etcd` (bench/etcd_compare.sh) installs etcd and runs this:
//! `cargo run --release --example etcd_compare -- [--seconds S] [--clients N]`.
//!
//! etcd is driven through its v3 JSON gateway over HTTP/1.1 keep-alive,
//! one connection per client thread: a gRPC client would skip the
//! gateway's JSON hop, so etcd's figures here are a little pessimistic —
//! the output says so. (A gRPC client would pull an async runtime and a
//! code generator into the build for one benchmark.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quorumkit::lease::Mode;
use quorumkit::net::{Client, ClientConfig, kv};
use quorumkit::service::LeaseClient;

const SECRET: &str = "etcd-compare-secret-0123";

fn free_ports(n: usize) -> Vec<u16> {
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// Processes killed (by PID) when dropped.
struct Procs(Vec<Option<Child>>);

impl Procs {
    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.0[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for i in 0..self.0.len() {
            self.kill(i);
        }
    }
}

// ---------------------------------------------------------------- etcd

/// Standard base64 (the gateway's encoding of bytes fields).
fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One keep-alive HTTP/1.1 connection to the gateway of etcd members.
struct Etcd {
    addrs: Vec<SocketAddr>,
    turn: usize,
    conn: Option<BufReader<TcpStream>>,
}

impl Etcd {
    fn new(addrs: Vec<SocketAddr>, first: usize) -> Etcd {
        Etcd {
            addrs,
            turn: first,
            conn: None,
        }
    }

    /// POSTs `body` to `path`; on a failure the next member is tried on
    /// the next call (as an etcd client with several endpoints does).
    fn post(&mut self, path: &str, body: &serde_json::Value) -> Result<serde_json::Value, String> {
        let r = self.try_post(path, body);
        if r.is_err() {
            self.conn = None;
            self.turn += 1;
        }
        r
    }

    fn try_post(
        &mut self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        if self.conn.is_none() {
            let a = self.addrs[self.turn % self.addrs.len()];
            let s = TcpStream::connect_timeout(&a, Duration::from_secs(1))
                .map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(3))).ok();
            s.set_nodelay(true).ok();
            self.conn = Some(BufReader::new(s));
        }
        let r = self.conn.as_mut().unwrap();
        let body = body.to_string();
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: etcd\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        r.get_mut()
            .write_all(req.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut status = String::new();
        r.read_line(&mut status).map_err(|e| e.to_string())?;
        let (mut len, mut chunked) = (None, false);
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).map_err(|e| e.to_string())? == 0 {
                return Err("connection closed".into());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse::<usize>().ok();
            }
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        let mut data = Vec::new();
        if chunked {
            loop {
                let mut line = String::new();
                r.read_line(&mut line).map_err(|e| e.to_string())?;
                let n = usize::from_str_radix(line.trim(), 16).map_err(|e| e.to_string())?;
                let mut chunk = vec![0; n + 2];
                r.read_exact(&mut chunk).map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                data.extend_from_slice(&chunk[..n]);
            }
        } else {
            let n = len.ok_or("no content length")?;
            data.resize(n, 0);
            r.read_exact(&mut data).map_err(|e| e.to_string())?;
        }
        if !status.contains(" 200 ") {
            return Err(format!(
                "{}: {}",
                status.trim(),
                String::from_utf8_lossy(&data)
            ));
        }
        serde_json::from_slice(&data).map_err(|e| e.to_string())
    }

    fn grant(&mut self, ttl: u64) -> Result<String, String> {
        let v = self.post("/v3/lease/grant", &serde_json::json!({ "TTL": ttl }))?;
        v["ID"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("grant: {v}"))
    }

    /// lock then unlock `name` under `lease`.
    fn lock_unlock(&mut self, name: &str, lease: &str) -> Result<(), String> {
        let v = self.post(
            "/v3/lock/lock",
            &serde_json::json!({ "name": b64(name.as_bytes()), "lease": lease }),
        )?;
        let key = v["key"]
            .as_str()
            .ok_or_else(|| format!("lock: {v}"))?
            .to_owned();
        self.post("/v3/lock/unlock", &serde_json::json!({ "key": key }))?;
        Ok(())
    }

    fn put(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        self.post(
            "/v3/kv/put",
            &serde_json::json!({ "key": b64(key.as_bytes()), "value": b64(value) }),
        )
        .map(|_| ())
    }
}

fn start_etcd(dir: &Path) -> (Procs, Vec<SocketAddr>) {
    let client = free_ports(3);
    let peer = free_ports(3);
    let cluster = (0..3)
        .map(|i| format!("m{i}=http://127.0.0.1:{}", peer[i]))
        .collect::<Vec<_>>()
        .join(",");
    let mut procs = Vec::new();
    for i in 0..3 {
        let c = format!("http://127.0.0.1:{}", client[i]);
        let p = format!("http://127.0.0.1:{}", peer[i]);
        let child = Command::new("etcd")
            .args(["--name", &format!("m{i}")])
            .arg("--data-dir")
            .arg(dir.join(format!("m{i}")))
            .args(["--listen-client-urls", &c, "--advertise-client-urls", &c])
            .args([
                "--listen-peer-urls",
                &p,
                "--initial-advertise-peer-urls",
                &p,
            ])
            .args([
                "--initial-cluster",
                &cluster,
                "--initial-cluster-state",
                "new",
            ])
            .args(["--initial-cluster-token", "qk-compare"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd (Debian package etcd-server)");
        procs.push(Some(child));
    }
    let addrs: Vec<SocketAddr> = client
        .iter()
        .map(|p| format!("127.0.0.1:{p}").parse().unwrap())
        .collect();
    let mut e = Etcd::new(addrs.clone(), 0);
    let until = Instant::now() + Duration::from_secs(30);
    while e.put("ready", b"1").is_err() {
        assert!(Instant::now() < until, "etcd did not start within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    (Procs(procs), addrs)
}

fn etcd_leader(addrs: &[SocketAddr]) -> Option<usize> {
    for (i, a) in addrs.iter().enumerate() {
        let mut e = Etcd::new(vec![*a], 0);
        if let Ok(v) = e.post("/v3/maintenance/status", &serde_json::json!({}))
            && v["leader"].is_string()
            && v["leader"] == v["header"]["member_id"]
        {
            return Some(i);
        }
    }
    None
}

// ---------------------------------------------------------------- quorumkit

fn start_quorumkit(dir: &Path, state: &str) -> (Procs, Vec<SocketAddr>) {
    let ports = free_ports(3);
    let peers = (0..3)
        .map(|i| format!("{}=127.0.0.1:{}", i + 1, ports[i]))
        .collect::<Vec<_>>()
        .join(",");
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .join("../quorumkit");
    let mut procs = Vec::new();
    for i in 0..3 {
        let child = Command::new(&bin)
            .args(["serve", "--state", state, "--id", &(i + 1).to_string()])
            .args(["--peers", &peers])
            .arg("--data")
            .arg(dir.join(format!("{state}{i}")))
            .arg("--init")
            .env("QK_CLUSTER_SECRET", SECRET)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start target/release/quorumkit (cargo build --release --bin quorumkit)");
        procs.push(Some(child));
    }
    let addrs = ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}").parse().unwrap())
        .collect();
    (Procs(procs), addrs)
}

fn config(addrs: &[SocketAddr]) -> ClientConfig {
    ClientConfig::new(addrs.to_vec(), 1, SECRET)
}

fn qk_leader(addrs: &[SocketAddr]) -> Option<usize> {
    let mut c = Client::new(config(addrs)).ok()?;
    addrs.iter().position(|&a| {
        c.status_of(a)
            .map(|s| s.read_lease && s.leader == s.id)
            .unwrap_or(false)
    })
}

// ---------------------------------------------------------------- runs

#[derive(Default)]
struct Figures {
    ops: usize,
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

/// Runs `clients` threads doing `op(client index, iteration)` for `secs`.
fn run<S: Send + 'static>(
    clients: usize,
    secs: f64,
    make: impl Fn(usize) -> S,
    op: impl Fn(&mut S, usize, u64) -> Result<(), String> + Send + Sync + 'static,
) -> Figures {
    let op = Arc::new(op);
    let start = Instant::now() + Duration::from_millis(300);
    let end = start + Duration::from_secs_f64(secs);
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let (mut s, op) = (make(i), op.clone());
            std::thread::spawn(move || {
                let (mut lat, mut errors, mut n) = (Vec::new(), 0u64, 0u64);
                while Instant::now() < start {
                    std::thread::sleep(Duration::from_millis(1));
                }
                while Instant::now() < end {
                    let t = Instant::now();
                    n += 1;
                    match op(&mut s, i, n) {
                        Ok(()) => lat.push(t.elapsed()),
                        Err(_) => errors += 1,
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in threads {
        let (l, e) = t.join().unwrap();
        lat.extend(l);
        errors += e;
    }
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    Figures {
        ops: lat.len(),
        per_sec: lat.len() as f64 / secs,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        errors,
    }
}

/// Kills the leader (found by `leader`) and times `op` until it succeeds
/// after the kill (bounded by 30 s).
fn failover(
    procs: &mut Procs,
    leader: impl Fn() -> Option<usize>,
    mut op: impl FnMut() -> Result<(), String>,
) -> Option<Duration> {
    for _ in 0..50 {
        if op().is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let l = leader()?;
    let killed = Instant::now();
    procs.kill(l);
    while killed.elapsed() < Duration::from_secs(30) {
        if op().is_ok() {
            return Some(killed.elapsed());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let secs = arg("--seconds", 5.0);
    let clients = arg("--clients", 64.0) as usize;
    let dir: PathBuf = std::env::temp_dir().join(format!("qk-etcd-compare-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let version = Command::new("etcd")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .unwrap_or_else(|_| "etcd not found".into());
    eprintln!("{version}; {clients} clients, {secs} s per workload");

    // etcd: lock/unlock, put, failover.
    let (mut etcd, eaddrs) = start_etcd(&dir);
    let e_lock = run(
        clients,
        secs,
        |i| {
            let mut e = Etcd::new(eaddrs.clone(), i);
            let lease = e.grant(60).expect("etcd lease grant");
            (e, lease)
        },
        |(e, lease), i, _| e.lock_unlock(&format!("bench-{i}"), lease),
    );
    let e_put = run(
        clients,
        secs,
        |i| Etcd::new(eaddrs.clone(), i),
        |e, i, n| e.put(&format!("key-{i}"), format!("value-{n}").as_bytes()),
    );
    let mut fe = Etcd::new(eaddrs.clone(), 0);
    let lease = fe.grant(60).expect("etcd lease grant");
    let e_fail_lock = failover(
        &mut etcd,
        || etcd_leader(&eaddrs),
        || fe.lock_unlock("failover", &lease),
    );
    drop(etcd);
    let (mut etcd, eaddrs) = start_etcd(&dir.join("second"));
    let mut fe = Etcd::new(eaddrs.clone(), 0);
    let e_fail_put = failover(
        &mut etcd,
        || etcd_leader(&eaddrs),
        || fe.put("failover", b"x"),
    );
    drop(etcd);

    // quorumkit: the lease service and the KV store.
    let (mut qk, qaddrs) = start_quorumkit(&dir, "lease");
    let warm = LeaseClient::new(config(&qaddrs)).unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    while warm
        .try_acquire("ready", "bench", Duration::from_secs(1), Mode::Exclusive)
        .is_err()
    {
        assert!(
            Instant::now() < until,
            "quorumkit did not start within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let q_lock = run(
        clients,
        secs,
        |_| LeaseClient::new(config(&qaddrs)).unwrap(),
        |c, i, _| {
            let (r, o) = (format!("bench-{i}"), format!("client-{i}"));
            let l = c
                .acquire(
                    &r,
                    &o,
                    Duration::from_secs(10),
                    Mode::Exclusive,
                    Some(Duration::from_secs(5)),
                )
                .map_err(|e| e.to_string())?;
            c.release(&l).map_err(|e| e.to_string())
        },
    );
    let q_fail_lock = failover(
        &mut qk,
        || qk_leader(&qaddrs),
        || {
            let l = warm
                .try_acquire(
                    "failover",
                    "bench",
                    Duration::from_secs(10),
                    Mode::Exclusive,
                )
                .map_err(|e| e.to_string())?;
            warm.release(&l).map_err(|e| e.to_string())
        },
    );
    drop(qk);
    let (mut qk, qaddrs) = start_quorumkit(&dir, "kv");
    let mut warm = Client::new(config(&qaddrs)).unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    while warm.propose(&kv::put(b"ready", b"1")).is_err() {
        assert!(
            Instant::now() < until,
            "quorumkit kv did not start within 30 s"
        );
    }
    let q_put = run(
        clients,
        secs,
        |_| Client::new(config(&qaddrs)).unwrap(),
        |c, i, n| {
            c.propose(&kv::put(
                format!("key-{i}").as_bytes(),
                format!("value-{n}").as_bytes(),
            ))
            .map(|_| ())
            .map_err(|e| e.to_string())
        },
    );
    let q_fail_put = failover(
        &mut qk,
        || qk_leader(&qaddrs),
        || {
            warm.propose(&kv::put(b"failover", b"x"))
                .map(|_| ())
                .map_err(|e| e.to_string())
        },
    );
    drop(qk);
    let _ = std::fs::remove_dir_all(&dir);

    let ms = |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
    println!("| {clients} clients, {secs} s each | quorumkit | etcd | ratio |");
    println!("|---|---:|---:|---:|");
    let row = |name: &str, q: f64, e: f64, higher_better: bool| {
        let ratio = if higher_better { q / e } else { e / q };
        println!("| {name} | {q:.2} | {e:.2} | {ratio:.2}× |");
    };
    row("lock+unlock pairs/s", q_lock.per_sec, e_lock.per_sec, true);
    row("lock+unlock p50 (ms)", q_lock.p50_ms, e_lock.p50_ms, false);
    row("lock+unlock p99 (ms)", q_lock.p99_ms, e_lock.p99_ms, false);
    row("puts/s", q_put.per_sec, e_put.per_sec, true);
    row("put p50 (ms)", q_put.p50_ms, e_put.p50_ms, false);
    row("put p99 (ms)", q_put.p99_ms, e_put.p99_ms, false);
    row(
        "kill -9 leader → first grant (ms)",
        ms(q_fail_lock),
        ms(e_fail_lock),
        false,
    );
    row(
        "kill -9 leader → first put (ms)",
        ms(q_fail_put),
        ms(e_fail_put),
        false,
    );
    println!(
        "\n{version} (heartbeat 100 ms, election 1000 ms: its defaults), reached through its v3 JSON \
         gateway over HTTP/1.1 keep-alive (a gRPC client skips that hop); quorumkit serve with its \
         defaults (heartbeat 50 ms, election 500 ms). Ratios: quorumkit/etcd for rates, etcd/quorumkit \
         for times (above 1 means quorumkit is better). Errors: quorumkit {} lock, {} put; etcd {} lock, {} put \
         ({} + {} + {} + {} operations).",
        q_lock.errors,
        q_put.errors,
        e_lock.errors,
        e_put.errors,
        q_lock.ops,
        q_put.ops,
        e_lock.ops,
        e_put.ops
    );
}
