//! [`CancelToken`]: stops blocked acquires from another thread.
//!
//! A blocked acquire registers its wake-up with the token; `cancel()` sets
//! the flag and wakes every registered waiter, which withdraws its request
//! and answers [`Error::Cancelled`](crate::Error::Cancelled). The flag is
//! checked under each waiter's own lock, so a cancel that races a waiter
//! going to sleep is never lost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Something blocked that a cancel must wake.
pub(crate) trait Wake: Send + Sync {
    /// Wakes the waiter; it then re-checks the token.
    fn wake(&self);
}

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    waiters: Mutex<Vec<Weak<dyn Wake>>>,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Weak<dyn Wake>>> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        let waiters = std::mem::take(&mut *self.lock());
        for w in waiters.iter().filter_map(Weak::upgrade) {
            w.wake();
        }
    }
}

/// A linked token: cancelled when the token it is linked to is.
impl Wake for Inner {
    fn wake(&self) {
        self.cancel();
    }
}

/// A one-shot cancellation signal for blocking acquires (a Go
/// `context.Context`'s Done, a C `qk_cancel`). Cloning gives another handle
/// to the same signal; one token may serve any number of acquires.
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelToken {
    /// A token that has not been cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels: every acquire waiting on this token (now or later) gives
    /// up with `Cancelled`. Idempotent.
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    /// A new token that is cancelled when this one is (and can also be
    /// cancelled on its own). It holds no strong reference to this token's
    /// list: a dropped child is swept from it.
    pub fn child(&self) -> CancelToken {
        let child = CancelToken::new();
        self.link(&child);
        child
    }

    /// Makes a cancel of this token also cancel `other`.
    pub fn link(&self, other: &CancelToken) {
        let inner: Arc<dyn Wake> = other.inner.clone();
        self.register(Arc::downgrade(&inner));
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Weak<dyn Wake>>> {
        self.inner.lock()
    }

    /// Registers a waiter to wake on cancel. Dead registrations are swept
    /// here, so a long-lived token used by many acquires stays small.
    pub(crate) fn register(&self, waiter: Weak<dyn Wake>) {
        let mut ws = self.lock();
        ws.retain(|w| w.strong_count() > 0);
        ws.push(waiter);
        drop(ws);
        // Cancelled while registering: the sweep in `cancel` may have run
        // before the push, so wake now (the waiter re-checks the flag).
        if self.is_cancelled() {
            self.cancel();
        }
    }

    #[cfg(test)]
    pub(crate) fn registered(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Counter(AtomicUsize);
    impl Wake for Counter {
        fn wake(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn cancel_wakes_registered_waiters_once_and_late_ones_at_once() {
        let t = CancelToken::new();
        let a: Arc<dyn Wake> = Arc::new(Counter(AtomicUsize::new(0)));
        t.register(Arc::downgrade(&a));
        assert!(!t.is_cancelled());
        t.cancel();
        t.cancel();
        assert!(t.is_cancelled());
        let b = Arc::new(Counter(AtomicUsize::new(0)));
        let b_dyn: Arc<dyn Wake> = b.clone();
        t.register(Arc::downgrade(&b_dyn));
        assert_eq!(
            b.0.load(Ordering::SeqCst),
            1,
            "a late waiter is woken at once"
        );
    }

    #[test]
    fn children_follow_parents_and_dead_ones_are_swept() {
        let parent = CancelToken::new();
        for _ in 0..1000 {
            drop(parent.child());
        }
        let kept = parent.child();
        assert!(parent.registered() <= 2, "{}", parent.registered());
        let other_parent = CancelToken::new();
        other_parent.link(&kept);
        assert!(!kept.is_cancelled());
        other_parent.cancel();
        assert!(kept.is_cancelled());
        assert!(!parent.is_cancelled(), "cancel flows down, not up");
        let c2 = parent.child();
        parent.cancel();
        assert!(c2.is_cancelled());
    }
}
