//! Multi-Paxos from Rust: three replicas driven by hand over bytes (what a
//! program with real sockets does), then the same in the simulator with a
//! crash and the checkers. `cargo run --example paxos`.

use std::collections::VecDeque;

use quorumkit::paxos::{Config, MemoryStorage, Node, NodeId, Output, wire};
use quorumkit::sim::{PaxosCluster, SimConfig};

fn main() -> quorumkit::Result<()> {
    // --- Three replicas, a queue for a network, a clock we move by hand.
    let members: Vec<NodeId> = vec![1, 2, 3];
    let mut nodes: Vec<Node<MemoryStorage>> = Vec::new();
    for &id in &members {
        let mut config = Config::new(id, members.clone());
        config.seed = u64::from(id); // each replica its own election jitter
        nodes.push(Node::new(config, MemoryStorage::new(), 0)?);
    }
    let mut net: VecDeque<(NodeId, NodeId, Vec<u8>)> = VecDeque::new();
    let mut logs: Vec<Vec<Vec<u8>>> = vec![Vec::new(); nodes.len()];
    let mut now = 0u64;
    let index = |id: NodeId| members.iter().position(|&m| m == id).unwrap();

    // Act on everything a node asks for: send bytes, apply decisions.
    let drain = |i: usize,
                 nodes: &mut Vec<Node<MemoryStorage>>,
                 net: &mut VecDeque<(NodeId, NodeId, Vec<u8>)>,
                 logs: &mut Vec<Vec<Vec<u8>>>| {
        while let Some(out) = nodes[i].poll() {
            match out {
                Output::Send(env) => {
                    net.push_back((env.from, env.to, wire::encode_to_vec(&env.message)))
                }
                Output::Decided { batch, .. } => logs[i].extend(batch),
                // (No node here compacts, reads by ReadIndex or changes
                // the membership.)
                Output::Persisted { .. }
                | Output::LeaderChanged { .. }
                | Output::Snapshot { .. }
                | Output::ReadIndex { .. }
                | Output::MembershipChanged(_) => {}
            }
        }
    };

    let mut proposed = false;
    while logs.iter().any(|l| l.len() < 2) {
        // Deliver what is in flight.
        while let Some((from, to, bytes)) = net.pop_front() {
            let i = index(to);
            nodes[i].step(from, wire::decode(&bytes)?, now)?;
            drain(i, &mut nodes, &mut net, &mut logs);
        }
        // Once a leader is known everywhere, propose at a follower (it forwards).
        if !proposed && nodes.iter().all(|n| n.leader().is_some()) {
            let follower = nodes.iter().position(|n| !n.is_leader()).unwrap();
            nodes[follower].propose(b"x = 1".to_vec(), now)?;
            nodes[follower].propose(b"y = 2".to_vec(), now)?;
            drain(follower, &mut nodes, &mut net, &mut logs);
            proposed = true;
            continue;
        }
        // Nothing in flight: move the clock to the next timer.
        now = nodes.iter().map(|n| n.next_deadline()).min().unwrap();
        for i in 0..nodes.len() {
            if nodes[i].next_deadline() <= now {
                nodes[i].tick(now)?;
                drain(i, &mut nodes, &mut net, &mut logs);
            }
        }
    }
    let leader = nodes[0].leader().unwrap();
    println!(
        "leader {leader}; every replica decided {:?}",
        show(&logs[0])
    );
    assert!(logs.iter().all(|l| *l == logs[0]));

    // --- The simulator: 3 replicas, a lossy network, a crash; checkers watch.
    let mut config = SimConfig::new(3, 1);
    config.net.loss_per_million = 10_000; // 1 % of messages lost
    let mut c = PaxosCluster::new(config)?;
    c.propose(None, b"value1".to_vec())?;
    let decided = c
        .run_until(5_000_000_000, |c| c.is_decided_on(b"value1", &c.alive()))
        .expect("no checker fails");
    let old = c.leader().expect("a leader");
    c.crash(old)?;
    // A command sent to a follower that still forwards to the dead leader is
    // lost (clients retry on a timeout): wait for the new leader first.
    let deadline = c.now() + 5_000_000_000;
    c.run_until(deadline, |c| c.leader().is_some_and(|l| l != old))
        .expect("no checker fails");
    let new = c.leader().expect("a new leader");
    c.propose(None, b"value2".to_vec())?;
    let deadline = c.now() + 5_000_000_000;
    c.run_until(deadline, |c| c.is_decided_on(b"value2", &c.alive()))
        .expect("no checker fails");
    let log: Vec<Vec<u8>> = c.decided(new).into_iter().flatten().collect();
    println!(
        "simulated: value1 decided: {decided}; leader {old} crashed, {new} leads; log {:?}; check: {:?}",
        show(&log),
        c.check()
    );
    Ok(())
}

fn show(log: &[Vec<u8>]) -> Vec<String> {
    log.iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}
