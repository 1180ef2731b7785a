// SPDX-License-Identifier: GPL-2.0

//! A count of running things that others wait to reach zero (`wait_var_event` and
//! `wake_up_var` on the count). The `kernel` crate's `Completion` fires once; this counts
//! several finishers, and a finisher's last touch of the count is the decrement, so the
//! count may be kept alive by the finishers' own references (an `Arc`) and nothing else.

use crate::rust::bindings;
use kernel::sync::atomic::{Atomic, Full};

/// Things still running.
pub(crate) struct Countdown {
    left: Atomic<i32>,
}

impl Countdown {
    /// `n` things running.
    pub(crate) fn new(n: i32) -> Self {
        Self {
            left: Atomic::new(n),
        }
    }

    /// One thing finished: everything it did happens before a waiter returns.
    pub(crate) fn done(&self) {
        // Fully ordered: `wake_up_var` needs a barrier between the change and its check for
        // waiters.
        self.left.fetch_sub(1, Full);
        // SAFETY: `wake_up_var` only hashes the address to find waiters.
        unsafe { bindings::wake_up_var(self.left.as_ptr().cast()) };
    }

    /// Waits until nothing runs. Sleeps.
    pub(crate) fn wait(&self) {
        // SAFETY: `left` is valid for as long as `self`; finishers lower it with
        // `wake_up_var` on the same address.
        unsafe { bindings::dmr_wait_var_event_zero(self.left.as_ptr()) };
    }
}
