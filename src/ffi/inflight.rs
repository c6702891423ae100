//! Calls in progress on a handle, so that its free can cancel the blocked
//! ones and wait for them to leave before the memory goes.

use std::sync::{Arc, Condvar, Mutex};

/// A count of calls in progress that a free waits to reach zero. Shared
/// (not inside the table) so that a leaving caller never touches freed
/// memory.
#[derive(Default)]
pub(crate) struct Inside {
    count: Mutex<usize>,
    left: Condvar,
}

/// One call in progress; leaving (drop) counts it out.
pub(crate) struct Entered(Arc<Inside>);

impl Inside {
    pub(crate) fn enter(self: &Arc<Self>) -> Entered {
        *self.count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        Entered(self.clone())
    }

    pub(crate) fn wait_empty(&self) {
        let mut n = self.count.lock().unwrap_or_else(|e| e.into_inner());
        while *n > 0 {
            n = self.left.wait(n).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        let mut n = self.0.count.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        self.0.left.notify_all();
    }
}
