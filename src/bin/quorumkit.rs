//! `quorumkit`: run a replica, look at a cluster, use its key-value store.
//!
//! Exit codes: 0 done; 1 the operation failed (unreachable cluster, key not
//! found, a lock not taken in time, a replica that stopped on an error);
//! 2 bad usage; 3 (`lock`) the lease was lost while the command ran (the
//! command was terminated). `lock` otherwise exits with the command's code.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use quorumkit::lease::Mode;
use quorumkit::net::{Client, ClientConfig, Replica, ReplicaConfig, StateMachine, kv};
use quorumkit::service::LeaseClient;

#[derive(Parser)]
#[command(
    name = "quorumkit",
    version,
    about = "Paxos-replicated services from quorumkit"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct ClusterArgs {
    /// Every replica: ID=HOST:PORT,... (the client commands also take HOST:PORT,...)
    #[arg(long, value_name = "LIST")]
    peers: String,
    /// The cluster id: any number, the same for every replica and client.
    #[arg(long, default_value_t = 1, value_parser = parse_u64)]
    cluster_id: u64,
    /// A file holding the cluster secret (at least 16 bytes; a final newline is ignored).
    /// Without it, the environment variable QK_CLUSTER_SECRET.
    #[arg(long, value_name = "PATH")]
    secret_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run one replica (of the lease service, or of a key-value store) until killed.
    Serve {
        /// What the cluster replicates.
        #[arg(long, value_enum, default_value_t = State::Lease)]
        state: State,
        /// This replica's id (one of --peers).
        #[arg(long)]
        id: u32,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// The data directory (its record file is locked while the replica runs).
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Create a new replica in an empty data directory. Without it the
        /// directory must hold this replica's records: a replica that lost
        /// them must not rejoin unnoticed.
        #[arg(long)]
        init: bool,
        /// This replica joins a running cluster (with --init the first
        /// time, and on every restart): --peers lists the cluster's voters
        /// and this replica. It takes part once the leader adds it
        /// (`quorumkit admin add-learner`; first `admin add-peer` on every
        /// replica).
        #[arg(long)]
        join: bool,
        /// Listen here instead of this replica's --peers address (needed to
        /// listen beyond loopback, e.g. 0.0.0.0:7001).
        #[arg(long, value_name = "HOST:PORT")]
        listen: Option<SocketAddr>,
        /// Heartbeat interval in milliseconds (election timeout: 10x).
        #[arg(long, default_value_t = 50)]
        heartbeat_ms: u64,
        /// Compact the log (snapshot the state, drop the slots before it)
        /// every this many slots; 0: never. The key-value store compacts;
        /// the lease service keeps its whole log.
        #[arg(long, default_value_t = 10_000, value_name = "SLOTS")]
        compact_every: u64,
        /// How the leader answers reads: under its leader lease (no message
        /// per read; assumes bounded clock drift), or by ReadIndex (a
        /// heartbeat round per turn of reads; no clock assumption).
        #[arg(long, value_enum, default_value_t = ReadPolicyArg::Lease)]
        read_policy: ReadPolicyArg,
        /// Log connections and leader changes to stderr.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Show each replica's view: leader, ballot, commit index and lag.
    Status {
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Run COMMAND while holding (and renewing) an exclusive lease on
    /// RESOURCE; its fencing token is in QK_FENCING_TOKEN.
    Lock {
        resource: String,
        /// The lease's time to live (10s, 500ms, 2m; a bare number is seconds).
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        ttl: Duration,
        /// Give up (exit 1) if not granted within this long (default: wait).
        #[arg(long, value_parser = parse_duration)]
        wait: Option<Duration>,
        /// The owner name the lease is taken under (default: host:pid).
        #[arg(long)]
        owner: Option<String>,
        #[command(flatten)]
        cluster: ClusterArgs,
        /// The command and its arguments.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Measure a lease-service cluster: CLIENTS threads, each taking and
    /// releasing its own resource's lease for SECONDS; prints pairs/s and
    /// the latency of a pair (p50, p99).
    Bench {
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Concurrent clients (one connection each).
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// How long to run.
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        duration: Duration,
    },
    /// Use the replicated key-value store (a cluster served with --state kv).
    Kv {
        #[command(subcommand)]
        op: KvOp,
    },
    /// Change a running cluster: its members and its leader.
    Admin {
        #[command(flatten)]
        cluster: ClusterArgs,
        #[command(subcommand)]
        op: AdminCmd,
    },
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Tell every replica in --peers the address of replica ID (do this
    /// before adding it).
    AddPeer { id: u32, addr: String },
    /// Add replica ID (started with serve --join) as a learner.
    AddLearner { id: u32 },
    /// Make the learner ID a voter.
    Promote { id: u32 },
    /// Remove the voter or learner ID.
    Remove { id: u32 },
    /// Give the voter OLD's vote to the learner NEW.
    Replace { old: u32, new: u32 },
    /// Hand the leadership to voter ID.
    Transfer { id: u32 },
    /// Show each replica's membership: epoch, voters, learners.
    Membership,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum State {
    /// The replicated lease service (quorumkit lock, LeaseClient).
    Lease,
    /// A replicated key-value store (quorumkit kv).
    Kv,
}

/// `serve --read-policy`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReadPolicyArg {
    /// Reads under the leader lease.
    Lease,
    /// Reads by ReadIndex.
    ReadIndex,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: expected a duration like 10s or 500ms"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: the unit must be ms, s, m or h")),
    };
    if !(secs.is_finite() && secs > 0.0 && secs < 1e9) {
        return Err(format!("{s:?}: must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[derive(Args)]
struct KvArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
}

#[derive(Subcommand)]
enum KvOp {
    /// Set KEY to VALUE; prints the previous value, if any.
    Put {
        key: String,
        value: String,
        #[command(flatten)]
        args: KvArgs,
    },
    /// Print KEY's value (a linearizable read on the leader); exit 1 if absent.
    Get {
        key: String,
        #[command(flatten)]
        args: KvArgs,
    },
    /// Add DELTA to the integer at KEY (absent: 0); prints the new value.
    Add {
        key: String,
        #[arg(allow_hyphen_values = true)]
        delta: i64,
        #[command(flatten)]
        args: KvArgs,
    },
    /// Remove KEY; prints the removed value, if any.
    Del {
        key: String,
        #[command(flatten)]
        args: KvArgs,
    },
}

fn parse_u64(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("{s:?}: {e}"))
}

fn resolve(addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs()
        .map_err(|e| format!("{addr:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr:?}: no address"))
}

/// `ID=HOST:PORT,...`; with `ids_optional`, bare `HOST:PORT` entries too
/// (numbered in order).
fn parse_peers(list: &str, ids_optional: bool) -> Result<BTreeMap<u32, SocketAddr>, String> {
    let mut peers = BTreeMap::new();
    for (i, item) in list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
    {
        let (id, addr) = match item.split_once('=') {
            Some((id, addr)) => (
                id.parse::<u32>()
                    .map_err(|_| format!("{item:?}: the id is not a number"))?,
                addr,
            ),
            None if ids_optional => (i as u32 + 1, item),
            None => return Err(format!("{item:?}: expected ID=HOST:PORT")),
        };
        if id == 0 {
            return Err(format!("{item:?}: replica ids start at 1"));
        }
        if peers.insert(id, resolve(addr)?).is_some() {
            return Err(format!("replica {id} is listed twice"));
        }
    }
    if peers.is_empty() {
        return Err("--peers is empty".into());
    }
    Ok(peers)
}

fn secret(args: &ClusterArgs) -> Result<Vec<u8>, String> {
    let mut s = match &args.secret_file {
        Some(p) => std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?,
        None => std::env::var("QK_CLUSTER_SECRET")
            .map_err(|_| {
                "no cluster secret: pass --secret-file or set QK_CLUSTER_SECRET".to_string()
            })?
            .into_bytes(),
    };
    while s.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        s.pop();
    }
    Ok(s)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            state,
            id,
            cluster,
            data,
            init,
            join,
            listen,
            heartbeat_ms,
            compact_every,
            read_policy,
            verbose,
        } => match state {
            State::Lease => serve(
                quorumkit::service::LeaseService::default(),
                id,
                &cluster,
                data,
                (init, join),
                listen,
                (heartbeat_ms, compact_every, read_policy),
                verbose,
            ),
            State::Kv => serve(
                kv::KvStore::new(),
                id,
                &cluster,
                data,
                (init, join),
                listen,
                (heartbeat_ms, compact_every, read_policy),
                verbose,
            ),
        },
        Command::Lock {
            resource,
            ttl,
            wait,
            owner,
            cluster,
            command,
        } => lock(&cluster, &resource, ttl, wait, owner, &command),
        Command::Status { cluster } => status(&cluster),
        Command::Kv { op } => kv_op(op),
        Command::Admin { cluster, op } => admin(&cluster, op),
        Command::Bench {
            cluster,
            clients,
            duration,
        } => bench(&cluster, clients, duration),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("quorumkit: {e}");
            ExitCode::from(1)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn serve(
    machine: impl StateMachine,
    id: u32,
    cluster: &ClusterArgs,
    data: PathBuf,
    (init, join): (bool, bool),
    listen: Option<SocketAddr>,
    (heartbeat_ms, compact_every, read_policy): (u64, u64, ReadPolicyArg),
    verbose: bool,
) -> Result<ExitCode, String> {
    let peers = parse_peers(&cluster.peers, false)?;
    if !peers.contains_key(&id) {
        return Err(format!("--id {id} is not among --peers"));
    }
    if heartbeat_ms == 0 {
        return Err("--heartbeat-ms must be at least 1".into());
    }
    let mut config = ReplicaConfig::new(
        id,
        peers,
        data.clone(),
        cluster.cluster_id,
        secret(cluster)?,
    );
    config.set_heartbeat(Duration::from_millis(heartbeat_ms));
    config.compact_every_slots = compact_every;
    config.read_policy = match read_policy {
        ReadPolicyArg::Lease => quorumkit::net::ReadPolicy::Lease,
        ReadPolicyArg::ReadIndex => quorumkit::net::ReadPolicy::ReadIndex,
    };
    config.compact_every_bytes = if compact_every == 0 { 0 } else { 64 << 20 };
    config.listen = listen;
    config.init = init;
    config.join = join;
    config.verbose = verbose;
    let replica = Replica::start(config, machine).map_err(|e| e.to_string())?;
    eprintln!(
        "quorumkit: replica {id} of cluster {:#x} serving on {} (data in {})",
        cluster.cluster_id,
        replica.local_addr(),
        data.display()
    );
    while !replica.is_stopped() {
        std::thread::sleep(Duration::from_millis(200));
    }
    replica.shutdown().map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

fn client(cluster: &ClusterArgs, timeout: f64) -> Result<Client, String> {
    let peers = parse_peers(&cluster.peers, true)?;
    if !(timeout.is_finite() && timeout > 0.0) {
        return Err("--timeout must be a positive number of seconds".into());
    }
    let mut cfg = ClientConfig::new(
        peers.values().copied().collect(),
        cluster.cluster_id,
        secret(cluster)?,
    );
    cfg.timeout = Duration::from_secs_f64(timeout);
    cfg.attempt_timeout = cfg.attempt_timeout.min(cfg.timeout);
    Client::new(cfg).map_err(|e| e.to_string())
}

fn status(cluster: &ClusterArgs) -> Result<ExitCode, String> {
    let peers = parse_peers(&cluster.peers, true)?;
    let mut c = client(cluster, 2.0)?;
    let mut rows = Vec::new();
    for (&id, &addr) in &peers {
        rows.push((id, addr, c.status_of(addr)));
    }
    let top = rows
        .iter()
        .filter_map(|(_, _, s)| s.as_ref().ok().map(|s| s.commit_index))
        .max()
        .unwrap_or(0);
    println!(
        "{:<4} {:<22} {:<7} {:<12} {:>10} {:>6} {:<5}",
        "ID", "ADDRESS", "LEADER", "BALLOT", "COMMIT", "LAG", "LEASE"
    );
    let mut leaders = std::collections::BTreeSet::new();
    for (id, addr, s) in &rows {
        match s {
            Ok(s) => {
                if s.leader != 0 {
                    leaders.insert(s.leader);
                }
                let leader = if s.leader == 0 {
                    "-".to_string()
                } else {
                    s.leader.to_string()
                };
                let ballot = format!("{}.{}", s.ballot_round, s.ballot_node);
                let lease = if s.read_lease { "yes" } else { "no" };
                println!(
                    "{:<4} {:<22} {:<7} {:<12} {:>10} {:>6} {:<5}",
                    s.id,
                    addr.to_string(),
                    leader,
                    ballot,
                    s.commit_index,
                    top - s.commit_index,
                    lease
                );
                if s.id != *id {
                    eprintln!(
                        "quorumkit: {addr} answers as replica {}, listed as {id}",
                        s.id
                    );
                }
            }
            Err(e) => println!("{:<4} {:<22} unreachable: {e}", id, addr.to_string()),
        }
    }
    if leaders.is_empty() {
        eprintln!("quorumkit: no replica knows a leader");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn admin(cluster: &ClusterArgs, op: AdminCmd) -> Result<ExitCode, String> {
    use quorumkit::net::proto::{AdminOp, decode_membership};
    use quorumkit::paxos::MembershipChange as Change;
    let peers = parse_peers(&cluster.peers, true)?;
    let mut c = client(cluster, 10.0)?;
    let change = match op {
        AdminCmd::AddPeer { id, addr } => {
            let addr = resolve(&addr)?;
            return Ok(ask_each(&peers, |at| {
                c.admin_at(at, AdminOp::AddPeer { id, addr })
                    .map(|_| format!("knows replica {id} at {addr}"))
            }));
        }
        AdminCmd::Membership => {
            return Ok(ask_each(&peers, |at| {
                let (epoch, start, voters, learners) =
                    decode_membership(&c.admin_at(at, AdminOp::Membership)?)?;
                Ok(format!(
                    "epoch {epoch} from slot {start}: voters {voters:?}, learners {learners:?}"
                ))
            }));
        }
        AdminCmd::Transfer { id } => AdminOp::Transfer { to: id },
        AdminCmd::AddLearner { id } => AdminOp::Change(Change::AddLearner(id)),
        AdminCmd::Promote { id } => AdminOp::Change(Change::Promote(id)),
        AdminCmd::Remove { id } => AdminOp::Change(Change::Remove(id)),
        AdminCmd::Replace { old, new } => AdminOp::Change(Change::Replace { old, new }),
    };
    c.admin(change).map_err(|e| e.to_string())?;
    println!("proposed; `quorumkit admin membership` shows it once it is in force");
    Ok(ExitCode::SUCCESS)
}

/// Asks every listed replica in turn (an answer or an error per line);
/// fails if any of them did.
fn ask_each(
    peers: &BTreeMap<u32, SocketAddr>,
    mut ask: impl FnMut(SocketAddr) -> quorumkit::Result<String>,
) -> ExitCode {
    let mut failed = false;
    for (&listed, &at) in peers {
        match ask(at) {
            Ok(line) => println!("replica {listed} ({at}): {line}"),
            Err(e) => {
                failed = true;
                eprintln!("quorumkit: replica {listed} ({at}): {e}");
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn kv_op(op: KvOp) -> Result<ExitCode, String> {
    let (KvOp::Put { args, .. }
    | KvOp::Get { args, .. }
    | KvOp::Add { args, .. }
    | KvOp::Del { args, .. }) = &op;
    let mut c = client(&args.cluster, args.timeout)?;
    let show = |v: Option<Vec<u8>>| {
        if let Some(v) = v {
            println!("{}", String::from_utf8_lossy(&v));
        }
    };
    match op {
        KvOp::Put { key, value, .. } => show(kv::decode_previous(
            &c.propose(&kv::put(key.as_bytes(), value.as_bytes()))
                .map_err(|e| e.to_string())?,
        )),
        KvOp::Del { key, .. } => show(kv::decode_previous(
            &c.propose(&kv::delete(key.as_bytes()))
                .map_err(|e| e.to_string())?,
        )),
        KvOp::Add { key, delta, .. } => {
            let r = c
                .propose(&kv::add(key.as_bytes(), delta))
                .map_err(|e| e.to_string())?;
            println!(
                "{}",
                kv::decode_i64(&r).ok_or("the value is not an integer")?
            );
        }
        KvOp::Get { key, .. } => {
            let r = c
                .read(&kv::get(key.as_bytes()))
                .map_err(|e| e.to_string())?;
            match kv::decode_previous(&r) {
                Some(v) => match kv::decode_i64(&v) {
                    // `add` stores 8-byte integers: show them as numbers.
                    Some(n) if v.len() == 8 && !v.iter().all(|b| b.is_ascii_graphic()) => {
                        println!("{n}")
                    }
                    _ => println!("{}", String::from_utf8_lossy(&v)),
                },
                None => {
                    eprintln!("quorumkit: {key}: not found");
                    return Ok(ExitCode::from(1));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn lock(
    cluster: &ClusterArgs,
    resource: &str,
    ttl: Duration,
    wait: Option<Duration>,
    owner: Option<String>,
    command: &[String],
) -> Result<ExitCode, String> {
    let peers = parse_peers(&cluster.peers, true)?;
    let cfg = ClientConfig::new(
        peers.values().copied().collect(),
        cluster.cluster_id,
        secret(cluster)?,
    );
    let client = std::sync::Arc::new(LeaseClient::new(cfg).map_err(|e| e.to_string())?);
    let owner = owner.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}:{}", host.trim(), std::process::id())
    });
    let lease = client
        .acquire(resource, &owner, ttl, Mode::Exclusive, wait)
        .map_err(|e| format!("cannot take the lease on {resource:?}: {e}"))?;
    let token = lease.lease.token;
    let mut child = std::process::Command::new(&command[0])
        .args(&command[1..])
        .env("QK_FENCING_TOKEN", token.to_string())
        .env("QK_LEASE_RESOURCE", resource)
        .spawn()
        .map_err(|e| {
            let _ = client.release(&lease);
            format!("cannot run {:?}: {e}", command[0])
        })?;
    // Renew at a third of the TTL; a lease that cannot be renewed before
    // this process's view of it ends is lost.
    let (lost_tx, lost_rx) = std::sync::mpsc::channel::<String>();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let renewer = {
        let (client, done, mut held) = (client.clone(), done.clone(), lease.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(
                    (ttl / 3)
                        .min(Duration::from_millis(200))
                        .max(Duration::from_millis(1)),
                );
                if done.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                if held
                    .valid_until
                    .saturating_duration_since(std::time::Instant::now())
                    > ttl * 2 / 3
                {
                    continue;
                }
                match client.renew(&held, ttl) {
                    Ok(l) => held = l,
                    Err(e)
                        if !held.is_valid()
                            || matches!(
                                e,
                                quorumkit::Error::NotHolder { .. }
                                    | quorumkit::Error::LeaseExpired { .. }
                            ) =>
                    {
                        let _ = lost_tx.send(e.to_string());
                        return held;
                    }
                    Err(_) => {} // retried next round while the lease is still valid
                }
                if !held.is_valid() {
                    let _ = lost_tx.send("the lease ran out before a renewal succeeded".into());
                    return held;
                }
            }
            held
        })
    };
    let status = loop {
        if let Ok(why) = lost_rx.try_recv() {
            eprintln!(
                "quorumkit: lost the lease on {resource:?} (token {token}): {why}; stopping the command"
            );
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = renewer.join();
            return Ok(ExitCode::from(3));
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("waiting for the command: {e}")),
        }
    };
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let held = renewer.join().unwrap_or(lease);
    if lost_rx.try_recv().is_ok() {
        eprintln!("quorumkit: the lease on {resource:?} was lost as the command ended");
        return Ok(ExitCode::from(3));
    }
    if let Err(e) = client.release(&held) {
        eprintln!("quorumkit: releasing the lease on {resource:?}: {e}");
    }
    Ok(ExitCode::from(
        status.code().map_or(1, |c| c.clamp(0, 255) as u8),
    ))
}

fn bench(cluster: &ClusterArgs, clients: usize, duration: Duration) -> Result<ExitCode, String> {
    if clients == 0 || clients > 4096 {
        return Err("--clients must be 1..=4096".into());
    }
    let peers = parse_peers(&cluster.peers, true)?;
    let cfg = ClientConfig::new(
        peers.values().copied().collect(),
        cluster.cluster_id,
        secret(cluster)?,
    );
    let start = std::time::Instant::now() + Duration::from_millis(200);
    let end = start + duration;
    let mut threads = Vec::new();
    for i in 0..clients {
        let client = LeaseClient::new(cfg.clone()).map_err(|e| e.to_string())?;
        threads.push(std::thread::spawn(move || {
            let (resource, owner) = (format!("bench-{i}"), format!("bench-client-{i}"));
            let mut lat = Vec::new();
            let mut errors = 0u64;
            while std::time::Instant::now() < start {
                std::thread::sleep(Duration::from_millis(1));
            }
            while std::time::Instant::now() < end {
                let t = std::time::Instant::now();
                match client.try_acquire(
                    &resource,
                    &owner,
                    Duration::from_secs(10),
                    Mode::Exclusive,
                ) {
                    Ok(l) => match client.release(&l) {
                        Ok(()) => lat.push(t.elapsed()),
                        Err(_) => errors += 1,
                    },
                    Err(_) => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in threads {
        let (l, e) = t
            .join()
            .map_err(|_| "a bench thread panicked".to_string())?;
        lat.extend(l);
        errors += e;
    }
    if lat.is_empty() {
        return Err(format!(
            "no acquire+release pair succeeded ({errors} errors)"
        ));
    }
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "{} clients, {:.1} s: {} acquire+release pairs, {:.0} pairs/s; pair latency p50 {:.2} ms, p99 {:.2} ms; {} errors",
        clients,
        duration.as_secs_f64(),
        lat.len(),
        lat.len() as f64 / duration.as_secs_f64(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        errors
    );
    Ok(ExitCode::SUCCESS)
}
