// SPDX-License-Identifier: GPL-2.0

//! A fixed set of reusable bios with their data buffers, submitted asynchronously to a dm
//! device's own block device and reaped by the one thread that owns them: the I/O of the
//! in-kernel stress engine (`src/stress.rs`).
//!
//! Everything is allocated when the set is made; submitting and reaping allocate nothing
//! (each slot's bio is initialised once and `bio_reset` before every reuse, as a driver
//! does with a bio it embeds). The completion (`bi_end_io`, any context, hard IRQ
//! included) records the status and time in its slot, marks it done, and lowers the set's
//! in-flight count, the last memory it touches; `wake_up_var` then only hashes that
//! count's address. The owner sleeps on the count (`wait_var_event_timeout`) and finds the
//! done slots by their state. Dropping the set waits until nothing is in flight, so no
//! completion ever touches freed memory.
//!
//! Not the `kernel` crate's block support: it has `GenDisk` and request-based (`blk-mq`)
//! drivers, no way to build and submit a bio.

use super::{BlkStatus, TargetHandle};
use crate::clock::now_ns;
use crate::rust::bindings;
use core::ptr::addr_of;
use kernel::prelude::*;
use kernel::sync::atomic::{Acquire, Atomic, Full, Relaxed, Release};
use kernel::types::Opaque;

/// A slot the owner may use (fill, submit).
const IDLE: u32 = 0;
/// A slot whose bio is with the block layer.
const IN_FLIGHT: u32 = 1;
/// A slot whose bio completed and was not reaped yet.
const DONE: u32 = 2;

/// Largest buffer of one slot (the kmalloc limit is larger; this bounds one I/O).
pub(crate) const MAX_SLOT_BYTES: usize = 1024 * 1024;

/// What a slot's next I/O does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotOp {
    /// Read into the buffer.
    Read,
    /// Write the buffer.
    Write,
}

/// One reaped I/O.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reaped {
    /// The slot (its buffer holds what was read or written).
    pub(crate) index: usize,
    /// How it ended.
    pub(crate) status: BlkStatus,
    /// Nanoseconds from `submit_bio` to `bi_end_io` (monotonic clock).
    pub(crate) latency_ns: u64,
}

/// The count completions lower and the owner sleeps on.
///
/// # Invariants
///
/// `in_flight` is the number of this set's bios whose `bi_end_io` has not yet lowered it.
#[pin_data]
struct Sink {
    in_flight: Atomic<i32>,
}

/// One bio, its one segment and its buffer.
///
/// # Invariants
///
/// `bio` was initialised by `bio_init` with `bvec` as its one-entry table when the slot was
/// made, and is uninitialised on drop. While `state` is [`IN_FLIGHT`] the block layer owns
/// the bio and the buffer; `sink` points to the set's `Sink`, which outlives every bio.
#[pin_data(PinnedDrop)]
struct Slot {
    #[pin]
    bio: Opaque<bindings::bio>,
    #[pin]
    bvec: Opaque<bindings::bio_vec>,
    buf: KVec<u8>,
    state: Atomic<u32>,
    status: Atomic<u32>,
    submit_ns: Atomic<u64>,
    done_ns: Atomic<u64>,
    sink: *const Sink,
}

// SAFETY: A slot is only touched by its owner (the set's methods take `&mut self`) and by
// its bio's completion, which reads `sink` and writes the atomics; the raw `sink` pointer
// refers to memory the set keeps alive (type invariant).
unsafe impl Send for Slot {}
// SAFETY: Shared access is limited to the atomics (see `Send`).
unsafe impl Sync for Slot {}

#[pinned_drop]
impl PinnedDrop for Slot {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: The bio was initialised when the slot was made (type invariant) and is
        // not in flight: the set drops its slots only after waiting for every completion.
        unsafe { bindings::bio_uninit(self.bio.get()) };
    }
}

/// A set of reusable bios for one owner (see the module documentation).
///
/// # Invariants
///
/// `outstanding` counts the slots in state [`IN_FLIGHT`] or [`DONE`]; `target`'s dm device
/// stays valid while any bio is in flight (the owner keeps the target alive until the set
/// is dropped, and dropping waits for every bio).
pub(crate) struct IoSlots {
    slots: KVec<Pin<KBox<Slot>>>,
    sink: Pin<KBox<Sink>>,
    outstanding: usize,
    target: TargetHandle,
    bytes: usize,
}

impl IoSlots {
    /// `count` slots of `bytes` each (whole sectors, at most [`MAX_SLOT_BYTES`]) for I/O to
    /// `target`'s dm device. Allocates everything (`ENOMEM` if it cannot).
    ///
    /// The caller must keep the target from being destroyed until the set is dropped
    /// (the stress engine stops its runs in the target's suspend and destructor).
    pub(crate) fn new(target: &TargetHandle, count: usize, bytes: usize) -> Result<Self> {
        if bytes == 0 || bytes % 512 != 0 || bytes > MAX_SLOT_BYTES || count == 0 {
            return Err(EINVAL);
        }
        let sink = KBox::pin_init(
            pin_init!(Sink {
                in_flight: Atomic::new(0),
            }),
            GFP_KERNEL,
        )?;
        let sink_ptr: *const Sink = &*sink;
        let mut slots = KVec::with_capacity(count, GFP_KERNEL)?;
        for _ in 0..count {
            // Large buffers are high-order allocations: a refusal is reported (ENOMEM), not
            // warned about.
            let mut buf = KVec::with_capacity(bytes, GFP_KERNEL | __GFP_NOWARN)?;
            buf.resize(bytes, 0u8, GFP_KERNEL)?;
            let slot = KBox::pin_init(
                pin_init!(Slot {
                    bio: Opaque::uninit(),
                    bvec: Opaque::uninit(),
                    buf,
                    state: Atomic::new(IDLE),
                    status: Atomic::new(0),
                    submit_ns: Atomic::new(0),
                    done_ns: Atomic::new(0),
                    sink: sink_ptr,
                }),
                GFP_KERNEL,
            )?;
            // INVARIANT: the bio is initialised here, before the slot is used or dropped.
            // SAFETY: `bio` and `bvec` are pinned in the slot's box and valid for writes;
            // `bio_init` initialises the bio fully, with no device yet (each submission
            // sets one with `bio_reset`) and the one bvec as its table.
            unsafe {
                slot.bio.get().write_bytes(0, 1);
                bindings::bio_init(slot.bio.get(), core::ptr::null_mut(), slot.bvec.get(), 1, 0);
            }
            slots.push(slot, GFP_KERNEL)?;
        }
        Ok(Self {
            slots,
            sink,
            outstanding: 0,
            target: target.clone(),
            bytes,
        })
    }

    /// Number of slots.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Bytes per slot.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Slots submitted and not reaped yet.
    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// The buffer of idle slot `index` (`None` if it is in flight or not reaped).
    pub(crate) fn buf_mut(&mut self, index: usize) -> Option<&mut [u8]> {
        let slot = self.slots.get_mut(index)?;
        if slot.state.load(Acquire) != IDLE {
            return None;
        }
        // SAFETY: `buf` is not structurally pinned (only `bio` and `bvec` are), so a mutable
        // reference to it does not move anything pinned.
        let slot = unsafe { slot.as_mut().get_unchecked_mut() };
        Some(&mut slot.buf[..])
    }

    /// The buffer of idle slot `index`, to read.
    pub(crate) fn buf(&self, index: usize) -> Option<&[u8]> {
        let slot = self.slots.get(index)?;
        (slot.state.load(Acquire) == IDLE).then_some(&slot.buf[..])
    }

    /// Submits idle slot `index`: `op` of its whole buffer at `sector` of the dm device.
    /// `EBUSY` if the slot is not idle.
    pub(crate) fn submit(&mut self, index: usize, sector: u64, op: SlotOp) -> Result {
        let bdev = self.target.disk_bdev();
        let slot = self.slots.get_mut(index).ok_or(EINVAL)?;
        if slot.state.load(Acquire) != IDLE {
            return Err(EBUSY);
        }
        // SAFETY: `buf` is not structurally pinned (see `buf_mut`); the device writes into
        // it, so the pointer comes from a mutable borrow.
        let data = unsafe { slot.as_mut().get_unchecked_mut() }
            .buf
            .as_mut_ptr();
        let slot = &**slot;
        let opf = match op {
            SlotOp::Read => bindings::DMR_REQ_OP_READ,
            SlotOp::Write => bindings::DMR_REQ_OP_WRITE,
        };
        let bio = slot.bio.get();
        slot.state.store(IN_FLIGHT, Relaxed);
        slot.submit_ns.store(now_ns(), Relaxed);
        self.sink.in_flight.fetch_add(1, Relaxed);
        self.outstanding += 1;
        // SAFETY: The bio was initialised (type invariant of `Slot`) and is idle: no I/O
        // uses it, so `bio_reset` may set it up again, for `bdev`, the block device of the
        // target's dm device, valid while this set exists (type invariant). `data` is the
        // slot's kmalloc buffer of `self.bytes` bytes (whole sectors, physically contiguous,
        // so one segment carries it); the block layer owns it until the completion marks
        // the slot done, and this set hands out no reference to it meanwhile. The bio's
        // private data is the slot, pinned in its box, which outlives the I/O (dropping the
        // set waits for every completion).
        unsafe {
            bindings::bio_reset(bio, bdev, opf);
            (*bio).bi_iter.bi_sector = sector;
            bindings::bio_add_virt_nofail(bio, data.cast(), self.bytes as c_uint);
            (*bio).bi_end_io = Some(slot_end_io);
            (*bio).bi_private = core::ptr::from_ref::<Slot>(slot).cast_mut().cast();
            bindings::submit_bio(bio);
        }
        Ok(())
    }

    /// Waits up to `timeout_ms` for a submitted bio to complete (returns at once if one
    /// did and was not reaped). Sleeps.
    pub(crate) fn wait(&self, timeout_ms: u32) {
        if self.outstanding == 0 {
            return;
        }
        // Bios completed and not reaped are those counted in `outstanding` but no longer
        // in `in_flight` (a reaped slot whose completion has not lowered the count yet
        // makes this later, never wrong).
        let below = self.outstanding as c_int;
        // SAFETY: `in_flight` lives in the pinned sink for as long as `self`; completions
        // lower it with `wake_up_var` on the same address.
        unsafe {
            bindings::dmr_wait_var_below(
                self.sink.in_flight.as_ptr(),
                below,
                kernel::time::msecs_to_jiffies(timeout_ms),
            )
        };
    }

    /// Calls `f` for every completed slot, which becomes idle again.
    pub(crate) fn reap(&mut self, mut f: impl FnMut(&mut Self, Reaped)) {
        for index in 0..self.slots.len() {
            let slot = &self.slots[index];
            if slot.state.load(Acquire) != DONE {
                continue;
            }
            let reaped = Reaped {
                index,
                status: BlkStatus(slot.status.load(Relaxed) as bindings::blk_status_t),
                latency_ns: slot
                    .done_ns
                    .load(Relaxed)
                    .saturating_sub(slot.submit_ns.load(Relaxed)),
            };
            slot.state.store(IDLE, Relaxed);
            self.outstanding -= 1;
            f(self, reaped);
        }
    }

    /// Waits until every submitted bio has completed (and been counted down). Sleeps.
    fn drain(&self) {
        // SAFETY: `in_flight` lives in the pinned sink for as long as `self`; completions
        // lower it with `wake_up_var` on the same address.
        unsafe { bindings::dmr_wait_var_event_zero(self.sink.in_flight.as_ptr()) };
    }
}

impl Drop for IoSlots {
    fn drop(&mut self) {
        // No completion may run after the slots and the sink are freed.
        self.drain();
    }
}

/// `bi_end_io` of a slot's bio: any context.
///
/// # Safety
///
/// Called by the block layer once per submission with a bio `IoSlots::submit` set up: its
/// private data is a live slot whose `sink` is live too.
unsafe extern "C" fn slot_end_io(bio: *mut bindings::bio) {
    // SAFETY: `bio` is the completing bio; its private data is its slot (function
    // safety requirement), alive until the slot is marked done and the sink lowered. The
    // fields are reached through raw pointers, and nothing of the slot is touched after
    // `state` says done (the owner may reuse it from then on), nor of the sink after the
    // count is lowered (the owner may free the set from then on; `wake_up_var` only
    // hashes the address).
    unsafe {
        let slot = (*bio).bi_private.cast::<Slot>().cast_const();
        let status = (*bio).bi_status;
        let sink = *addr_of!((*slot).sink);
        (*addr_of!((*slot).status)).store(u32::from(status), Relaxed);
        (*addr_of!((*slot).done_ns)).store(now_ns(), Relaxed);
        (*addr_of!((*slot).state)).store(DONE, Release);
        let count = addr_of!((*sink).in_flight);
        let ptr = (*count).as_ptr();
        // Fully ordered: `wake_up_var` needs a barrier between the change and its check
        // for waiters.
        (*count).fetch_sub(1, Full);
        bindings::wake_up_var(ptr.cast());
    }
}
