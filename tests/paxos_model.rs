//! Exhaustive model checks (stateright) of the real single-decree Paxos
//! roles in `quorumkit::paxos::single`: the model's state *is* the
//! library's `Acceptor`, `Proposer` and `Learner` values, and every step
//! calls their handlers, so what is checked is the code that ships.
//!
//! The network is a set of messages: delivering one does not remove it, so
//! any message can be delivered any number of times (duplication), in any
//! order (reordering), or never (loss); a `Drop` action also removes a
//! message for good. A request that goes to every acceptor (`Prepare`,
//! `Accept`) or every learner (`Accepted`) is one element of the set that
//! each destination may receive or not, which keeps the set small without
//! losing a behaviour. Replies go to the proposer that owns the ballot.
//!
//! Broken variants (an acceptor that accepts below its promise, a proposer
//! that ignores accepted values) run the same model and must produce an
//! agreement counterexample, which shows the check can fail.

use std::collections::BTreeSet;
use std::time::Instant;

use quorumkit::paxos::Ballot;
use quorumkit::paxos::single::{Acceptor, Fault, Learner, Msg, Phase, Proposer, majority};
use stateright::{Checker, Model, Property, Representative};

const ACCEPTORS: usize = 3;
const PROPOSERS: usize = 2;

/// Proposer `p` has node id `p + 1` (ballots carry it) and proposes the
/// one-byte value `b'a' + p`.
fn proposer_id(p: usize) -> u32 {
    p as u32 + 1
}

fn value_of(p: usize) -> Vec<u8> {
    vec![b'a' + p as u8]
}

/// A message in flight: who sent it (acceptor index for replies, proposer
/// id for requests) and the message.
type Envelope = (u32, Msg);

/// The sender recorded for a `Nack` (the proposer does not use it).
const NOBODY: u32 = u32::MAX;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct State {
    acceptors: [Acceptor; ACCEPTORS],
    proposers: [Proposer; PROPOSERS],
    /// Ballots each proposer has started (bounds the state space).
    tries: [u8; PROPOSERS],
    /// Requests (`Prepare`, `Accept`) and replies (`Promise`, `Nack`).
    net: BTreeSet<Envelope>,
    /// Every `Accepted` ever sent (acceptor, ballot, value): what the
    /// acceptors have accepted over time, which defines "chosen", and what
    /// the learners are fed (see `learned`).
    accepted: BTreeSet<(u32, Ballot, Vec<u8>)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Action {
    /// Proposer starts its first ballot, or a later one: allowed at any
    /// time (a timeout, a nack) while it has ballots left.
    Prepare(usize),
    /// Acceptor `i` receives a `Prepare` or `Accept`.
    ToAcceptor(usize, Envelope),
    /// The proposer owning the ballot receives a `Promise` or `Nack`.
    ToProposer(Envelope),
    /// The message is lost for every destination that has not had it.
    Drop(Envelope),
}

struct SingleModel {
    acceptor_fault: Fault,
    proposer_fault: Fault,
    /// Ballots each proposer may start.
    ballots: u8,
    /// Whether `Drop` actions exist. Loss is possible without them (a
    /// message may never be delivered), so they add states, not behaviours;
    /// one check runs with them to show it.
    drops: bool,
}

impl SingleModel {
    fn correct(ballots: u8, drops: bool) -> Self {
        SingleModel {
            acceptor_fault: Fault::None,
            proposer_fault: Fault::None,
            ballots,
            drops,
        }
    }

    /// Whether delivering `msg` (a reply) can never again change anything
    /// the model observes. Such a message is removed: that is a loss, which
    /// the network allows anyway, and it loses no behaviour, because
    /// proposers' ballots, phases and highest-seen ballots only grow.
    fn reply_is_dead(&self, s: &State, msg: &Msg) -> bool {
        match *msg {
            Msg::Promise { ballot, .. } => {
                let p = &s.proposers[proposer_index(ballot)];
                // A promise counts only while its ballot is in phase 1.
                p.ballot() != ballot || p.phase() != Phase::Preparing
            }
            Msg::Nack { ballot, promised } => {
                let p = proposer_index(ballot);
                let pr = &s.proposers[p];
                // Abandoning matters in phase 1 only: in phase 2 and idle a
                // proposer ignores promises alike and can retry alike.
                let can_abandon =
                    pr.ballot() == ballot && pr.phase() == Phase::Preparing && promised > ballot;
                // The higher ballot matters only for a ballot still to come.
                let can_raise = promised > pr.highest_seen() && s.tries[p] < self.ballots;
                !can_abandon && !can_raise
            }
            _ => false,
        }
    }

    /// Whether a request of `ballot` is dead: every acceptor promised above
    /// it (so it would only be refused, and a correct acceptor's promise
    /// never falls), and its proposer has moved past it for good (so the
    /// refusals would be dead replies).
    fn request_is_dead(&self, s: &State, from: u32, msg: &Msg) -> bool {
        let ballot = match msg {
            Msg::Prepare { ballot } | Msg::Accept { ballot, .. } => *ballot,
            _ => return false,
        };
        let p = (from - 1) as usize;
        let pr = &s.proposers[p];
        (pr.ballot() != ballot || pr.phase() == Phase::Idle)
            && s.tries[p] == self.ballots
            && s.acceptors.iter().all(|a| {
                a.promised() > ballot && {
                    let mut trial = a.clone();
                    matches!(trial.on_message(msg), Some((None, Msg::Nack { .. }))) && trial == *a
                }
            })
    }

    fn collect_garbage(&self, s: &mut State) {
        let dead: Vec<Envelope> = s
            .net
            .iter()
            .filter(|(from, m)| self.reply_is_dead(s, m) || self.request_is_dead(s, *from, m))
            .cloned()
            .collect();
        for env in dead {
            s.net.remove(&env);
        }
        // A ballot that can no longer gather a majority of accepts can never
        // choose a value, so learners would learn nothing from it: forget
        // its accepts (asking each acceptor's own code whether it would still
        // accept in that ballot).
        let q = majority(ACCEPTORS);
        let ballots: BTreeSet<(Ballot, Vec<u8>)> =
            s.accepted.iter().map(|(_, b, v)| (*b, v.clone())).collect();
        for (ballot, value) in ballots {
            let have = |i: usize| s.accepted.contains(&(i as u32, ballot, value.clone()));
            let possible = (0..ACCEPTORS)
                .filter(|&i| {
                    have(i)
                        || matches!(
                            s.acceptors[i].clone().on_accept(ballot, value.clone()),
                            (_, Msg::Accepted { .. })
                        )
                })
                .count();
            if possible < q {
                s.accepted.retain(|(_, b, _)| *b != ballot);
            }
        }
    }
}

fn proposer_index(ballot: Ballot) -> usize {
    (ballot.node - 1) as usize
}

/// The acceptors are interchangeable: a state and any renaming of its
/// acceptors have the same futures, so the checker keeps one of each class
/// (the least under `Ord` of the six renamings).
impl Representative for State {
    fn representative(&self) -> Self {
        const PERMS: [[usize; 3]; 6] = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        // `acceptors` is the first field, so the least renaming has the
        // least acceptor array: rename fully only the renamings that tie
        // on it (usually one).
        let arranged = |perm: &[usize; 3]| {
            let mut inverse = [0; ACCEPTORS];
            for (i, &p) in perm.iter().enumerate() {
                inverse[p] = i;
            }
            inverse.map(|i| &self.acceptors[i])
        };
        let best = PERMS.iter().map(arranged).min().expect("six renamings");
        PERMS
            .iter()
            .filter(|perm| arranged(perm) == best)
            .map(|perm| self.renamed(perm))
            .min()
            .expect("at least one renaming ties")
    }
}

impl State {
    /// Acceptor `i` becomes acceptor `perm[i]`.
    fn renamed(&self, perm: &[usize; ACCEPTORS]) -> State {
        let to = |i: u32| perm[i as usize] as u32;
        let mut acceptors = self.acceptors.clone();
        for (i, a) in self.acceptors.iter().enumerate() {
            acceptors[perm[i]] = a.clone();
        }
        let mut proposers = self.proposers.clone();
        for p in &mut proposers {
            p.rename_acceptors(to);
        }
        let net = self
            .net
            .iter()
            .map(|(from, m)| match m {
                Msg::Promise { .. } => (to(*from), m.clone()),
                _ => (*from, m.clone()),
            })
            .collect();
        let accepted = self
            .accepted
            .iter()
            .map(|(a, b, v)| (to(*a), *b, v.clone()))
            .collect();
        State {
            acceptors,
            proposers,
            tries: self.tries,
            net,
            accepted,
        }
    }
}

impl Model for SingleModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let q = majority(ACCEPTORS);
        let mut acceptors: [Acceptor; ACCEPTORS] = Default::default();
        for a in &mut acceptors {
            a.set_fault(self.acceptor_fault);
        }
        let proposers = std::array::from_fn(|p| {
            let mut pr = Proposer::new(proposer_id(p), q);
            pr.set_fault(self.proposer_fault);
            pr
        });
        vec![State {
            acceptors,
            proposers,
            tries: [0; PROPOSERS],
            net: BTreeSet::new(),
            accepted: BTreeSet::new(),
        }]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        for p in 0..PROPOSERS {
            if s.tries[p] < self.ballots {
                actions.push(Action::Prepare(p));
            }
        }
        for env in &s.net {
            match &env.1 {
                Msg::Prepare { .. } | Msg::Accept { .. } => {
                    for (i, a) in s.acceptors.iter().enumerate() {
                        // Only deliveries that change something: a trial
                        // on a copy of the one acceptor is cheap.
                        let mut trial = a.clone();
                        if let Some((_, reply)) = trial.on_message(&env.1) {
                            let src = match reply {
                                Msg::Nack { .. } => NOBODY,
                                _ => i as u32,
                            };
                            let new_reply = !matches!(reply, Msg::Accepted { .. })
                                && !s.net.contains(&(src, reply.clone()));
                            if trial != *a || new_reply {
                                actions.push(Action::ToAcceptor(i, env.clone()));
                            }
                        }
                    }
                }
                Msg::Promise { .. } | Msg::Nack { .. } => {
                    actions.push(Action::ToProposer(env.clone()));
                }
                Msg::Accepted { .. } => {}
            }
            if self.drops {
                actions.push(Action::Drop(env.clone()));
            }
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut s = last.clone();
        match action {
            Action::Prepare(p) => {
                let msg = if s.tries[p] == 0 {
                    s.proposers[p].start(value_of(p))
                } else {
                    s.proposers[p].prepare()?
                };
                s.tries[p] += 1;
                s.net.insert((proposer_id(p), msg));
            }
            Action::ToAcceptor(i, (_, msg)) => {
                // The record would be persisted before the reply is sent;
                // acceptors do not crash in this model, so their state is
                // their durable state.
                let (_record, reply) = s.acceptors[i].on_message(&msg)?;
                match reply {
                    // Learners are observers fed from `accepted`.
                    Msg::Accepted { ballot, value } => {
                        s.accepted.insert((i as u32, ballot, value));
                    }
                    // Who refused does not matter to the proposer: one
                    // envelope per distinct refusal.
                    nack @ Msg::Nack { .. } => {
                        s.net.insert((NOBODY, nack));
                    }
                    reply => {
                        s.net.insert((i as u32, reply));
                    }
                }
            }
            Action::ToProposer((from, msg)) => {
                let ballot = match &msg {
                    Msg::Promise { ballot, .. } | Msg::Nack { ballot, .. } => *ballot,
                    _ => return None,
                };
                let p = proposer_index(ballot);
                if let Some(accept) = s.proposers[p].on_message(from, &msg) {
                    s.net.insert((proposer_id(p), accept));
                }
            }
            Action::Drop(env) => {
                s.net.remove(&env);
            }
        }
        self.collect_garbage(&mut s);
        // A step that changes nothing is a self-loop: leave it out.
        (s != *last).then_some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("agreement", |_, s: &State| {
                let learned = learned(s);
                learned.windows(2).all(|w| w[0] == w[1])
            }),
            Property::always("validity", |_, s: &State| {
                learned(s).iter().all(|v| {
                    s.proposers
                        .iter()
                        .any(|p| p.value() == Some(v) && p.ballot() != Ballot::ZERO)
                })
            }),
            Property::sometimes("chosen", |_, s: &State| !learned(s).is_empty()),
            // The second proposer's value can be chosen too (in some run):
            // neither proposer is shut out by the model.
            Property::sometimes("b chosen", |_, s: &State| {
                learned(s).first().map(Vec::as_slice) == Some(&b"b"[..])
            }),
            // A retried ballot can choose (the second ballots are used;
            // trivially true when there are none).
            Property::sometimes("chosen in a retried ballot", |m, s: &State| {
                m.ballots < 2
                    || s.accepted.iter().any(|(_, b, _)| {
                        b.round >= 2
                            && s.accepted.iter().filter(|(_, b2, _)| b2 == b).count()
                                >= majority(ACCEPTORS)
                    })
            }),
        ]
    }
}

/// What learners learn from every `Accepted` ever sent, each message
/// delivered twice (duplicates) and in different orders: learner `k` takes
/// the ballots in ascending order starting from the `k`-th, wrapping
/// around. Every ballot in which a majority accepted is first in some
/// learner's order, so if two ballots chose different values, two learners
/// disagree. Learners' own messages are not in the explored state: they
/// change nothing the acceptors or proposers do, and only multiply states.
fn learned(s: &State) -> Vec<Vec<u8>> {
    let ballots: Vec<Ballot> = {
        let mut b: Vec<Ballot> = s.accepted.iter().map(|(_, b, _)| *b).collect();
        b.dedup();
        b
    };
    let mut out = Vec::new();
    for k in 0..ballots.len() {
        let mut learner = Learner::new(majority(ACCEPTORS));
        let order = ballots[k..].iter().chain(&ballots[..k]);
        for &ballot in order {
            for (from, _, value) in s.accepted.iter().filter(|(_, b, _)| *b == ballot) {
                learner.on_accepted(*from, ballot, value.clone());
                learner.on_accepted(*from, ballot, value.clone());
            }
        }
        out.extend(learner.chosen().map(<[u8]>::to_vec));
    }
    out
}

fn check(model: SingleModel, label: &str) -> impl Checker<SingleModel> {
    let t = Instant::now();
    let checker = model.checker().threads(2).symmetry().spawn_bfs().join();
    assert!(checker.is_done());
    println!(
        "{label}: {} unique states ({} generated), max depth {}, {:.2?}",
        checker.unique_state_count(),
        checker.state_count(),
        checker.max_depth(),
        t.elapsed()
    );
    checker
}

#[test]
fn single_decree_is_safe_with_two_ballots_per_proposer() {
    let checker = check(
        SingleModel::correct(2, false),
        "single-decree, 3 acceptors, 2 proposers x 2 ballots, dup/reorder/no-delivery",
    );
    checker.assert_properties();
}

#[test]
fn single_decree_is_safe_with_explicit_drops_one_ballot_each() {
    let checker = check(
        SingleModel::correct(1, true),
        "single-decree, 3 acceptors, 2 proposers x 1 ballot, dup/reorder/drop",
    );
    checker.assert_properties();
}

fn counterexample(model: SingleModel, label: &str) {
    let checker = check(model, label);
    let path = checker.discovery("agreement").unwrap_or_else(|| {
        panic!("{label}: the checker found no agreement violation");
    });
    let actions = path.into_actions();
    println!("{label}: agreement violated after {} steps:", actions.len());
    for a in &actions {
        println!("  {a:?}");
    }
}

#[test]
fn checker_catches_an_acceptor_that_forgets_its_promise() {
    counterexample(
        SingleModel {
            acceptor_fault: Fault::ForgetPromise,
            ..SingleModel::correct(1, false)
        },
        "fault ForgetPromise",
    );
}

#[test]
fn checker_catches_a_proposer_that_ignores_accepted_values() {
    counterexample(
        SingleModel {
            proposer_fault: Fault::IgnoreAccepted,
            ..SingleModel::correct(1, false)
        },
        "fault IgnoreAccepted",
    );
}

/// Larger bounds, for exploring by hand:
/// `QK_MODEL_BALLOTS=3 QK_MODEL_DROPS=1 cargo test --test paxos_model -- --ignored --nocapture`
/// (stops after `QK_MODEL_MAX_STATES` generated states, default 20 M).
#[test]
#[ignore]
fn single_decree_larger_bounds() {
    let env = |k: &str, d: usize| std::env::var(k).map_or(d, |v| v.parse().expect(k));
    let ballots = env("QK_MODEL_BALLOTS", 2) as u8;
    let drops = env("QK_MODEL_DROPS", 0) != 0;
    let t = Instant::now();
    let c = SingleModel::correct(ballots, drops)
        .checker()
        .threads(2)
        .symmetry()
        .target_state_count(env("QK_MODEL_MAX_STATES", 20_000_000))
        .spawn_bfs()
        .join();
    println!(
        "ballots {ballots}, drops {drops}: {} unique, {} generated, complete {}, depth {}, {:.2?}",
        c.unique_state_count(),
        c.state_count(),
        c.is_done(),
        c.max_depth(),
        t.elapsed()
    );
    c.assert_properties();
}
