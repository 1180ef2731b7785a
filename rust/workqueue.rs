// SPDX-License-Identifier: GPL-2.0

//! An owned, ordered workqueue for I/O-path work (`WQ_MEM_RECLAIM`).
//!
//! The `kernel` crate can enqueue work on a `Queue` but cannot create one; a block
//! device's error handling must not depend on the shared system queues (they may be
//! needed to free memory this work waits for), so a target allocates its own.

use crate::bindings;
use core::ptr::NonNull;
use kernel::prelude::*;
use kernel::workqueue::Queue;

/// A workqueue that runs one item at a time, in order, destroyed (after draining) on drop.
///
/// # Invariants
///
/// `wq` came from `alloc_ordered_workqueue` and is destroyed only on drop.
pub(crate) struct OrderedQueue {
    wq: NonNull<bindings::workqueue_struct>,
}

// SAFETY: Workqueues may be used from any context and thread.
unsafe impl Send for OrderedQueue {}
// SAFETY: As above.
unsafe impl Sync for OrderedQueue {}

impl OrderedQueue {
    /// Allocates a workqueue named `name` (shown in `ps` as the kworker's name).
    pub(crate) fn new(name: &CStr) -> Result<Self> {
        // SAFETY: `name` is NUL-terminated; the workqueue copies it.
        let wq = unsafe { bindings::dmr_alloc_ordered_workqueue(name.as_char_ptr()) };
        Ok(Self {
            wq: NonNull::new(wq).ok_or(ENOMEM)?,
        })
    }

    /// The queue, to enqueue work items on.
    pub(crate) fn queue(&self) -> &Queue {
        // SAFETY: `wq` is valid for as long as `self` (type invariant); `Queue` and
        // `workqueue_struct` are the same C type.
        unsafe { Queue::from_raw(self.wq.as_ptr().cast()) }
    }

    /// Waits until every work item queued before this call has finished. Sleeps.
    pub(crate) fn flush(&self) {
        // SAFETY: `wq` is valid.
        unsafe { bindings::dmr_flush_workqueue(self.wq.as_ptr()) };
    }
}

impl Drop for OrderedQueue {
    fn drop(&mut self) {
        // SAFETY: `wq` is valid and destroyed once; `destroy_workqueue` drains it first.
        unsafe { bindings::destroy_workqueue(self.wq.as_ptr()) };
    }
}
