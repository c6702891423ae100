//! Three replicas of the runtime in one process, over real loopback TCP:
//! writes through any replica, a leader stopped and restarted from its
//! file, exactly-once retries, refused connections.
#![cfg(feature = "server")]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use quorumkit::net::auth::{Identity, Role, handshake};
use quorumkit::net::frame::{read_frame, write_frame};
use quorumkit::net::proto::{Request, Response};
use quorumkit::net::{Client, ClientConfig, Replica, ReplicaConfig, kv};

const SECRET: &[u8] = b"net-replica-test-secret";
const CLUSTER: u64 = 0xc1;

fn free_addrs(n: usize) -> Vec<SocketAddr> {
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    ls.iter().map(|l| l.local_addr().unwrap()).collect()
}

struct Cluster {
    dir: std::path::PathBuf,
    peers: BTreeMap<u32, SocketAddr>,
    replicas: BTreeMap<u32, Replica>,
}

impl Cluster {
    fn config(&self, id: u32, init: bool) -> ReplicaConfig {
        self.config_with(id, self.peers.clone(), init)
    }

    /// Replica `id`'s config (fast timers, its own directory) with the
    /// address book `peers` (a joiner's includes itself).
    fn config_with(&self, id: u32, peers: BTreeMap<u32, SocketAddr>, init: bool) -> ReplicaConfig {
        let mut c = ReplicaConfig::new(id, peers, self.dir.join(format!("r{id}")), CLUSTER, SECRET);
        c.node.heartbeat_interval = 20_000_000;
        c.node.election_timeout = 150_000_000;
        c.node.lease_duration = 300_000_000;
        c.node.max_clock_drift = 20_000_000;
        c.init = init;
        c
    }

    fn start(n: usize, name: &str) -> Cluster {
        let dir = std::env::temp_dir().join(format!("qk-net-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let peers: BTreeMap<u32, SocketAddr> = (1..=n as u32).zip(free_addrs(n)).collect();
        let mut c = Cluster {
            dir,
            peers,
            replicas: BTreeMap::new(),
        };
        for id in 1..=n as u32 {
            let r = Replica::start(c.config(id, true), kv::KvStore::new()).unwrap();
            c.replicas.insert(id, r);
        }
        c
    }

    fn client(&self) -> Client {
        let mut cfg = ClientConfig::new(self.peers.values().copied().collect(), CLUSTER, SECRET);
        cfg.timeout = Duration::from_secs(15);
        cfg.attempt_timeout = Duration::from_millis(500);
        Client::new(cfg).unwrap()
    }

    fn leader(&self) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            for (id, r) in &self.replicas {
                let s = r.status();
                if s.leader == *id {
                    return *id;
                }
            }
            assert!(Instant::now() < deadline, "no leader within 10 s");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.replicas.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn writes_survive_a_leader_restart_and_reads_see_them() {
    let mut c = Cluster::start(3, "restart");
    let mut client = c.client();
    for i in 0..50 {
        assert_eq!(
            kv::decode_i64(&client.propose(&kv::add(b"n", 1)).unwrap()),
            Some(i + 1)
        );
    }
    assert_eq!(
        kv::decode_i64(&kv::decode_previous(&client.read(&kv::get(b"n")).unwrap()).unwrap()),
        Some(50)
    );
    // Stop the leader; the others elect one and keep going.
    let old = c.leader();
    c.replicas.remove(&old).unwrap().shutdown().unwrap();
    for i in 50..80 {
        assert_eq!(
            kv::decode_i64(&client.propose(&kv::add(b"n", 1)).unwrap()),
            Some(i + 1)
        );
    }
    // Restart it from its file: it catches up and can lead again.
    let r = Replica::start(c.config(old, false), kv::KvStore::new()).unwrap();
    c.replicas.insert(old, r);
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.replicas[&old].status().applied < 80 {
        assert!(
            Instant::now() < deadline,
            "the restarted replica did not catch up: {:?}",
            c.replicas[&old].status()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let s = c.replicas[&old].status();
    assert!(s.commit_index >= 1 && s.leader != 0, "{s:?}");
}

#[test]
fn a_data_directory_is_never_silently_replaced_or_shared() {
    let c = Cluster::start(3, "dirs");
    // Running: a second process on the same file is refused.
    let e = Replica::start(c.config(1, false), kv::KvStore::new())
        .err()
        .unwrap();
    assert!(matches!(e, quorumkit::Error::StorageInUse(_)), "{e}");
    // init over an existing replica is refused.
    let e = Replica::start(c.config(2, true), kv::KvStore::new())
        .err()
        .unwrap();
    assert!(e.to_string().contains("already holds a replica"), "{e}");
    // A lost data directory needs init (an operator's decision).
    let mut cfg = c.config(3, false);
    cfg.data_dir = c.dir.join("lost");
    let e = Replica::start(cfg, kv::KvStore::new()).err().unwrap();
    assert!(e.to_string().contains("holds no replica"), "{e}");
    // Bad configurations.
    let mut cfg = c.config(3, false);
    cfg.secret = b"short".to_vec();
    assert!(matches!(
        Replica::start(cfg, kv::KvStore::new()),
        Err(quorumkit::Error::InvalidArgument(_))
    ));
}

#[test]
fn retries_apply_once_and_strangers_are_refused() {
    let c = Cluster::start(3, "strangers");
    let mut client = c.client();
    assert_eq!(
        kv::decode_previous(&client.propose(&kv::put(b"k", b"v")).unwrap()),
        None
    );
    // A client with the wrong secret or cluster gets nothing.
    for (cluster, secret) in [
        (CLUSTER, &b"wrong-secret-of-the-cluster"[..]),
        (CLUSTER + 1, SECRET),
    ] {
        let mut cfg = ClientConfig::new(c.peers.values().copied().collect(), cluster, secret);
        cfg.timeout = Duration::from_millis(600);
        let mut bad = Client::new(cfg).unwrap();
        let e = bad.propose(&kv::put(b"k", b"evil")).unwrap_err();
        assert!(matches!(e, quorumkit::Error::BackendUnavailable(_)), "{e}");
    }
    // Garbage and an oversized frame on a raw socket: that connection closes, the replica serves on.
    use std::io::{Read, Write};
    for junk in [
        &b"GET / HTTP/1.0\r\n\r\n"[..],
        &[0xff, 0xff, 0xff, 0xff, 1, 2, 3],
    ] {
        let mut s = TcpStream::connect(c.peers[&1]).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(junk);
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf); // ends: the replica closed it
    }
    assert_eq!(
        kv::decode_previous(&client.read(&kv::get(b"k")).unwrap()),
        Some(b"v".to_vec()),
        "the evil writes must not have landed"
    );
    for id in 1..=3 {
        assert!(!c.replicas[&id].is_stopped());
    }
    // The same request sent three times (a client retrying after lost
    // answers) is applied once: every answer is the first result.
    let leader = c.leader();
    let mut s = TcpStream::connect(c.peers[&leader]).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let me = Identity {
        cluster_id: CLUSTER,
        role: Role::Client,
        secret: SECRET.to_vec(),
    };
    handshake(&mut s, &me).unwrap();
    let req = Request::Propose {
        client: 77,
        request: 1,
        command: kv::add(b"once", 10),
    };
    let (kind, payload) = req.encode();
    for _ in 0..3 {
        write_frame(&mut s, kind, &payload).unwrap();
        let (k, p) = read_frame(&mut s, 1 << 20).unwrap().unwrap();
        assert_eq!(
            Response::decode(k, &p).unwrap(),
            Response::Ok {
                request: 1,
                result: 10i64.to_be_bytes().to_vec()
            }
        );
    }
    assert_eq!(
        kv::decode_i64(&kv::decode_previous(&client.read(&kv::get(b"once")).unwrap()).unwrap()),
        Some(10)
    );
}

#[test]
fn a_client_that_never_reads_its_answers_is_cut_off_and_others_are_served() {
    let c = Cluster::start(3, "unread");
    let mut client = c.client();
    let big = vec![b'x'; 1 << 20];
    client.propose(&kv::put(b"big", &big)).unwrap();
    let leader = c.leader();
    let mut s = TcpStream::connect(c.peers[&leader]).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let me = Identity {
        cluster_id: CLUSTER,
        role: Role::Client,
        secret: SECRET.to_vec(),
    };
    handshake(&mut s, &me).unwrap();
    // Ask for the 1 MiB value again and again and read nothing: the answers
    // pile up past the socket's buffers and the replica's bound (4 MiB),
    // and the replica closes the connection instead of buffering more.
    let mut writes_failed = false;
    let started = Instant::now();
    for request in 1..=200u64 {
        let (kind, payload) = Request::Read {
            request,
            query: kv::get(b"big"),
        }
        .encode();
        if write_frame(&mut s, kind, &payload).is_err() {
            writes_failed = true;
            break;
        }
        if request % 20 == 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
        // The core keeps serving other clients meanwhile.
        if request % 50 == 0 {
            assert_eq!(
                kv::decode_previous(&client.read(&kv::get(b"big")).unwrap()).map(|v| v.len()),
                Some(1 << 20)
            );
        }
    }
    // Closed by the replica: reading what arrived ends (EOF or reset)
    // within the bound, well short of 200 MiB of answers.
    use std::io::Read;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the connection was never closed"
        );
    }
    assert!(
        got < 100 << 20,
        "{got} bytes of answers reached a client that never read (writes failed: {writes_failed})"
    );
    assert!(!c.replicas[&leader].is_stopped());
    client.propose(&kv::put(b"after", b"1")).unwrap();
    assert_eq!(
        kv::decode_previous(&client.read(&kv::get(b"after")).unwrap()),
        Some(b"1".to_vec())
    );
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn replicas_compact_their_logs_and_a_lagging_one_installs_a_snapshot() {
    let mut c = Cluster::start(3, "compact");
    // Restart every replica with compaction every 10 slots.
    let ids: Vec<u32> = c.replicas.keys().copied().collect();
    c.replicas.clear();
    for &id in &ids {
        let mut cfg = c.config(id, false);
        cfg.compact_every_slots = 10;
        c.replicas
            .insert(id, Replica::start(cfg, kv::KvStore::new()).unwrap());
    }
    let mut client = c.client();
    for i in 0..100 {
        let r = client.propose(&kv::add(b"n", 1)).unwrap();
        assert_eq!(kv::decode_i64(&r), Some(i + 1));
        client
            .propose(&kv::put(format!("k{i}").as_bytes(), b"v"))
            .unwrap();
    }
    // A follower stops; the others go on and compact past it.
    let leader = c.leader();
    let f = *ids.iter().find(|&&i| i != leader).unwrap();
    c.replicas.remove(&f).unwrap().shutdown().unwrap();
    let stopped_bytes = dir_bytes(&c.dir.join(format!("r{f}")));
    for i in 100..400 {
        let r = client.propose(&kv::add(b"n", 1)).unwrap();
        assert_eq!(kv::decode_i64(&r), Some(i + 1));
    }
    // Each running replica's disk holds a checkpoint, not 500 slots.
    for &id in ids.iter().filter(|&&i| i != f) {
        let bytes = dir_bytes(&c.dir.join(format!("r{id}")));
        assert!(bytes < 8 * 1024, "replica {id}: {bytes} bytes on disk");
    }
    assert!(stopped_bytes > 0);
    // The follower comes back: the slots it lacks are compacted away, so it
    // installs a snapshot (state, sessions and counters) and catches up.
    let mut cfg = c.config(f, false);
    cfg.compact_every_slots = 10;
    c.replicas
        .insert(f, Replica::start(cfg, kv::KvStore::new()).unwrap());
    let deadline = Instant::now() + Duration::from_secs(15);
    while c.replicas[&f].status().applied < 500 {
        assert!(
            Instant::now() < deadline,
            "the restarted replica did not catch up: {:?}",
            c.replicas[&f].status()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Make it the leader (stop whoever else leads, then bring them back), so
    // that what the client reads is its restored state.
    for _ in 0..10 {
        let l = c.leader();
        if l == f {
            break;
        }
        c.replicas.remove(&l).unwrap().shutdown().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !c
            .replicas
            .values()
            .any(|r| r.status().leader != 0 && r.status().leader != l)
        {
            assert!(Instant::now() < deadline, "no new leader");
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut cfg = c.config(l, false);
        cfg.compact_every_slots = 10;
        c.replicas
            .insert(l, Replica::start(cfg, kv::KvStore::new()).unwrap());
    }
    assert_eq!(c.leader(), f, "the restarted replica never led");
    let got = kv::decode_previous(&client.read(&kv::get(b"n")).unwrap()).unwrap();
    assert_eq!(kv::decode_i64(&got), Some(400));
    let got = kv::decode_previous(&client.read(&kv::get(b"k99")).unwrap());
    assert_eq!(got.as_deref(), Some(&b"v"[..]));
    let r = client.propose(&kv::add(b"n", 1)).unwrap();
    assert_eq!(kv::decode_i64(&r), Some(401));
}

/// The read policy can change while replicas run: without leases, lease
/// reads are never answered, and after a switch to ReadIndex they are.
#[test]
fn read_policy_switches_at_run_time() {
    let mut c = Cluster::start(3, "readswitch");
    let ids: Vec<u32> = c.replicas.keys().copied().collect();
    c.replicas.clear();
    for &id in &ids {
        let mut cfg = c.config(id, false);
        cfg.node.lease_duration = 0;
        c.replicas
            .insert(id, Replica::start(cfg, kv::KvStore::new()).unwrap());
    }
    let mut client = c.client();
    let r = client.propose(&kv::add(b"n", 5)).unwrap();
    assert_eq!(kv::decode_i64(&r), Some(5));
    let mut short = {
        let mut cfg = ClientConfig::new(c.peers.values().copied().collect(), CLUSTER, SECRET);
        cfg.timeout = Duration::from_millis(1500);
        cfg.attempt_timeout = Duration::from_millis(500);
        Client::new(cfg).unwrap()
    };
    assert!(
        short.read(&kv::get(b"n")).is_err(),
        "a lease read was answered without a lease"
    );
    for r in c.replicas.values() {
        assert_eq!(r.read_policy(), quorumkit::net::ReadPolicy::Lease);
        r.set_read_policy(quorumkit::net::ReadPolicy::ReadIndex);
        assert_eq!(r.read_policy(), quorumkit::net::ReadPolicy::ReadIndex);
    }
    for i in 0..10 {
        let r = client.propose(&kv::add(b"n", 1)).unwrap();
        assert_eq!(kv::decode_i64(&r), Some(6 + i));
        let got = kv::decode_previous(&short.read(&kv::get(b"n")).unwrap()).unwrap();
        assert_eq!(kv::decode_i64(&got), Some(6 + i));
    }
    // And back: lease reads are again refused without a lease.
    for r in c.replicas.values() {
        r.set_read_policy(quorumkit::net::ReadPolicy::Lease);
    }
    assert!(short.read(&kv::get(b"n")).is_err());
}

#[test]
fn read_index_reads_need_no_lease() {
    let mut c = Cluster::start(3, "readindex");
    // Restart every replica without leases, reading by ReadIndex.
    let ids: Vec<u32> = c.replicas.keys().copied().collect();
    c.replicas.clear();
    for &id in &ids {
        let mut cfg = c.config(id, false);
        cfg.node.lease_duration = 0;
        cfg.read_policy = quorumkit::net::ReadPolicy::ReadIndex;
        c.replicas
            .insert(id, Replica::start(cfg, kv::KvStore::new()).unwrap());
    }
    let mut client = c.client();
    for i in 0..30 {
        let r = client.propose(&kv::add(b"n", 1)).unwrap();
        assert_eq!(kv::decode_i64(&r), Some(i + 1));
        // Every read sees the write before it.
        let got = kv::decode_previous(&client.read(&kv::get(b"n")).unwrap()).unwrap();
        assert_eq!(kv::decode_i64(&got), Some(i + 1));
    }
    assert!(c.replicas.values().all(|r| !r.status().read_lease));
    // A new leader serves them too.
    let old = c.leader();
    c.replicas.remove(&old).unwrap().shutdown().unwrap();
    let r = client.propose(&kv::add(b"n", 1)).unwrap();
    assert_eq!(kv::decode_i64(&r), Some(31));
    let got = kv::decode_previous(&client.read(&kv::get(b"n")).unwrap()).unwrap();
    assert_eq!(kv::decode_i64(&got), Some(31));
}

/// Waits (bounded) until `cond` holds; false if it never did.
fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// Membership change on running replicas: a fourth replica joins as a
/// learner, is promoted, the leader removes itself and is shut down, and
/// the leadership is handed to a chosen voter; writes go on throughout and
/// nothing is lost.
#[test]
fn replicas_change_membership_and_transfer_leadership_while_serving() {
    use quorumkit::paxos::MembershipChange;
    let mut c = Cluster::start(3, "membership");
    let mut client = c.client();
    let mut n = 0;
    let mut add = |client: &mut Client| {
        n += 1;
        let r = client.propose(&kv::add(b"n", 1)).unwrap();
        assert_eq!(kv::decode_i64(&r), Some(n));
    };
    for _ in 0..10 {
        add(&mut client);
    }
    // Replica 4 joins: it knows the voters; they learn its address.
    let addr4 = free_addrs(1)[0];
    let mut peers = c.peers.clone();
    peers.insert(4, addr4);
    let mut cfg = c.config_with(4, peers, true);
    cfg.join = true;
    let r4 = Replica::start(cfg, kv::KvStore::new()).unwrap();
    assert!(r4.membership().voters == vec![1, 2, 3] && !r4.membership().contains(4));
    let leader = c.leader();
    // No address yet: refused, nothing proposed.
    let refused = c.replicas[&leader].change_membership(MembershipChange::AddLearner(4));
    assert!(
        matches!(&refused, Err(quorumkit::Error::InvalidArgument(m)) if m.contains("add_peer")),
        "{refused:?}"
    );
    for r in c.replicas.values() {
        r.add_peer(4, addr4).unwrap();
        r.add_peer(4, addr4).unwrap(); // again: nothing changes
        assert!(r.add_peer(4, c.peers[&1]).is_err(), "another address for 4");
        assert!(r.add_peer(0, addr4).is_err());
    }
    let follower = *c.replicas.keys().find(|&&id| id != leader).unwrap();
    assert!(matches!(
        c.replicas[&follower].change_membership(MembershipChange::AddLearner(4)),
        Err(quorumkit::Error::NotLeader { .. })
    ));
    c.replicas[&leader]
        .change_membership(MembershipChange::AddLearner(4))
        .unwrap();
    assert!(
        eventually(10, || r4.membership().learners == vec![4]),
        "replica 4 never became a learner: {:?}",
        r4.membership()
    );
    add(&mut client);
    let caught_up = |r: &Replica, want: u64| r.status().commit_index >= want;
    let want = c.replicas[&leader].status().commit_index;
    assert!(
        eventually(10, || caught_up(&r4, want)),
        "the learner never caught up"
    );
    // Promote it (retried: a promotion needs the learner heard lately).
    assert!(
        eventually(10, || {
            c.replicas[&leader]
                .change_membership(MembershipChange::Promote(4))
                .is_ok()
        }),
        "the promotion was never taken"
    );
    assert!(eventually(10, || c
        .replicas
        .values()
        .chain([&r4])
        .all(|r| r.membership().voters == vec![1, 2, 3, 4])));
    c.replicas.insert(4, r4);
    add(&mut client);
    // The leader removes itself, then is shut down; the rest go on.
    let leader = c.leader();
    assert!(eventually(10, || c.replicas[&leader]
        .change_membership(MembershipChange::Remove(leader))
        .is_ok()));
    let rest: Vec<u32> = (1..=4).filter(|&id| id != leader).collect();
    assert!(eventually(10, || rest
        .iter()
        .all(|id| c.replicas[id].membership().voters == rest)));
    c.replicas.remove(&leader).unwrap().shutdown().unwrap();
    let mut client = {
        let mut cfg = ClientConfig::new(
            rest.iter().map(|id| c.replicas[id].local_addr()).collect(),
            CLUSTER,
            SECRET,
        );
        cfg.timeout = Duration::from_secs(15);
        cfg.attempt_timeout = Duration::from_millis(500);
        Client::new(cfg).unwrap()
    };
    for _ in 0..5 {
        add(&mut client);
    }
    // Hand the leadership to a chosen voter.
    let leader = c.leader();
    let to = *rest.iter().find(|&&id| id != leader).unwrap();
    assert!(matches!(
        c.replicas[&to].transfer_leadership(leader),
        Err(quorumkit::Error::NotLeader { .. })
    ));
    c.replicas[&leader].transfer_leadership(to).unwrap();
    assert!(
        eventually(10, || c.replicas[&to].status().leader == to),
        "the leadership never moved to {to}"
    );
    // The joined replica restarts from its log (with `join` again) and
    // knows the membership it applied.
    c.replicas.remove(&4).unwrap().shutdown().unwrap();
    let mut peers = c.peers.clone();
    peers.insert(4, addr4);
    let mut cfg = c.config_with(4, peers, false);
    cfg.join = true;
    let r4 = Replica::start(cfg, kv::KvStore::new()).unwrap();
    assert_eq!(r4.membership().voters, rest);
    c.replicas.insert(4, r4);
    add(&mut client);
    let got = kv::decode_previous(&client.read(&kv::get(b"n")).unwrap()).unwrap();
    assert_eq!(kv::decode_i64(&got), Some(n));
    // Every voter applied every write.
    assert!(eventually(10, || {
        let commits: Vec<u64> = rest
            .iter()
            .map(|id| c.replicas[id].status().commit_index)
            .collect();
        commits.iter().all(|&x| x == commits[0])
    }));
}
