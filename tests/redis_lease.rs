//! `RedisLeaseTable` against a real `redis-server` that each test starts on
//! a free loopback port (no persistence) and kills by PID at the end:
//! tokens across data loss, owner checks, expiry vs not-holder, modes,
//! FIFO hand-off and its promptness, expiry wake-ups, dead waiters, keys
//! left behind, lock-delay, bad input, and Redis going away and coming back.

#![cfg(feature = "redis")]

mod redis_server;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quorumkit::Error;
use quorumkit::lease::redis::{RedisConfig, RedisEnqueued, RedisLeaseTable, RedisTicket};
use quorumkit::lease::{Fence, Mode};

const MS: Duration = Duration::from_millis(1);
const X: Mode = Mode::Exclusive;
const S: Mode = Mode::Shared;

macro_rules! server {
    () => {
        match redis_server::start() {
            Some(s) => s,
            None => return,
        }
    };
}

fn table(url: &str, config: RedisConfig) -> RedisLeaseTable {
    RedisLeaseTable::open(url, config).unwrap()
}

fn quick() -> RedisConfig {
    RedisConfig {
        connect_timeout: 500 * MS,
        command_timeout: 500 * MS,
        recheck_interval: 200 * MS,
        waiter_ttl: 1000 * MS,
        expired_memory: 300 * MS,
        ..RedisConfig::default()
    }
}

fn queued(t: &RedisLeaseTable, r: &str, o: &str, mode: Mode) -> RedisTicket {
    match t.enqueue(r, o, 5000 * MS, mode, None).unwrap() {
        RedisEnqueued::Queued(ticket) => ticket,
        RedisEnqueued::Granted(l) => panic!("granted at once: {l:?}"),
    }
}

/// Polls `f` until true, at most `limit`; returns how long it took.
fn within(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(5 * MS);
    }
    None
}

#[test]
fn tokens_increase_across_flushall_and_restart() {
    let mut srv = server!();
    let t = table(&srv.url(), quick());
    let mut last = 0;
    fn take(t: &RedisLeaseTable, r: &str, last: &mut u64) {
        let l = t.try_acquire(r, "a", 5000 * MS, X).unwrap();
        assert!(l.token > *last, "token {} after {last}", l.token);
        *last = l.token;
        t.release(&l).unwrap();
    }
    for _ in 0..20 {
        take(&t, "r", &mut last);
    }
    // The counter is lost with the data: tokens still move on.
    let _: () = redis::cmd("FLUSHALL").query(&mut srv.conn()).unwrap();
    take(&t, "r", &mut last);
    // A held lease and a lost counter: the next holder still gets more.
    let held = t.try_acquire("r", "a", 5000 * MS, S).unwrap();
    assert!(held.token > last);
    last = held.token;
    let _: () = redis::cmd("FLUSHALL").query(&mut srv.conn()).unwrap();
    take(&t, "r", &mut last);
    // A restart without persistence (scripts are gone too: NOSCRIPT is handled).
    srv.restart();
    for _ in 0..3 {
        take(&t, "r", &mut last);
    }
    srv.restart();
    take(&t, "other", &mut last);
}

#[test]
fn owners_are_checked_and_expired_differs_from_not_holder() {
    let srv = server!();
    let t = table(&srv.url(), quick());
    let l = t.try_acquire("r", "a", 300 * MS, X).unwrap();
    let not_holder = |e: Error| matches!(e, Error::NotHolder { .. });
    let expired = |e: Error| matches!(e, Error::LeaseExpired { .. });
    assert!(not_holder(
        t.renew_token("r", "b", l.token, 300 * MS).unwrap_err()
    ));
    assert!(not_holder(t.release_token("r", "b", l.token).unwrap_err()));
    assert!(not_holder(
        t.release_token("r", "a", l.token + 1).unwrap_err()
    ));
    assert!(not_holder(
        t.release_token("other", "a", l.token).unwrap_err()
    ));
    let r = t.renew(&l, 300 * MS).unwrap();
    assert_eq!((r.token, r.mode), (l.token, X));
    assert!(r.expires_at > l.expires_at);
    assert!(r.expires_at <= t.now_ns() + 300_000_000);
    // Ran out: the holder hears LeaseExpired, others still NotHolder.
    std::thread::sleep(350 * MS);
    assert!(expired(t.renew(&l, 300 * MS).unwrap_err()));
    assert!(expired(t.release(&l).unwrap_err()));
    assert!(not_holder(t.release_token("r", "b", l.token).unwrap_err()));
    // Superseded by a new grant: NotHolder from then on.
    let m = t.try_acquire("r", "b", 300 * MS, X).unwrap();
    assert!(m.token > l.token);
    assert!(not_holder(t.renew(&l, 300 * MS).unwrap_err()));
    t.release(&m).unwrap();
    assert!(not_holder(t.release(&m).unwrap_err()), "second release");
    // An expired lease is forgotten after `expired_memory`.
    let n = t.try_acquire("q", "a", 50 * MS, X).unwrap();
    std::thread::sleep(100 * MS);
    assert!(expired(t.renew(&n, MS).unwrap_err()));
    std::thread::sleep(400 * MS);
    assert!(not_holder(t.renew(&n, MS).unwrap_err()));
}

#[test]
fn shared_and_exclusive_modes_and_fifo_between_them() {
    let srv = server!();
    let t = table(&srv.url(), quick());
    let a = t.try_acquire("r", "a", 5000 * MS, S).unwrap();
    let b = t.try_acquire("r", "b", 5000 * MS, S).unwrap();
    assert!(matches!(
        t.try_acquire("r", "c", 5000 * MS, X),
        Err(Error::Busy { .. })
    ));
    let holders = t.holders("r").unwrap();
    assert_eq!(
        holders
            .iter()
            .map(|l| (&*l.owner, l.mode))
            .collect::<Vec<_>>(),
        [("a", S), ("b", S)]
    );
    let mut c = queued(&t, "r", "c", X);
    // A shared request may not pass the queued exclusive one.
    assert!(matches!(
        t.try_acquire("r", "d", 5000 * MS, S),
        Err(Error::Busy { .. })
    ));
    let mut d = queued(&t, "r", "d", S);
    let mut e = queued(&t, "r", "e", S);
    assert_eq!(t.queue_len("r").unwrap(), 3);
    t.release(&a).unwrap();
    assert_eq!(c.wait(Some(50 * MS)).unwrap(), None);
    t.release(&b).unwrap();
    let lc = c.wait(Some(2000 * MS)).unwrap().unwrap();
    assert_eq!((&*lc.owner, lc.mode), ("c", X));
    assert_eq!(d.wait(Some(50 * MS)).unwrap(), None);
    t.release(&lc).unwrap();
    // Both shared waiters are let in together.
    let ld = d.wait(Some(2000 * MS)).unwrap().unwrap();
    let le = e.wait(Some(2000 * MS)).unwrap().unwrap();
    assert!(lc.token < ld.token && ld.token < le.token);
    assert_eq!(t.holders("r").unwrap().len(), 2);
    t.release(&ld).unwrap();
    t.release(&le).unwrap();
    assert!(srv.keys().is_empty(), "{:?}", srv.keys());
}

#[test]
fn three_blocked_waiters_are_served_in_fifo_order() {
    let srv = server!();
    let t = table(&srv.url(), quick());
    let holder = t.try_acquire("r", "h", 5000 * MS, X).unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    for name in ["w1", "w2", "w3"] {
        // Queued here, in this order; each waits in its own thread.
        let mut ticket = queued(&t, "r", name, X);
        let (t, order) = (t.clone(), order.clone());
        threads.push(std::thread::spawn(move || {
            let l = loop {
                if let Some(l) = ticket.wait(Some(100 * MS)).unwrap() {
                    break l;
                }
            };
            order.lock().unwrap().push((l.owner.to_string(), l.token));
            std::thread::sleep(20 * MS);
            t.release(&l).unwrap();
        }));
    }
    std::thread::sleep(100 * MS);
    assert_eq!(t.queue_len("r").unwrap(), 3);
    t.release(&holder).unwrap();
    for th in threads {
        th.join().unwrap();
    }
    let order = order.lock().unwrap().clone();
    let names: Vec<_> = order.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["w1", "w2", "w3"]);
    assert!(order.windows(2).all(|w| w[0].1 < w[1].1));
    assert!(srv.keys().is_empty(), "{:?}", srv.keys());
}

#[test]
fn the_next_waiter_wakes_promptly_after_a_release() {
    let srv = server!();
    // A long re-check interval: only the pushed wake-up can be this fast.
    let config = RedisConfig {
        recheck_interval: Duration::from_secs(3),
        waiter_ttl: Duration::from_secs(10),
        ..quick()
    };
    let t = table(&srv.url(), config);
    let mut worst = Duration::ZERO;
    for round in 0..10 {
        let r = format!("r{round}");
        let holder = t.try_acquire(&r, "h", 10_000 * MS, X).unwrap();
        let t2 = t.clone();
        let r2 = r.clone();
        let waiter = std::thread::spawn(move || {
            let l = t2
                .acquire(&r2, "w", 10_000 * MS, X, Some(Duration::from_secs(8)))
                .unwrap();
            let at = Instant::now();
            t2.release(&l).unwrap();
            at
        });
        // Let the waiter reach its BLPOP.
        within(Duration::from_secs(2), || t.queue_len(&r).unwrap() == 1).unwrap();
        std::thread::sleep(50 * MS);
        let released = Instant::now();
        t.release(&holder).unwrap();
        let woke = waiter.join().unwrap();
        worst = worst.max(woke - released);
    }
    eprintln!("worst release-to-grant hand-off over 10 rounds: {worst:?}");
    assert!(worst < 250 * MS, "hand-off took {worst:?}");
}

#[test]
fn a_holders_expiry_wakes_the_next_waiter_not_before() {
    let srv = server!();
    let config = RedisConfig {
        recheck_interval: Duration::from_secs(3),
        waiter_ttl: Duration::from_secs(10),
        ..quick()
    };
    let t = table(&srv.url(), config);
    let holder = t.try_acquire("r", "crashed", 400 * MS, X).unwrap();
    let start = Instant::now();
    let l = t
        .acquire("r", "w", 1000 * MS, X, Some(Duration::from_secs(5)))
        .unwrap();
    let waited = start.elapsed();
    eprintln!("granted {waited:?} after a 400 ms lease began");
    assert!(t.now_ns() >= holder.expires_at, "granted before the expiry");
    assert!(waited >= 350 * MS && waited < 1200 * MS, "{waited:?}");
    assert!(l.token > holder.token);
    t.release(&l).unwrap();
}

#[test]
fn an_abandoned_waiter_leaves_the_queue_and_a_live_one_stays() {
    let srv = server!();
    let config = RedisConfig {
        recheck_interval: 100 * MS,
        command_timeout: 300 * MS,
        waiter_ttl: 600 * MS,
        ..quick()
    };
    let t = table(&srv.url(), config);
    let holder = t.try_acquire("r", "h", 10_000 * MS, X).unwrap();
    // A waiter whose process died: no cancel, no more re-checks.
    let dead = queued(&t, "r", "dead", X);
    std::mem::forget(dead);
    let mut live = queued(&t, "r", "live", X);
    assert_eq!(t.queue_len("r").unwrap(), 2);
    // The live waiter keeps re-checking for far longer than waiter_ttl.
    let start = Instant::now();
    let mut gone_after = None;
    while start.elapsed() < Duration::from_secs(3) {
        assert_eq!(live.wait(Some(100 * MS)).unwrap(), None);
        if gone_after.is_none() && t.queue_len("r").unwrap() == 1 {
            gone_after = Some(start.elapsed());
        }
    }
    let gone_after = gone_after.expect("the dead waiter was never evicted");
    eprintln!("dead waiter evicted after {gone_after:?} (waiter_ttl 600 ms)");
    assert!(gone_after < 600 * MS + 400 * MS, "{gone_after:?}");
    assert_eq!(t.queue_len("r").unwrap(), 1, "the live waiter was evicted");
    // And it is the one served next, promptly.
    t.release(&holder).unwrap();
    let l = live.wait(Some(500 * MS)).unwrap().expect("granted");
    assert_eq!(&*l.owner, "live");
    t.release(&l).unwrap();
    assert!(srv.keys().is_empty(), "{:?}", srv.keys());
}

#[test]
fn no_keys_are_left_after_release_or_expiry() {
    let srv = server!();
    let t = table(&srv.url(), quick());
    let a = t.try_acquire("r", "a", 5000 * MS, X).unwrap();
    let mut w = queued(&t, "r", "w", S);
    let s1 = t.try_acquire("s", "a", 5000 * MS, S).unwrap();
    // While anything is held or queued every key has a TTL.
    let keys = srv.keys();
    assert!(keys.len() >= 6, "{keys:?}");
    assert!(keys.iter().all(|(_, ttl)| *ttl > 0), "{keys:?}");
    t.release(&a).unwrap();
    let lw = w.wait(Some(1000 * MS)).unwrap().unwrap();
    t.release(&lw).unwrap();
    t.release(&s1).unwrap();
    assert!(srv.keys().is_empty(), "after release: {:?}", srv.keys());
    // A timed-out waiter and a cancelled one leave nothing either.
    let a = t.try_acquire("r", "a", 5000 * MS, X).unwrap();
    assert!(matches!(
        t.acquire("r", "b", 5000 * MS, X, Some(100 * MS)),
        Err(Error::Timeout { .. })
    ));
    drop(queued(&t, "r", "c", X));
    assert_eq!(t.queue_len("r").unwrap(), 0);
    t.release(&a).unwrap();
    assert!(srv.keys().is_empty(), "after timeouts: {:?}", srv.keys());
    // Expiry with nobody around: Redis's own TTLs clear the keys
    // (lease 200 ms + expired_memory 300 ms).
    let _ = t.try_acquire("r", "a", 200 * MS, X).unwrap();
    let _ = t.try_acquire("s", "a", 200 * MS, S).unwrap();
    let _ = t.try_acquire("s", "b", 250 * MS, S).unwrap();
    let cleared = within(Duration::from_secs(3), || srv.keys().is_empty());
    eprintln!("keys of expired leases gone after {cleared:?}");
    assert!(cleared.is_some(), "after expiry: {:?}", srv.keys());
}

#[test]
fn lock_delay_follows_an_unreleased_expiry_only() {
    let srv = server!();
    let config = RedisConfig {
        lock_delay: 400 * MS,
        ..quick()
    };
    let t = table(&srv.url(), config);
    // Released: no delay.
    let l = t.try_acquire("r", "a", 100 * MS, X).unwrap();
    t.release(&l).unwrap();
    let l = t.try_acquire("r", "a", 100 * MS, X).unwrap();
    // Expired un-released: nothing is granted for 400 ms after the expiry.
    std::thread::sleep(200 * MS);
    assert!(matches!(
        t.try_acquire("r", "b", 100 * MS, X),
        Err(Error::Busy { .. })
    ));
    let start = Instant::now();
    let m = t.acquire("r", "b", 100 * MS, X, Some(2000 * MS)).unwrap();
    let waited = start.elapsed();
    eprintln!("granted {waited:?} into the lock-delay's remaining ~300 ms");
    assert!(waited >= 250 * MS, "{waited:?}");
    assert!(m.token > l.token);
    t.release(&m).unwrap();
}

#[test]
fn timeouts_and_cancel() {
    let srv = server!();
    let t = table(&srv.url(), quick());
    let a = t.try_acquire("r", "a", 5000 * MS, X).unwrap();
    let start = Instant::now();
    assert!(matches!(
        t.acquire("r", "b", 5000 * MS, X, Some(300 * MS)),
        Err(Error::Timeout { .. })
    ));
    let took = start.elapsed();
    assert!(took >= 300 * MS && took < 600 * MS, "{took:?}");
    // Zero: at once.
    assert!(matches!(
        t.acquire("r", "b", 5000 * MS, X, Some(Duration::ZERO)),
        Err(Error::Timeout { .. })
    ));
    let mut c = queued(&t, "r", "c", X);
    assert_eq!(c.cancel().unwrap(), quorumkit::lease::Cancelled::Withdrawn);
    assert!(c.wait(Some(MS)).is_err(), "a finished ticket");
    // A grant that raced a cancel goes to the canceller.
    let mut d = queued(&t, "r", "d", X);
    t.release(&a).unwrap();
    match d.cancel().unwrap() {
        quorumkit::lease::Cancelled::Granted(l) => t.release(&l).unwrap(),
        other => panic!("{other:?}"),
    }
    assert!(srv.keys().is_empty(), "{:?}", srv.keys());
}

#[test]
fn fence_refuses_a_deposed_holder() {
    let srv = server!();
    let t = table(&srv.url(), quick());
    let fence = Fence::new();
    let old = t.try_acquire("db", "a", 100 * MS, X).unwrap();
    fence.check("db", old.token).unwrap();
    std::thread::sleep(150 * MS);
    let new = t.try_acquire("db", "b", 1000 * MS, X).unwrap();
    fence.check("db", new.token).unwrap();
    assert!(matches!(
        fence.check("db", old.token),
        Err(Error::StaleToken { .. })
    ));
    t.release(&new).unwrap();
}

#[test]
fn bad_input_gets_clear_errors_and_odd_names_work() {
    let srv = server!();
    let t = table(&srv.url(), quick());
    let invalid = |e: Error| matches!(e, Error::InvalidArgument(_));
    assert!(invalid(
        RedisLeaseTable::open("http://x", quick()).unwrap_err()
    ));
    assert!(invalid(
        RedisLeaseTable::open("not a url", quick()).unwrap_err()
    ));
    let bad_ns = RedisConfig {
        namespace: "a:b".into(),
        ..quick()
    };
    assert!(invalid(
        RedisLeaseTable::open(&srv.url(), bad_ns).unwrap_err()
    ));
    assert!(invalid(t.try_acquire("", "a", MS, X).unwrap_err()));
    assert!(invalid(t.try_acquire("r", "", MS, X).unwrap_err()));
    assert!(invalid(
        t.try_acquire("r", "a", Duration::ZERO, X).unwrap_err()
    ));
    let huge = "x".repeat(quorumkit::lease::redis::MAX_NAME_LEN + 1);
    assert!(invalid(t.try_acquire(&huge, "a", MS, X).unwrap_err()));
    assert!(invalid(
        t.try_acquire("r", "a", Duration::from_secs(u64::MAX), X)
            .unwrap_err()
    ));
    // Braces, newlines and spaces are just bytes of the name.
    for name in ["a{b}c", "}{", "line\nbreak", "{qk:r}:h", "sp ace"] {
        let l = t.try_acquire(name, "o w\nner", 5000 * MS, X).unwrap();
        assert!(matches!(
            t.try_acquire(name, "x", MS, X),
            Err(Error::Busy { .. })
        ));
        assert_eq!(&*t.holders(name).unwrap()[0].owner, "o w\nner");
        t.release(&l).unwrap();
    }
    assert!(srv.keys().is_empty(), "{:?}", srv.keys());
    // A key of the wrong type in the namespace: a clear error, and the
    // foreign key is left as it was.
    let mut con = srv.conn();
    let _: () = redis::cmd("SET")
        .arg("{qk:w}:o")
        .arg("mine")
        .query(&mut con)
        .unwrap();
    let e = t.try_acquire("w", "a", 5000 * MS, X).unwrap_err();
    assert!(matches!(e, Error::Corrupt(_)), "{e:?}");
    assert!(e.to_string().contains("WRONGTYPE"), "{e}");
    let v: String = redis::cmd("GET").arg("{qk:w}:o").query(&mut con).unwrap();
    assert_eq!(v, "mine");
    assert_eq!(srv.keys().len(), 1, "{:?}", srv.keys());
}

#[test]
fn wrong_password_and_auth() {
    let Some(srv) = redis_server::start_with(&["--requirepass", "s3cret"]) else {
        return;
    };
    let port = srv.port;
    let bad = table(&format!("redis://:wrong@127.0.0.1:{port}"), quick());
    let e = bad.ping().unwrap_err();
    assert!(matches!(e, Error::BackendUnavailable(_)), "{e:?}");
    assert!(!e.to_string().contains("wrong@"), "{e}");
    let none = table(&srv.url(), quick());
    assert!(matches!(
        none.try_acquire("r", "a", MS, X),
        Err(Error::BackendUnavailable(_))
    ));
    let good = table(&format!("redis://:s3cret@127.0.0.1:{port}/2"), quick());
    let l = good.try_acquire("r", "a", 5000 * MS, X).unwrap();
    good.release(&l).unwrap();
}

#[test]
fn redis_down_gives_backend_unavailable_within_the_timeout() {
    let mut srv = server!();
    let config = RedisConfig {
        connect_timeout: 300 * MS,
        command_timeout: 300 * MS,
        recheck_interval: 100 * MS,
        waiter_ttl: 1000 * MS,
        ..quick()
    };
    let t = table(&srv.url(), config.clone());
    let l = t.try_acquire("r", "a", 5000 * MS, X).unwrap();
    // A stopped server: connections open but nothing answers.
    srv.pause(true);
    let start = Instant::now();
    let e = t.renew(&l, 5000 * MS).unwrap_err();
    let took = start.elapsed();
    srv.pause(false);
    assert!(matches!(e, Error::BackendUnavailable(_)), "{e:?}");
    eprintln!("stopped server: {e} after {took:?}");
    // The reused connection timed out; one fresh connection was tried.
    assert!(took < 1500 * MS, "{took:?}");
    t.release(&l).unwrap();
    // A killed server: connection refused, at once.
    srv.kill();
    for _ in 0..3 {
        let start = Instant::now();
        let e = t.try_acquire("r", "a", 5000 * MS, X).unwrap_err();
        assert!(matches!(e, Error::BackendUnavailable(_)), "{e:?}");
        assert!(start.elapsed() < 700 * MS, "{:?}", start.elapsed());
    }
    // A blocked waiter hears it too, within the bound, not a hang.
    srv.restart();
    let _held = t.try_acquire("q", "a", 5000 * MS, X).unwrap();
    let mut w = queued(&t, "q", "w", X);
    srv.kill();
    let start = Instant::now();
    let e = w.wait(Some(Duration::from_secs(5))).unwrap_err();
    assert!(matches!(e, Error::BackendUnavailable(_)), "{e:?}");
    assert!(start.elapsed() < 1500 * MS, "{:?}", start.elapsed());
    // Nothing listens on a port that was never used.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nobody = table(&format!("redis://127.0.0.1:{port}"), config);
    assert!(matches!(nobody.ping(), Err(Error::BackendUnavailable(_))));
}

#[test]
fn the_table_reconnects_after_a_restart() {
    let mut srv = server!();
    let t = table(&srv.url(), quick());
    let l = t.try_acquire("r", "a", 5000 * MS, X).unwrap();
    t.release(&l).unwrap();
    srv.kill();
    assert!(matches!(t.ping(), Err(Error::BackendUnavailable(_))));
    srv.restart();
    // Pooled connections died with the old server; the next call works.
    let m = t.try_acquire("r", "a", 5000 * MS, X).unwrap();
    assert!(m.token > l.token);
    t.release(&m).unwrap();
    // Also when every pooled connection is stale at once.
    let ts: Vec<_> = (0..4).map(|_| t.clone()).collect();
    let hs: Vec<_> = ts
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            std::thread::spawn(move || t.try_acquire(&format!("p{i}"), "a", 5000 * MS, X).unwrap())
        })
        .collect();
    let leases: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    srv.restart();
    for l in &leases {
        // The data went with the server: the lease is unknown now.
        assert!(matches!(t.release(l), Err(Error::NotHolder { .. })));
    }
}

#[test]
fn contending_threads_never_overlap_and_tokens_follow_grants() {
    use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::SeqCst};
    let srv = server!();
    let t = table(&srv.url(), quick());
    // Exclusive holders inside (-1 each) or shared ones (+1 each).
    let inside = Arc::new(AtomicI64::new(0));
    let last_exclusive = Arc::new(AtomicU64::new(0));
    let grants = Arc::new(AtomicU64::new(0));
    let seed = 0x5eed_u64;
    eprintln!("seed {seed:#x}");
    let threads: Vec<_> = (0..6u64)
        .map(|i| {
            let (t, inside, last_x, grants) = (
                t.clone(),
                inside.clone(),
                last_exclusive.clone(),
                grants.clone(),
            );
            std::thread::spawn(move || {
                let mut rng = seed ^ (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                for _ in 0..40 {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let mode = if rng.is_multiple_of(3) { X } else { S };
                    let l = t
                        .acquire(
                            "hot",
                            &format!("t{i}"),
                            5000 * MS,
                            mode,
                            Some(Duration::from_secs(20)),
                        )
                        .unwrap();
                    match mode {
                        Mode::Exclusive => {
                            assert_eq!(inside.swap(-1, SeqCst), 0, "exclusive overlapped");
                            // An exclusive grant follows every earlier grant.
                            assert!(l.token > last_x.swap(l.token, SeqCst));
                            std::thread::sleep(MS);
                            assert_eq!(inside.swap(0, SeqCst), -1);
                        }
                        Mode::Shared => {
                            assert!(inside.fetch_add(1, SeqCst) >= 0, "shared beside exclusive");
                            assert!(l.token > last_x.load(SeqCst));
                            std::thread::sleep(MS);
                            inside.fetch_sub(1, SeqCst);
                        }
                    }
                    grants.fetch_add(1, SeqCst);
                    t.release(&l).unwrap();
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    assert_eq!(grants.load(SeqCst), 240);
    assert!(srv.keys().is_empty(), "{:?}", srv.keys());
}

/// Not a benchmark (bench/ has those): a sanity check of the cost of a
/// pair against the server's round trip. `cargo test --release --features
/// redis --test redis_lease -- --ignored --nocapture`.
#[test]
#[ignore]
fn uncontended_pairs_per_second() {
    let srv = server!();
    let t = table(&srv.url(), quick());
    let mut con = srv.conn();
    let n = 5000;
    let start = Instant::now();
    for _ in 0..n {
        let _: String = redis::cmd("PING").query(&mut con).unwrap();
    }
    let ping = n as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for _ in 0..n {
        let l = t.try_acquire("r", "a", 5000 * MS, X).unwrap();
        t.release(&l).unwrap();
    }
    let pairs = n as f64 / start.elapsed().as_secs_f64();
    eprintln!(
        "PING/s {ping:.0}; acquire+release pairs/s {pairs:.0} = {:.2} x (PING/s / 2)",
        pairs / (ping / 2.0)
    );
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut con)
        .unwrap();
    for line in stats
        .lines()
        .filter(|l| l.contains("evalsha") || l.contains("ping"))
    {
        eprintln!("{line}");
    }
}

#[test]
fn a_waiter_whose_connection_is_killed_still_gets_its_turn() {
    let srv = server!();
    let t = table(&srv.url(), quick());
    let holder = t.try_acquire("r", "h", 5000 * MS, X).unwrap();
    let t2 = t.clone();
    let waiter = std::thread::spawn(move || {
        t2.acquire("r", "w", 5000 * MS, X, Some(Duration::from_secs(5)))
            .unwrap()
    });
    within(Duration::from_secs(2), || t.queue_len("r").unwrap() == 1).unwrap();
    std::thread::sleep(50 * MS);
    // Every client but this one: the waiter's blocked read breaks.
    let _: i64 = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"])
        .query(&mut srv.conn())
        .unwrap();
    std::thread::sleep(50 * MS);
    t.release(&holder).unwrap();
    let l = waiter.join().unwrap();
    assert_eq!(&*l.owner, "w");
    t.release(&l).unwrap();
    assert!(srv.keys().is_empty(), "{:?}", srv.keys());
}

/// How many times the server ran a script (EVALSHA and EVAL).
fn scripts_run(srv: &redis_server::RedisServer) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut srv.conn())
        .unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

#[test]
fn a_cancel_wakes_a_blocked_waiter_at_once_and_slices_do_not_poll() {
    let srv = server!();
    let config = RedisConfig {
        recheck_interval: 2000 * MS,
        waiter_ttl: 5000 * MS,
        ..quick()
    };
    let t = table(&srv.url(), config);
    let a = t.try_acquire("r", "a", 30_000 * MS, X).unwrap();
    // Waiting in 20 ms slices for 600 ms: blocking reads, no re-check
    // scripts (the re-check interval is 2 s).
    let mut b = queued(&t, "r", "b", X);
    let before = scripts_run(&srv);
    let start = Instant::now();
    while start.elapsed() < 600 * MS {
        assert!(b.wait(Some(20 * MS)).unwrap().is_none());
    }
    let ran = scripts_run(&srv) - before;
    assert!(ran <= 1, "{ran} re-check scripts in 600 ms of 20 ms slices");
    // A cancel from another thread ends a wait with no time limit promptly.
    let token = quorumkit::lease::CancelToken::new();
    let canceller = {
        let token = token.clone();
        std::thread::spawn(move || {
            std::thread::sleep(100 * MS);
            token.cancel();
            Instant::now()
        })
    };
    assert!(b.wait_cancellable(None, &token).unwrap().is_none());
    let woke = Instant::now();
    let lag = woke - canceller.join().unwrap();
    assert!(lag < 150 * MS, "the cancel was seen after {lag:?}");
    assert_eq!(b.cancel().unwrap(), quorumkit::lease::Cancelled::Withdrawn);
    // Cancelled before the wait: no blocking at all.
    let mut c = queued(&t, "r", "c", X);
    let start = Instant::now();
    assert!(c.wait_cancellable(None, &token).unwrap().is_none());
    assert!(start.elapsed() < 150 * MS, "{:?}", start.elapsed());
    drop(c);
    // A stale nudge in the list does not stop a later grant.
    let mut d = queued(&t, "r", "d", X);
    let other = quorumkit::lease::CancelToken::new();
    t.release(&a).unwrap();
    let l = d
        .wait_cancellable(Some(2000 * MS), &other)
        .unwrap()
        .unwrap();
    t.release(&l).unwrap();
    assert!(srv.keys().is_empty(), "{:?}", srv.keys());
}

/// Threads of this process whose name starts with `prefix` (Linux).
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|n| n.trim_end().starts_with(prefix))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn keep_alive_renews_many_leases_on_one_thread_and_reports_a_loss() {
    let srv = server!();
    let t = table(&srv.url(), quick());
    let ttl = 300 * MS;
    let kept: Vec<_> = (0..5)
        .map(|i| {
            let l = t.acquire(&format!("r{i}"), "me", ttl, X, None).unwrap();
            t.keep_alive(l, ttl).unwrap()
        })
        .collect();
    std::thread::sleep(1000 * MS);
    assert_eq!(threads_named("quorumkit-redis"), 1, "one renewer per table");
    for k in &kept {
        assert!(!k.is_lost(), "{k:?}");
        assert!(
            k.renewals() >= 2,
            "{} renewals in 1 s at ttl/3 = 100 ms",
            k.renewals()
        );
        assert_eq!(t.holders(&k.lease().resource).unwrap().len(), 1);
    }
    // Each loss is told to its callbacks once, with the reason.
    let (told_tx, told) = std::sync::mpsc::channel::<(usize, Error)>();
    for (i, k) in kept.iter().enumerate() {
        let tx = told_tx.clone();
        k.on_lost(move |e| tx.send((i, e.clone())).unwrap());
    }
    // Taken away behind the renewer's back: lost at its next renewal.
    let victim = &kept[0];
    let l = victim.lease();
    t.release(&l).unwrap();
    let (i, why) = told.recv_timeout(1000 * MS).expect("on_lost callback");
    assert_eq!(i, 0);
    assert!(matches!(why, Error::NotHolder { .. }), "{why:?}");
    assert!(victim.wait_lost(Some(1000 * MS)));
    assert!(matches!(
        victim.lost_reason(),
        Some(Error::NotHolder { .. })
    ));
    // Registered after the loss: told at once, on this thread.
    let here = std::thread::current().id();
    let (tx, late) = std::sync::mpsc::channel();
    victim.on_lost(move |e| tx.send((std::thread::current().id(), e.clone())).unwrap());
    let (on, _) = late.try_recv().expect("told at once");
    assert_eq!(on, here);
    // Redis stops: every kept lease is lost by its local expiry.
    let mut kept = kept;
    let first = kept.remove(0);
    assert!(matches!(first.release(), Err(Error::NotHolder { .. })));
    srv.pause(true);
    let start = Instant::now();
    for k in &kept {
        assert!(k.wait_lost(Some(2000 * MS)), "{k:?}");
    }
    assert!(start.elapsed() < ttl + 200 * MS, "{:?}", start.elapsed());
    // The renewer is told by its own calls, each bounded by the command
    // timeout (500 ms), one after another while the server is stopped.
    let mut told_ids: Vec<usize> = (0..kept.len())
        .map(|_| told.recv_timeout(2000 * MS).expect("told of the loss").0)
        .collect();
    told_ids.sort();
    assert_eq!(told_ids, vec![1, 2, 3, 4], "each told once");
    assert!(told.try_recv().is_err(), "no second call");
    srv.pause(false);
    for k in kept {
        assert!(k.release().is_err());
    }
    // The thread exits when nothing is left to renew.
    assert!(within(1000 * MS, || threads_named("quorumkit-redis") == 0).is_some());
    // A renewal sent while the server was stopped runs when it resumes,
    // after the client gave up on it: those keys outlive the client's view
    // by at most one TTL and then expire on their own.
    assert!(
        within(ttl + 1000 * MS, || srv.keys().is_empty()).is_some(),
        "{:?}",
        srv.keys()
    );
    // A released kept-alive lease leaves no keys (expired memory aside).
    let l = t.acquire("z", "me", ttl, X, None).unwrap();
    let k = t.keep_alive(l, ttl).unwrap();
    std::thread::sleep(150 * MS);
    k.release().unwrap();
    std::thread::sleep(400 * MS);
    let z_keys: Vec<_> = srv
        .keys()
        .into_iter()
        .filter(|(k, _)| k.contains("{qk:z}"))
        .collect();
    assert!(z_keys.is_empty(), "{z_keys:?}");
}
