//! Deterministic behaviour of the lease table on a manual clock: FIFO,
//! lock-delay, expiry while queued, renew/release errors, timeouts,
//! try-acquire, tickets and auto-renewal.

use std::time::Duration;

use quorumkit::Error;
use quorumkit::lease::{Cancelled, Enqueued, LeaseConfig, LeaseTable, ManualClock, Mode, Ticket};

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

fn table(delay_ns: u64) -> (ManualClock, LeaseTable) {
    let clock = ManualClock::new(1_000);
    let t = LeaseTable::new(
        &clock,
        LeaseConfig {
            lock_delay_ns: delay_ns,
        },
    );
    (clock, t)
}

fn queued(t: &LeaseTable, r: &str, o: &str, mode: Mode, timeout: Option<Duration>) -> Ticket {
    match t.enqueue(r, o, S, mode, timeout).unwrap() {
        Enqueued::Queued(ticket) => ticket,
        Enqueued::Granted(l) => panic!("granted at once: {l:?}"),
    }
}

fn done(ticket: &mut Ticket) -> Option<quorumkit::Result<quorumkit::lease::Lease>> {
    match ticket.wait(Some(Duration::ZERO)) {
        Ok(None) => None,
        Ok(Some(l)) => Some(Ok(l)),
        Err(e) => Some(Err(e)),
    }
}

#[test]
fn exclusive_then_fifo_handoff() {
    let (_c, t) = table(0);
    let a = t
        .acquire("r", "a", S, Mode::Exclusive, Some(Duration::ZERO))
        .unwrap();
    assert_eq!(a.token, 1);
    let mut b = queued(&t, "r", "b", Mode::Exclusive, None);
    let mut c = queued(&t, "r", "c", Mode::Shared, None);
    let mut d = queued(&t, "r", "d", Mode::Shared, None);
    assert!(done(&mut b).is_none());
    t.release(&a).unwrap();
    let lb = done(&mut b).unwrap().unwrap();
    assert_eq!((&*lb.owner, lb.token), ("b", 2));
    assert!(
        done(&mut c).is_none(),
        "shared waits behind exclusive holder"
    );
    t.release(&lb).unwrap();
    let lc = done(&mut c).unwrap().unwrap();
    let ld = done(&mut d).unwrap().unwrap();
    assert_eq!((lc.token, ld.token), (3, 4));
    assert_eq!(t.holders("r").len(), 2);
}

#[test]
fn shared_request_behind_queued_exclusive_waits() {
    let (_c, t) = table(0);
    let s1 = t.try_acquire("r", "s1", S, Mode::Shared).unwrap();
    let mut x = queued(&t, "r", "x", Mode::Exclusive, None);
    // No writer starvation: a new shared request queues behind x.
    assert!(matches!(
        t.try_acquire("r", "s2", S, Mode::Shared),
        Err(Error::Busy { .. })
    ));
    let mut s2 = queued(&t, "r", "s2", Mode::Shared, None);
    t.release(&s1).unwrap();
    let lx = done(&mut x).unwrap().unwrap();
    assert!(done(&mut s2).is_none());
    t.release(&lx).unwrap();
    assert!(done(&mut s2).unwrap().is_ok());
}

#[test]
fn expiry_while_queued_grants_a_fresh_lease() {
    let (clock, t) = table(0);
    let a = t.try_acquire("r", "a", S, Mode::Exclusive).unwrap();
    let mut b = queued(&t, "r", "b", Mode::Exclusive, None);
    clock.advance(S - MS);
    assert!(done(&mut b).is_none());
    clock.advance(5 * S); // far past a's expiry
    let lb = done(&mut b).unwrap().unwrap();
    // Granted now, for its full ttl: never an already-expired lease.
    assert_eq!(lb.expires_at, clock.now_ns() + 1_000_000_000);
    assert!(lb.token > a.token);
    assert!(
        matches!(t.release(&a), Err(Error::NotHolder { .. })),
        "superseded"
    );
}

#[test]
fn lock_delay_after_unreleased_expiry() {
    let (clock, t) = table(500_000_000);
    let a = t.try_acquire("r", "a", S, Mode::Exclusive).unwrap();
    let mut b = queued(&t, "r", "b", Mode::Exclusive, None);
    clock.advance(S);
    assert!(matches!(t.renew(&a, S), Err(Error::LeaseExpired { .. })));
    assert!(done(&mut b).is_none(), "lock-delay holds the resource");
    assert!(matches!(
        t.try_acquire("r", "c", S, Mode::Exclusive),
        Err(Error::Busy { .. })
    ));
    clock.advance(500 * MS - Duration::from_nanos(1));
    assert!(done(&mut b).is_none());
    clock.advance(Duration::from_nanos(1));
    let lb = done(&mut b).unwrap().unwrap();
    // A released lease leaves no delay.
    t.release(&lb).unwrap();
    t.try_acquire("r", "c", S, Mode::Exclusive).unwrap();
}

#[test]
fn renew_and_release_check_the_holder() {
    let (clock, t) = table(0);
    let a = t.try_acquire("r", "a", S, Mode::Exclusive).unwrap();
    let e = t.renew_token("r", "mallory", a.token, S).unwrap_err();
    assert!(matches!(e, Error::NotHolder { .. }), "{e}");
    let e = t.release_token("r", "mallory", a.token).unwrap_err();
    assert!(matches!(e, Error::NotHolder { .. }), "{e}");
    let e = t.release_token("r", "a", 999).unwrap_err();
    assert!(matches!(e, Error::NotHolder { .. }), "{e}");
    let e = t.release_token("nope", "a", a.token).unwrap_err();
    assert!(matches!(e, Error::NotHolder { .. }), "{e}");
    clock.advance(S / 2);
    let a2 = t.renew(&a, S).unwrap();
    assert_eq!(a2.token, a.token);
    assert_eq!(a2.expires_at, clock.now_ns() + 1_000_000_000);
    clock.advance(S - MS);
    t.release(&a2).unwrap();
    assert!(
        matches!(t.release(&a2), Err(Error::NotHolder { .. })),
        "not idempotent"
    );
    assert!(matches!(
        t.renew(&a, Duration::ZERO),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn timeouts_and_try_acquire_never_disturb_the_holder() {
    let (clock, t) = table(0);
    let a = t.try_acquire("r", "a", S, Mode::Exclusive).unwrap();
    assert!(matches!(
        t.acquire("r", "b", S, Mode::Exclusive, Some(Duration::ZERO)),
        Err(Error::Timeout { .. })
    ));
    let mut b = queued(&t, "r", "b", Mode::Exclusive, Some(100 * MS));
    clock.advance(100 * MS);
    assert!(matches!(done(&mut b), Some(Err(Error::Timeout { .. }))));
    assert_eq!(t.holders("r"), vec![a.clone()]);
    assert_eq!(t.queue_len("r"), 0);
    t.renew(&a, S).unwrap();
    t.release(&a).unwrap();
}

#[test]
fn cancel_and_drop_withdraw_requests() {
    let (_c, t) = table(0);
    let a = t.try_acquire("r", "a", S, Mode::Exclusive).unwrap();
    let mut b = queued(&t, "r", "b", Mode::Exclusive, None);
    let c = queued(&t, "r", "c", Mode::Exclusive, None);
    assert_eq!(b.cancel(), Cancelled::Withdrawn);
    drop(c);
    assert_eq!(t.queue_len("r"), 0);
    let mut d = queued(&t, "r", "d", Mode::Exclusive, None);
    t.release(&a).unwrap();
    match d.cancel() {
        Cancelled::Granted(l) => t.release(&l).unwrap(),
        other => panic!("{other:?}"),
    }
    // A dropped ticket whose grant was never read gives the lease back.
    let a = t.try_acquire("r", "a", S, Mode::Exclusive).unwrap();
    let e = queued(&t, "r", "e", Mode::Exclusive, None);
    t.release(&a).unwrap();
    drop(e);
    assert!(t.holders("r").is_empty());
}

#[test]
fn callbacks_receive_the_outcome_once() {
    let (clock, t) = table(0);
    let a = t.try_acquire("r", "a", S, Mode::Exclusive).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut b = queued(&t, "r", "b", Mode::Exclusive, None);
    let tx2 = tx.clone();
    b.on_done(Box::new(move |r| tx2.send(r).unwrap())).unwrap();
    let mut c = queued(&t, "r", "c", Mode::Exclusive, Some(10 * MS));
    c.on_done(Box::new(move |r| tx.send(r).unwrap())).unwrap();
    drop(b);
    assert!(rx.try_recv().is_err());
    clock.advance(10 * MS);
    assert!(matches!(rx.try_recv().unwrap(), Err(Error::Timeout { .. })));
    t.release(&a).unwrap();
    let lb = rx.try_recv().unwrap().unwrap();
    assert_eq!(&*lb.owner, "b");
    assert!(c.wait(None).is_err(), "outcome went to the callback");
}

#[test]
fn guard_renews_and_reports_loss_on_a_manual_clock() {
    let (clock, t) = table(0);
    let g = t.lock("r", "a", 3 * S, Mode::Exclusive, None).unwrap();
    for _ in 0..10 {
        clock.advance(S);
        assert!(!g.is_lost());
    }
    assert_eq!(g.renewals(), 10);
    let l = g.lease();
    assert_eq!(l.expires_at, clock.now_ns() + 3_000_000_000);
    // The lease is taken away behind the guard's back: the next renewal fails.
    t.release(&l).unwrap();
    clock.advance(S);
    assert!(g.is_lost());
    assert!(g.wait_lost(Some(Duration::ZERO)));
    assert!(matches!(g.lost_reason(), Some(Error::NotHolder { .. })));
    assert!(matches!(g.release(), Err(Error::NotHolder { .. })));
    // A jump past the expiry loses it too; dropping a live guard releases.
    let g = t.lock("r", "a", 3 * S, Mode::Exclusive, None).unwrap();
    clock.advance(10 * S);
    assert!(g.is_lost());
    assert!(matches!(g.lost_reason(), Some(Error::LeaseExpired { .. })));
    drop(g);
    let g = t.lock("r", "b", 3 * S, Mode::Exclusive, None).unwrap();
    drop(g);
    assert!(t.holders("r").is_empty());
}

#[test]
fn bad_arguments() {
    let (clock, t) = table(0);
    for (r, o, ttl) in [("", "a", S), ("r", "", S), ("r", "a", Duration::ZERO)] {
        assert!(matches!(
            t.try_acquire(r, o, ttl, Mode::Exclusive),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            t.acquire(r, o, ttl, Mode::Shared, None),
            Err(Error::InvalidArgument(_))
        ));
    }
    assert!(matches!(clock.set(0), Err(Error::InvalidArgument(_))));
}

#[test]
fn lease_status_is_the_tables_truth_after_a_shorter_renewal_and_a_takeover() {
    // acquire(ttl 10 s), renew to 2 s at t=0, owner b acquires at t=3 s.
    let (clock, t) = table(0);
    let a = t.acquire("r", "a", 10 * S, Mode::Exclusive, None).unwrap();
    assert_eq!(
        t.lease_status("r", a.token).unwrap().expires_at,
        1_000 + 10_000_000_000
    );
    t.renew(&a, 2 * S).unwrap();
    assert_eq!(
        t.lease_status("r", a.token).unwrap().expires_at,
        1_000 + 2_000_000_000
    );
    clock.advance(3 * S);
    assert!(t.lease_status("r", a.token).is_none(), "expired");
    let b = t.try_acquire("r", "b", 10 * S, Mode::Exclusive).unwrap();
    assert_eq!(b.token, a.token + 1);
    assert!(t.lease_status("r", a.token).is_none());
    assert_eq!(t.lease_status("r", b.token).unwrap().owner.as_ref(), "b");
    t.release(&b).unwrap();
    assert!(t.lease_status("r", b.token).is_none(), "released");
    assert!(t.lease_status("never", 1).is_none());
}

#[test]
fn released_names_cost_no_state_in_the_table() {
    let (_clock, t) = table(0);
    for i in 0..200_000u32 {
        let name = format!("job-{i}");
        let l = t.try_acquire(&name, "w", S, Mode::Exclusive).unwrap();
        t.release(&l).unwrap();
    }
    assert_eq!(t.resource_count(), 0);
    // Held and queued names do count.
    let held = t.try_acquire("held", "w", S, Mode::Exclusive).unwrap();
    assert_eq!(t.resource_count(), 1);
    t.release(&held).unwrap();
    assert_eq!(t.resource_count(), 0);
}

#[test]
fn a_cancel_token_stops_a_blocked_acquire_and_withdraws_it() {
    use quorumkit::lease::CancelToken;
    let t = LeaseTable::default();
    let held = t
        .acquire(
            "r",
            "holder",
            Duration::from_secs(60),
            Mode::Exclusive,
            None,
        )
        .unwrap();
    let token = CancelToken::new();
    let waiter = {
        let (t, token) = (t.clone(), token.clone());
        std::thread::spawn(move || {
            t.acquire_cancellable(
                "r",
                "w",
                Duration::from_secs(60),
                Mode::Exclusive,
                None,
                &token,
            )
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while t.queue_len("r") == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(t.queue_len("r"), 1);
    token.cancel();
    let got = waiter.join().unwrap();
    assert!(
        matches!(got, Err(quorumkit::Error::Cancelled { .. })),
        "{got:?}"
    );
    assert_eq!(t.queue_len("r"), 0);
    t.release(&held).unwrap();
    // Nothing was granted to the cancelled waiter; a fired token refuses
    // at once, even a free resource.
    assert!(t.holders("r").is_empty());
    let again = t.acquire_cancellable(
        "r",
        "w",
        Duration::from_secs(1),
        Mode::Exclusive,
        None,
        &token,
    );
    assert!(matches!(again, Err(quorumkit::Error::Cancelled { .. })));
}

#[test]
fn a_callback_acquire_gets_exactly_one_outcome() {
    use quorumkit::lease::CancelToken;
    use std::sync::{Arc, Mutex};
    let (_clock, t) = table(0);
    let got: Arc<Mutex<Vec<Result<u64, Error>>>> = Arc::default();
    let sink = |got: &Arc<Mutex<Vec<Result<u64, Error>>>>| {
        let got = got.clone();
        Box::new(move |r: quorumkit::Result<quorumkit::lease::Lease>| {
            got.lock().unwrap().push(r.map(|l| l.token))
        }) as quorumkit::lease::Callback
    };
    // Free: granted inside the call.
    t.acquire_with_callback("r", "a", S, Mode::Exclusive, None, &[], sink(&got))
        .unwrap();
    let first = got.lock().unwrap()[0].clone().unwrap();
    // Queued, then cancelled: one Cancelled, and the queue is empty.
    let cancel = CancelToken::new();
    t.acquire_with_callback("r", "b", S, Mode::Exclusive, None, &[&cancel], sink(&got))
        .unwrap();
    assert_eq!(got.lock().unwrap().len(), 1);
    cancel.cancel();
    cancel.cancel();
    assert_eq!(got.lock().unwrap().len(), 2);
    assert!(matches!(
        got.lock().unwrap()[1],
        Err(Error::Cancelled { .. })
    ));
    assert_eq!(t.queue_len("r"), 0);
    // Queued, then granted by the release.
    t.acquire_with_callback(
        "r",
        "c",
        S,
        Mode::Exclusive,
        None,
        &[&CancelToken::new()],
        sink(&got),
    )
    .unwrap();
    t.release_token("r", "a", first).unwrap();
    let third = got.lock().unwrap()[2].clone().unwrap();
    assert!(third > first);
    // A fired token refuses up front, with no callback.
    assert!(matches!(
        t.acquire_with_callback("x", "d", S, Mode::Exclusive, None, &[&cancel], sink(&got)),
        Err(Error::Cancelled { .. })
    ));
    assert_eq!(got.lock().unwrap().len(), 3);
}
