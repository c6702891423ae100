//! Membership change and leadership transfer on `quorumkit serve`
//! processes, driven by `quorumkit admin`: three replicas of the key-value
//! store take a fourth (started with `serve --join`), promote it, remove
//! the leader (then kill -9 it) and hand the leadership on, while a client
//! writes; the joined replica survives a kill -9 and a restart.
#![cfg(feature = "cli")]

mod serve_cluster;

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use quorumkit::net::proto::{AdminOp, decode_membership};
use quorumkit::net::{Client, kv};
use serve_cluster::Procs;

const CLUSTER: u64 = 0x5e;
const SECRET: &str = "serve-membership-test-secret";

/// `quorumkit admin --peers LIST OP...`.
fn admin(procs: &Procs, list: &str, op: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quorumkit"))
        .args([
            "admin",
            "--peers",
            list,
            "--cluster-id",
            &CLUSTER.to_string(),
        ])
        .args(op)
        .env("QK_CLUSTER_SECRET", procs.secret)
        .output()
        .expect("run quorumkit admin")
}

fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Replica `id`'s membership: (epoch, voters, learners), if it answers.
fn membership(c: &mut Client, addr: SocketAddr) -> Option<(u64, Vec<u32>, Vec<u32>)> {
    let bytes = c.admin_at(addr, AdminOp::Membership).ok()?;
    let (epoch, _, voters, learners) = decode_membership(&bytes).ok()?;
    Some((epoch, voters, learners))
}

fn leader(c: &mut Client, procs: &Procs) -> Option<u32> {
    procs
        .children
        .keys()
        .copied()
        .find(|&id| c.status_of(procs.peers[&id]).is_ok_and(|s| s.leader == id))
}

#[test]
fn serve_processes_change_membership_and_transfer_leadership() {
    let mut procs = Procs::new(3, "members", "kv", CLUSTER, SECRET);
    let addr4 = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let old_list = procs.peer_list();
    procs.peers.insert(4, addr4);
    let mut client = Client::new(procs.client_config(Duration::from_secs(15))).unwrap();
    let mut n = 0;
    let mut add = |client: &mut Client| {
        n += 1;
        let r = client.propose(&kv::add(b"n", 1)).unwrap();
        assert_eq!(kv::decode_i64(&r), Some(n));
    };
    for _ in 0..5 {
        add(&mut client);
    }
    procs.spawn_with(4, true, &["--join"]);
    let all = procs.peer_list();
    assert!(eventually(10, || membership(&mut client, addr4)
        .is_some_and(|(e, v, l)| e == 0
            && v == vec![1, 2, 3]
            && l.is_empty())));

    // No address for 4 yet: refused, with the reason.
    let out = admin(&procs, &old_list, &["add-learner", "4"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("add_peer"),
        "{out:?}"
    );
    let out = admin(&procs, &old_list, &["add-peer", "4", &addr4.to_string()]);
    assert!(out.status.success(), "{out:?}");
    let out = admin(&procs, &old_list, &["add-learner", "4"]);
    assert!(out.status.success(), "{out:?}");
    assert!(eventually(10, || membership(&mut client, addr4)
        .is_some_and(|(_, _, l)| l == vec![4])));
    add(&mut client);
    // Promote (a promotion needs the learner heard lately: retried).
    assert!(eventually(10, || admin(&procs, &all, &["promote", "4"])
        .status
        .success()));
    let voters4 = vec![1, 2, 3, 4];
    assert!(eventually(10, || (1..=4).all(|id| membership(
        &mut client,
        procs.peers[&id]
    )
    .is_some_and(|(_, v, _)| v == voters4))));
    // Refusals: promoting a voter, adding a replica without an address.
    assert!(!admin(&procs, &all, &["promote", "2"]).status.success());
    assert!(!admin(&procs, &all, &["add-learner", "9"]).status.success());
    add(&mut client);

    // The leader removes itself, and is killed.
    let l = {
        let mut found = None;
        assert!(eventually(10, || {
            found = leader(&mut client, &procs);
            found.is_some()
        }));
        found.unwrap()
    };
    let out = admin(&procs, &all, &["remove", &l.to_string()]);
    assert!(out.status.success(), "{out:?}");
    let rest: Vec<u32> = (1..=4).filter(|&id| id != l).collect();
    assert!(eventually(10, || rest.iter().all(|id| membership(
        &mut client,
        procs.peers[id]
    )
    .is_some_and(|(_, v, _)| v == rest))));
    procs.kill9(l);
    for _ in 0..5 {
        add(&mut client);
    }
    // Hand the leadership to a chosen voter.
    let now = {
        let mut found = None;
        assert!(eventually(10, || {
            found = leader(&mut client, &procs);
            found.is_some()
        }));
        found.unwrap()
    };
    let to = *rest.iter().find(|&&id| id != now).unwrap();
    let out = admin(&procs, &all, &["transfer", &to.to_string()]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        eventually(10, || leader(&mut client, &procs) == Some(to)),
        "the leadership never moved to {to}"
    );
    add(&mut client);
    // The joined replica survives kill -9 and a restart (with --join).
    procs.kill9(4);
    add(&mut client);
    procs.spawn_with(4, false, &["--join"]);
    assert!(eventually(10, || membership(&mut client, addr4)
        .is_some_and(|(_, v, _)| v == rest)));
    add(&mut client);
    let got = kv::decode_previous(&client.read(&kv::get(b"n")).unwrap()).unwrap();
    assert_eq!(kv::decode_i64(&got), Some(n));
    let out = admin(&procs, &all, &["membership"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("voters"),
        "{out:?}"
    );
}
