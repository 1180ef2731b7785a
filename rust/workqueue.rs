// SPDX-License-Identifier: GPL-2.0

//! Owned workqueues: ordered ones for I/O-path work (`WQ_MEM_RECLAIM`), unbound ones for
//! long-running work items (the stress engine's workers); and a [`Ticker`] that runs a
//! function periodically on `system_dfl_wq`.
//!
//! The `kernel` crate can enqueue work on a `Queue` but cannot create one; a block
//! device's error handling must not depend on the shared system queues (they may be
//! needed to free memory this work waits for), so a target allocates its own.

use crate::rust::bindings;
use core::ptr::NonNull;
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::time::{msecs_to_jiffies, Jiffies};
use kernel::types::Opaque;
use kernel::workqueue::Queue;

/// A workqueue of our own, destroyed (after draining) on drop.
///
/// # Invariants
///
/// `wq` came from `alloc_workqueue` (or `alloc_ordered_workqueue`) and is destroyed only on
/// drop.
pub(crate) struct OwnedQueue {
    wq: NonNull<bindings::workqueue_struct>,
}

// SAFETY: A workqueue has no thread affinity: it may be destroyed (dropped) on any thread.
unsafe impl Send for OwnedQueue {}
// SAFETY: The `&self` methods queue work (`queue_work_on` through `Queue`) and flush, which
// the workqueue code synchronises internally and allows from any thread at once.
unsafe impl Sync for OwnedQueue {}

impl OwnedQueue {
    /// Allocates an ordered workqueue (one item at a time, in order, `WQ_MEM_RECLAIM`)
    /// named `name` (shown in `ps` as the kworker's name).
    pub(crate) fn ordered(name: &CStr) -> Result<Self> {
        // SAFETY: `name` is NUL-terminated; the workqueue copies it.
        let wq = unsafe { bindings::dmr_alloc_ordered_workqueue(name.as_char_ptr()) };
        Self::from_raw(wq)
    }

    /// Allocates an unbound workqueue named `name` that runs up to `max_active` items at
    /// once, each on any CPU: for work items that run (and sleep) for a long time.
    pub(crate) fn unbound(name: &CStr, max_active: u32) -> Result<Self> {
        let max_active = c_int::try_from(max_active).map_err(|_| EINVAL)?;
        // SAFETY: `name` is NUL-terminated; the workqueue copies it.
        let wq = unsafe { bindings::dmr_alloc_unbound_workqueue(name.as_char_ptr(), max_active) };
        Self::from_raw(wq)
    }

    fn from_raw(wq: *mut bindings::workqueue_struct) -> Result<Self> {
        // INVARIANT: A non-NULL `wq` is a workqueue `alloc_workqueue` allocated, and only
        // `drop` destroys it.
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

impl Drop for OwnedQueue {
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
/// Not the `kernel` crate's `DelayedWork`: in 7.3.4 it can queue a delayed work item but has
/// no way to cancel one, and a ticker must be stopped (and its memory freed) at a time of
/// its owner's choosing. So this owns a `delayed_work` in a pinned box and cancels it with
/// `cancel_delayed_work_sync` before the box is freed.
pub(crate) struct Ticker<T: Tick> {
    /// Only kept to be dropped: its `PinnedDrop` cancels the work before the box is freed.
    _work: Pin<KBox<TickerWork<T>>>,
}

/// The delayed work item of a [`Ticker`] and what it runs.
///
/// # Invariants
///
/// `dwork` is initialised with [`tick_cb::<T>`] as its function; it is queued only by
/// [`Ticker::start`] and by `tick_cb` itself, both on `system_dfl_wq`.
#[pin_data(PinnedDrop)]
struct TickerWork<T: Tick> {
    #[pin]
    dwork: Opaque<bindings::delayed_work>,
    what: Arc<T>,
    period: Jiffies,
}

// SAFETY: A ticker may be stopped (dropped) on any thread: `cancel_delayed_work_sync` may
// be called from any process context, and the `Arc<T>` it then drops is `Send` because
// `T: Send + Sync`.
unsafe impl<T: Tick> Send for Ticker<T> {}
// SAFETY: `Ticker` has no `&self` methods.
unsafe impl<T: Tick> Sync for Ticker<T> {}

impl<T: Tick> Ticker<T> {
    /// Starts calling `what.tick()` every `period_ms` milliseconds, the first time one
    /// period from now.
    pub(crate) fn start(what: Arc<T>, period_ms: u32) -> Result<Self> {
        let work = KBox::pin_init(
            pin_init!(TickerWork {
                // INVARIANT: The work function is `tick_cb::<T>`; nothing is queued yet.
                // SAFETY: `slot` is valid for writes. It is zeroed first, as the C code
                // zeroes a delayed work it allocates (`INIT_DELAYED_WORK` sets up the work
                // and its timer but not the fields `queue_delayed_work` fills in later).
                dwork <- Opaque::ffi_init(|slot: *mut bindings::delayed_work| unsafe {
                    slot.write_bytes(0, 1);
                    bindings::dmr_init_delayed_work(slot, Some(tick_cb::<T>));
                }),
                what,
                period: msecs_to_jiffies(period_ms),
            }),
            GFP_KERNEL,
        )?;
        work.queue();
        Ok(Self { _work: work })
    }
}

impl<T: Tick> TickerWork<T> {
    /// Queues the work to run one period from now on `system_dfl_wq`.
    fn queue(&self) {
        // SAFETY: `dwork` is initialised (type invariant) and pinned in its box, which
        // `PinnedDrop` frees only after cancelling it; `system_dfl_wq` is a system
        // workqueue that exists as long as the kernel runs.
        unsafe {
            bindings::queue_delayed_work_on(
                bindings::DMR_WORK_CPU_UNBOUND,
                bindings::system_dfl_wq,
                self.dwork.get(),
                self.period,
            )
        };
    }
}

#[pinned_drop]
impl<T: Tick> PinnedDrop for TickerWork<T> {
    fn drop(self: Pin<&mut Self>) {
        // Before the memory goes: once this returns the work is neither queued nor running,
        // and it did not queue itself again (the cancel disables the work while it waits
        // for a running `tick_cb`, so that call's requeue fails).
        // SAFETY: `dwork` is initialised (type invariant); cancelling waits, which is
        // allowed because a ticker is dropped in process context (`Ticker` owners drop it
        // at device or module teardown).
        unsafe { bindings::cancel_delayed_work_sync(self.dwork.get()) };
    }
}

/// The work function of a [`Ticker`]'s work item: one tick, then queue the next one.
///
/// # Safety
///
/// Called by the workqueue with the `work_struct` of a `TickerWork<T>`'s `dwork`, which
/// stays allocated until the call returns (`PinnedDrop` waits for it).
unsafe extern "C" fn tick_cb<T: Tick>(work: *mut bindings::work_struct) {
    // SAFETY: `work` is the `work` field of a `delayed_work` (`to_delayed_work`), and that
    // `delayed_work` is the `dwork` field of a live `TickerWork<T>` (only `Ticker::start`
    // initialises one with this function); `Opaque<T>` has the layout of `T`.
    let this = unsafe {
        let dwork = kernel::container_of!(work, bindings::delayed_work, work);
        &*kernel::container_of!(Opaque::cast_from(dwork).cast_mut(), TickerWork<T>, dwork)
    };
    this.what.tick();
    this.queue();
}

/// Lets other tasks run if this one should yield (`cond_resched`): for a work item, or a
/// holder of the table's writer lock (`src/index.rs`), that runs long without sleeping.
/// Process context only, like any function that may sleep (not checked by type: the
/// kernel's convention, as for `kernel::task::might_sleep`).
pub(crate) fn cond_resched() {
    // SAFETY: `cond_resched` has no memory-safety precondition; its callers run in process
    // context (work items, and the writers of `src/index.rs`, which hold a mutex).
    unsafe { bindings::dmr_cond_resched() };
}
