// SPDX-License-Identifier: GPL-2.0

//! An owned, ordered workqueue for I/O-path work (`WQ_MEM_RECLAIM`).
//!
//! The `kernel` crate can enqueue work on a `Queue` but cannot create one; a block
//! device's error handling must not depend on the shared system queues (they may be
//! needed to free memory this work waits for), so a target allocates its own.

use crate::rust::bindings;
use core::ptr::NonNull;
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::workqueue::Queue;

/// A workqueue that runs one item at a time, in order, destroyed (after draining) on drop.
///
/// # Invariants
///
/// `wq` came from `alloc_ordered_workqueue` and is destroyed only on drop.
pub(crate) struct OrderedQueue {
    wq: NonNull<bindings::workqueue_struct>,
}

// SAFETY: A workqueue has no thread affinity: it may be destroyed (dropped) on any thread.
unsafe impl Send for OrderedQueue {}
// SAFETY: The `&self` methods queue work (`queue_work_on` through `Queue`) and flush, which
// the workqueue code synchronises internally and allows from any thread at once.
unsafe impl Sync for OrderedQueue {}

impl OrderedQueue {
    /// Allocates a workqueue named `name` (shown in `ps` as the kworker's name).
    pub(crate) fn new(name: &CStr) -> Result<Self> {
        // SAFETY: `name` is NUL-terminated; the workqueue copies it.
        let wq = unsafe { bindings::dmr_alloc_ordered_workqueue(name.as_char_ptr()) };
        // INVARIANT: A non-NULL `wq` is a workqueue `alloc_ordered_workqueue` allocated, and
        // only `drop` destroys it.
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

/// What a [`Ticker`] runs.
pub(crate) trait Tick: Send + Sync + 'static {
    /// Runs every period, in process context (may sleep).
    fn tick(&self);
}

/// Runs `T::tick` every period on `system_dfl_wq` until dropped.
///
/// # Invariants
///
/// `t` is a running `dmr_ticker` whose data is an `Arc<T>` turned into a raw pointer, owned
/// by this value.
pub(crate) struct Ticker<T: Tick> {
    t: NonNull<bindings::dmr_ticker>,
    data: *const T,
}

// SAFETY: The ticker may be stopped from any thread; `T` is `Send + Sync`.
unsafe impl<T: Tick> Send for Ticker<T> {}
// SAFETY: `&Ticker` allows nothing.
unsafe impl<T: Tick> Sync for Ticker<T> {}

impl<T: Tick> Ticker<T> {
    /// Starts calling `what.tick()` every `period_ms` milliseconds, the first time one
    /// period from now.
    pub(crate) fn start(what: Arc<T>, period_ms: u32) -> Result<Self> {
        let data = Arc::into_raw(what);
        // SAFETY: `data` stays valid until the ticker is stopped (in drop, before the
        // `Arc` is released); `tick_cb::<T>` matches it.
        let t = unsafe { bindings::dmr_ticker_start(Some(tick_cb::<T>), data.cast(), period_ms) };
        match NonNull::new(t) {
            // INVARIANT: `t` is running with `data`, the `Arc<T>` made above, which is
            // released only after `drop` stopped the ticker.
            Some(t) => Ok(Self { t, data }),
            None => {
                // SAFETY: Not handed to a ticker: still ours.
                drop(unsafe { Arc::from_raw(data) });
                Err(ENOMEM)
            }
        }
    }
}

impl<T: Tick> Drop for Ticker<T> {
    fn drop(&mut self) {
        // SAFETY: `t` is running; after this returns its function never runs again.
        unsafe { bindings::dmr_ticker_stop(self.t.as_ptr()) };
        // SAFETY: `data` came from `Arc::into_raw` and nothing uses it any more.
        drop(unsafe { Arc::from_raw(self.data) });
    }
}

/// # Safety
///
/// Called by a running `dmr_ticker` with the data of a live `Ticker<T>`.
unsafe extern "C" fn tick_cb<T: Tick>(data: *const core::ffi::c_void) {
    // SAFETY: The `Ticker` owns a reference until it has stopped the ticker.
    unsafe { &*data.cast::<T>() }.tick();
}
