//! Leader election on leases, over the in-process table and over Redis
//! (a server this test starts): one leader at a time, FIFO succession,
//! epochs that a Fence orders, resign, loss of a term, observation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quorumkit::Error;
use quorumkit::lease::{Election, Fence, LeaseBackend, LeaseTable};

#[cfg(feature = "redis")]
mod redis_server;

const MS: Duration = Duration::from_millis(1);

fn succession<B: LeaseBackend>(backend: Arc<B>) {
    let a = Election::new(backend.clone(), "jobs", "a", 300 * MS).unwrap();
    let b = Arc::new(Election::new(backend.clone(), "jobs", "b", 300 * MS).unwrap());
    let ea = a.campaign(Some(Duration::from_secs(2))).unwrap();
    assert!(a.is_leader());
    assert_eq!(a.campaign(None).unwrap(), ea, "campaigning while leading");
    let leader = a.leader().unwrap().unwrap();
    assert_eq!((leader.candidate.as_str(), leader.epoch), ("a", ea));
    // b waits; a's lease outlives several ttls because it is renewed.
    assert!(matches!(
        b.campaign(Some(50 * MS)),
        Err(Error::Timeout { .. })
    ));
    let waiter = {
        let b = b.clone();
        std::thread::spawn(move || b.campaign(Some(Duration::from_secs(5))))
    };
    std::thread::sleep(700 * MS);
    assert!(a.is_leader(), "renewals keep a's term beyond its ttl");
    assert!(!waiter.is_finished());
    // An observer sees the change when a resigns.
    let seen = a
        .wait_change(Some(&leader), 10 * MS, Some(10 * MS))
        .unwrap();
    assert_eq!(seen.as_ref(), Some(&leader), "no change yet");
    let resigned = Instant::now();
    a.resign().unwrap();
    assert!(!a.is_leader());
    let eb = waiter.join().unwrap().unwrap();
    assert!(resigned.elapsed() < Duration::from_secs(2));
    assert!(eb > ea, "epochs increase: {ea} then {eb}");
    let next = a
        .wait_change(Some(&leader), 10 * MS, Some(Duration::from_secs(2)))
        .unwrap();
    assert_eq!(
        next.map(|l| (l.candidate, l.epoch)),
        Some(("b".to_owned(), eb))
    );
    // The deposed leader's epoch is refused.
    let fence = Fence::new();
    fence.check("jobs", eb).unwrap();
    assert!(matches!(
        fence.check("jobs", ea),
        Err(Error::StaleToken { .. })
    ));
    // b loses its term when its lease is taken from it (here: released by
    // someone else); its next renewal says so.
    backend.release_lease("election/jobs", "b", eb).unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while b.is_leader() && Instant::now() < deadline {
        std::thread::sleep(5 * MS);
    }
    assert!(!b.is_leader());
    assert!(
        matches!(b.lost_reason(), Some(Error::NotHolder { .. })),
        "{:?}",
        b.lost_reason()
    );
    assert_eq!(a.leader().unwrap(), None);
    // A new campaign after a loss starts a new term.
    let eb2 = b.campaign(Some(Duration::from_secs(1))).unwrap();
    assert!(eb2 > eb);
    drop(b); // resigns
    assert_eq!(a.leader().unwrap(), None);
}

/// An observer's iterator yields the leader now, then every term change,
/// and ends after its idle time passes with no change.
fn observation<B: LeaseBackend>(backend: Arc<B>) {
    let watcher = Election::new(backend.clone(), "obs", "watcher", 300 * MS).unwrap();
    let (tx, seen) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        let observer = scope.spawn(|| {
            for change in watcher.observe(5 * MS, Some(Duration::from_secs(1))) {
                let change = change.unwrap().map(|l| (l.candidate, l.epoch));
                tx.send(change.clone()).unwrap();
            }
        });
        let next = || seen.recv_timeout(Duration::from_secs(3)).unwrap();
        assert_eq!(next(), None, "first: nobody leads");
        let a = Election::new(backend.clone(), "obs", "a", 300 * MS).unwrap();
        let b = Election::new(backend.clone(), "obs", "b", 300 * MS).unwrap();
        let ea = a.campaign(Some(Duration::from_secs(1))).unwrap();
        assert_eq!(next(), Some(("a".to_owned(), ea)));
        std::thread::sleep(700 * MS); // renewals are not changes
        a.resign().unwrap();
        assert_eq!(next(), None);
        let eb = b.campaign(Some(Duration::from_secs(1))).unwrap();
        assert_eq!(next(), Some(("b".to_owned(), eb)));
        b.resign().unwrap();
        assert_eq!(next(), None);
        let ea2 = a.campaign(Some(Duration::from_secs(1))).unwrap();
        assert!(ea2 > eb && eb > ea);
        assert_eq!(
            next(),
            Some(("a".to_owned(), ea2)),
            "the same candidate's new term"
        );
        // No change for `idle`: the iterator ends.
        let start = Instant::now();
        observer.join().unwrap();
        assert!(start.elapsed() >= 900 * MS, "{:?}", start.elapsed());
        assert!(seen.try_recv().is_err(), "nothing else was yielded");
    });
}

#[test]
fn succession_in_process() {
    succession(Arc::new(LeaseTable::default()));
}

#[test]
fn observation_in_process() {
    observation(Arc::new(LeaseTable::default()));
}

#[cfg(feature = "redis")]
#[test]
fn observation_over_redis() {
    use quorumkit::lease::redis::{RedisConfig, RedisLeaseTable};
    let Some(srv) = redis_server::start() else {
        return;
    };
    let table = RedisLeaseTable::open(&srv.url(), RedisConfig::default()).unwrap();
    observation(Arc::new(table));
}

#[cfg(feature = "redis")]
#[test]
fn succession_over_redis() {
    use quorumkit::lease::redis::{RedisConfig, RedisLeaseTable};
    let Some(srv) = redis_server::start() else {
        return;
    };
    let table = RedisLeaseTable::open(&srv.url(), RedisConfig::default()).unwrap();
    succession(Arc::new(table));
}

#[test]
fn bad_arguments() {
    let t = Arc::new(LeaseTable::default());
    assert!(Election::new(t.clone(), "", "a", Duration::from_secs(1)).is_err());
    assert!(Election::new(t.clone(), "x", "", Duration::from_secs(1)).is_err());
    assert!(Election::new(t, "x", "a", Duration::ZERO).is_err());
}
