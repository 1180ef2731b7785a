// SPDX-License-Identifier: GPL-2.0

//! The bio a target maps, completes or splits.

use super::DmDev;
use crate::rust::bindings;
use kernel::block::SECTOR_SHIFT;
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};
use kernel::types::Opaque;

/// Operation of a bio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReqOp {
    /// Read data.
    Read,
    /// Write data.
    Write,
    /// Flush the volatile write cache (an empty flush, not a write with `REQ_PREFLUSH`).
    Flush,
    /// Discard sectors.
    Discard,
    /// Securely erase sectors.
    SecureErase,
    /// Write zeroes to sectors.
    WriteZeroes,
    /// Any other operation (zone management and others a target does not expect).
    Other(u32),
}

/// A block-layer completion status (`blk_status_t`); the default is success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct BlkStatus(pub(crate) bindings::blk_status_t);

impl BlkStatus {
    /// Success.
    pub(crate) const OK: Self = Self(bindings::DMR_BLK_STS_OK);
    /// Generic I/O error.
    pub(crate) const IOERR: Self = Self(bindings::DMR_BLK_STS_IOERR);
    /// Out of space.
    pub(crate) const NOSPC: Self = Self(bindings::DMR_BLK_STS_NOSPC);
    /// The medium reported an unrecovered error (SCSI MEDIUM ERROR, NVMe media errors).
    pub(crate) const MEDIUM: Self = Self(bindings::DMR_BLK_STS_MEDIUM);
    /// The request was invalid for the device.
    pub(crate) const INVAL: Self = Self(bindings::DMR_BLK_STS_INVAL);
    /// Out of a resource (memory) for the moment.
    pub(crate) const RESOURCE: Self = Self(bindings::DMR_BLK_STS_RESOURCE);

    /// Whether this is success.
    pub(crate) fn is_ok(self) -> bool {
        self == Self::OK
    }

    /// Whether the status may mean that the blocks themselves are bad: the generic
    /// `IOERR` (what disks, loop, dm-error, dm-flakey and null_blk report for a failing
    /// sector) and `MEDIUM`. Every other status is about something else (the path, the
    /// device's state, the request, resources) and says nothing about the blocks.
    pub(crate) fn is_medium_error(self) -> bool {
        self == Self::IOERR || self == Self::MEDIUM
    }

    /// The negative errno the block layer maps this status to (`blk_status_to_errno`).
    pub(crate) fn to_errno(self) -> c_int {
        // SAFETY: No preconditions; any status value is accepted.
        unsafe { bindings::blk_status_to_errno(self.0) }
    }
}

// Statuses the target only classifies (as not about the medium, see `is_medium_error`);
// only the test build's fault injection (`remap_test_err`, src/test_hooks.rs) returns them.
#[cfg_attr(not(dmr_test_hooks), allow(dead_code))]
impl BlkStatus {
    /// The command timed out.
    pub(crate) const TIMEOUT: Self = Self(bindings::DMR_BLK_STS_TIMEOUT);
    /// The path to the device failed (link down, lost transport).
    pub(crate) const TRANSPORT: Self = Self(bindings::DMR_BLK_STS_TRANSPORT);
    /// The device is offline.
    pub(crate) const OFFLINE: Self = Self(bindings::DMR_BLK_STS_OFFLINE);
    /// The target reported a critical error that is not about the medium.
    pub(crate) const TARGET: Self = Self(bindings::DMR_BLK_STS_TARGET);
    /// Data integrity (protection information) check failed.
    pub(crate) const PROTECTION: Self = Self(bindings::DMR_BLK_STS_PROTECTION);
}

/// A `struct bio` handed to a target by device-mapper.
///
/// # Invariants
///
/// The wrapped bio is valid and owned by device-mapper for the duration of the borrow
/// that produced the `&mut Bio`; no one else modifies it meanwhile.
#[repr(transparent)]
pub(crate) struct Bio(Opaque<bindings::bio>);

impl Bio {
    /// Borrows a raw bio.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid bio that is not accessed by anyone else for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::bio) -> &'a mut Self {
        // INVARIANT: The caller guarantees that the bio is valid and used by no one else
        // for `'a`, the lifetime of the returned borrow.
        // SAFETY: `Bio` is `repr(transparent)` over `Opaque<bio>`, which has the layout of
        // `bio`; validity and exclusivity are guaranteed by the caller.
        unsafe { &mut *ptr.cast() }
    }

    /// The raw pointer, for calls into C.
    pub(crate) fn as_raw(&self) -> *mut bindings::bio {
        self.0.get()
    }

    fn opf(&self) -> u32 {
        // SAFETY: By the type invariant the bio is valid.
        unsafe { (*self.as_raw()).bi_opf }
    }

    /// First sector of the bio.
    pub(crate) fn sector(&self) -> u64 {
        // SAFETY: By the type invariant the bio is valid.
        unsafe { (*self.as_raw()).bi_iter.bi_sector }
    }

    /// Moves the bio to another first sector (on the device set with [`Bio::set_dev`]).
    pub(crate) fn set_sector(&mut self, sector: u64) {
        // SAFETY: By the type invariant the bio is valid and not accessed concurrently.
        unsafe { (*self.as_raw()).bi_iter.bi_sector = sector };
    }

    /// Remaining size of the bio in bytes.
    pub(crate) fn size(&self) -> u32 {
        // SAFETY: By the type invariant the bio is valid.
        unsafe { (*self.as_raw()).bi_iter.bi_size }
    }

    /// Remaining size of the bio in sectors.
    pub(crate) fn sectors(&self) -> u32 {
        self.size() >> SECTOR_SHIFT
    }

    /// The bio's operation.
    pub(crate) fn op(&self) -> ReqOp {
        let op = self.opf() & bindings::DMR_REQ_OP_MASK;
        match op {
            bindings::DMR_REQ_OP_READ => ReqOp::Read,
            bindings::DMR_REQ_OP_WRITE => ReqOp::Write,
            bindings::DMR_REQ_OP_FLUSH => ReqOp::Flush,
            bindings::DMR_REQ_OP_DISCARD => ReqOp::Discard,
            bindings::DMR_REQ_OP_SECURE_ERASE => ReqOp::SecureErase,
            bindings::DMR_REQ_OP_WRITE_ZEROES => ReqOp::WriteZeroes,
            other => ReqOp::Other(other),
        }
    }

    /// Whether the bio's data must be on stable media when it completes (`REQ_FUA`).
    pub(crate) fn is_fua(&self) -> bool {
        self.opf() & bindings::DMR_REQ_FUA != 0
    }

    /// Sends the bio to `dev` when the target returns [`super::MapResult::Remapped`].
    pub(crate) fn set_dev(&mut self, dev: &DmDev) {
        // SAFETY: The bio is valid (type invariant) and `dev.bdev()` is an open block
        // device for as long as `dev` exists.
        unsafe { bindings::dmr_bio_set_dev(self.as_raw(), dev.bdev()) };
    }

    /// Accepts only the first `sectors` sectors of the bio; device-mapper submits the rest
    /// as a new bio to the target's map function again.
    ///
    /// Must be called from `map` with `0 < sectors < self.sectors()`; other values are
    /// ignored (accepting the whole bio needs no call).
    pub(crate) fn accept_partial(&mut self, sectors: u32) {
        if sectors == 0 || sectors >= self.sectors() {
            return;
        }
        // SAFETY: The bio is valid and is being mapped (only `map` hands out `&mut Bio`
        // for bios dm may split), and `sectors` is within the bio.
        unsafe { bindings::dm_accept_partial_bio(self.as_raw(), sectors) };
    }

    /// For bios device-mapper duplicates to a target (flushes, discards, ...), which copy
    /// this is: `0..num_*_bios`.
    pub(crate) fn target_bio_nr(&self) -> u32 {
        // SAFETY: The bio is valid and was cloned by device-mapper for this target.
        unsafe { bindings::dm_bio_get_target_bio_nr(self.as_raw()) }
    }
}

/// What the lower layers change in a bio while processing it, saved in `map` so that the
/// target can read the bio's data again after a failure and complete it a second time:
/// the fields `dm_bio_record` saves (drivers/md/dm-bio-record.h, private to drivers/md).
/// Not `bi_integrity`, which `dm_bio_record` also saves: the details are restored only just
/// before the bio is completed, never to resubmit it, and by then the layer that attached an
/// integrity payload has freed it and cleared the pointer.
///
/// Kept in Rust (it lives in every bio's per-bio data, and `map` records every bio), so a
/// record costs no call into C beyond the atomic read of `__bi_remaining`.
#[derive(Clone, Copy)]
pub(crate) struct BioDetails {
    bdev: *mut bindings::block_device,
    flags: c_ushort,
    iter: bindings::bvec_iter,
    end_io: bindings::bio_end_io_t,
    remaining: c_int,
}

impl Default for BioDetails {
    fn default() -> Self {
        Self {
            bdev: core::ptr::null_mut(),
            flags: 0,
            iter: bindings::bvec_iter {
                bi_sector: 0,
                bi_size: 0,
                bi_idx: 0,
                bi_offset: 0,
            },
            end_io: None,
            remaining: 0,
        }
    }
}

// SAFETY: The saved pointers are only used with the bio they came from, by its owner (a
// `DeferredBio` restores them), on whichever thread completes it.
unsafe impl Send for BioDetails {}

impl BioDetails {
    /// First sector of the bio when it was recorded.
    pub(crate) fn sector(&self) -> u64 {
        self.iter.bi_sector
    }

    /// Size in bytes of the bio when it was recorded.
    pub(crate) fn size(&self) -> u32 {
        self.iter.bi_size
    }

    /// Puts the saved fields back into `bio` (`dm_bio_restore`).
    ///
    /// # Safety
    ///
    /// `bio` must be the valid bio these details were recorded from, and its owner must be
    /// the caller: no one else accesses it during the call (`__bi_remaining` is still
    /// written atomically, as `atomic_set` does).
    unsafe fn restore(&self, bio: *mut bindings::bio) {
        // SAFETY: `bio` is valid and ours (caller's guarantee), and `__bi_remaining.counter`
        // is an aligned `int` that the block layer only accesses atomically.
        unsafe {
            (*bio).bi_bdev = self.bdev;
            (*bio).bi_flags = self.flags;
            (*bio).bi_iter = self.iter;
            Atomic::from_ptr(&raw mut (*bio).__bi_remaining.counter).store(self.remaining, Relaxed);
            (*bio).bi_end_io = self.end_io;
        }
    }
}

impl Bio {
    /// Saves the state the lower layers will change (`dm_bio_record`).
    #[inline]
    pub(crate) fn record(&self) -> BioDetails {
        let b = self.as_raw();
        // SAFETY: The bio is valid and not modified by anyone else while we hold `&self`
        // (type invariant); `__bi_remaining.counter` is an aligned `int` that is only
        // accessed atomically, so reading it with `atomic_read` semantics is race-free.
        unsafe {
            BioDetails {
                bdev: (*b).bi_bdev,
                flags: (*b).bi_flags,
                iter: (*b).bi_iter,
                end_io: (*b).bi_end_io,
                remaining: Atomic::from_ptr(&raw mut (*b).__bi_remaining.counter).load(Relaxed),
            }
        }
    }
}

/// A bio the target took over from device-mapper (by returning [`super::MapResult::Defer`]
/// or [`super::EndIoResult::Defer`]); the target must complete it, once, with
/// [`DeferredBio::complete`]. Dropping it completes it with an I/O error, so a bio is never
/// lost.
///
/// # Invariants
///
/// `bio` is a valid bio whose completion only this value may trigger.
/// `P` is the target's per-bio data type; it stays valid in front of the bio until the bio
/// completes.
pub(crate) struct DeferredBio<P: Copy> {
    bio: NonNull<bindings::bio>,
    _per_io: PhantomData<P>,
}

// SAFETY: Completion of a bio may happen from any thread; `P` is plain data.
unsafe impl<P: Copy + Send> Send for DeferredBio<P> {}

use core::marker::PhantomData;
use core::ptr::NonNull;

/// The `per_io_data_size` for per-bio data of type `P`: its size rounded up to the 8-byte
/// alignment device-mapper guarantees.
pub(crate) const fn per_io_size_of<P>() -> u32 {
    (core::mem::size_of::<P>().div_ceil(8) * 8) as u32
}

impl<P: Copy> DeferredBio<P> {
    /// # Safety
    ///
    /// `bio` must be valid, cloned by device-mapper for a target whose per-bio data is an
    /// initialised `P` (`per_io_data_size == per_io_size_of::<P>()`), and the caller must
    /// hand over the duty to complete it (device-mapper was told `DM_MAPIO_SUBMITTED` or
    /// `DM_ENDIO_INCOMPLETE`).
    pub(crate) unsafe fn from_raw(bio: *mut bindings::bio) -> Option<Self> {
        // INVARIANT: Guaranteed by the caller.
        NonNull::new(bio).map(|bio| Self {
            bio,
            _per_io: PhantomData,
        })
    }

    /// The target's per-bio data of this bio.
    pub(crate) fn io(&mut self) -> &mut P {
        if core::mem::size_of::<P>() == 0 {
            // SAFETY: Any aligned non-null pointer is a valid zero-sized `P`.
            return unsafe { &mut *NonNull::<P>::dangling().as_ptr() };
        }
        // SAFETY: By the type invariant the per-bio data is an initialised `P` of this
        // size, owned by whoever owns the bio (us).
        unsafe {
            &mut *bindings::dm_per_bio_data(self.bio.as_ptr(), per_io_size_of::<P>() as usize)
                .cast::<P>()
        }
    }

    fn into_raw(self) -> *mut bindings::bio {
        let p = self.bio.as_ptr();
        core::mem::forget(self);
        p
    }

    /// The bio.
    pub(crate) fn bio(&self) -> &Bio {
        // SAFETY: By the type invariant the bio is valid and ours.
        unsafe { Bio::from_raw(self.bio.as_ptr()) }
    }

    /// Calls `f(segment, at)` for every single-page segment of the `len` bytes of the
    /// bio's data that start `skip` bytes into the data as `details` saw it; `at` is the
    /// segment's offset in those bytes. The caller checked the range with `data_range`.
    /// The loop of `__bio_for_each_segment`, over C forwarders of its inline parts.
    fn for_each_segment(
        &self,
        details: &BioDetails,
        skip: u32,
        len: u32,
        mut f: impl FnMut(&mut bindings::bio_vec, usize) -> Result,
    ) -> Result {
        let bio = self.bio.as_ptr();
        let mut it = details.iter;
        // SAFETY: The bio is valid and ours (type invariant), so its vector stays as it was
        // when `details` were recorded; `it` is that recorded iterator, and `skip` is within
        // its size (checked by the caller with `data_range`).
        unsafe { bindings::dmr_bio_advance_iter(bio, &mut it, skip) };
        it.bi_size = len;
        let mut at = 0usize;
        while it.bi_size > 0 {
            // SAFETY: The bio is valid and ours, its vector unchanged since `details` were
            // recorded; `it` still has data left in that vector, so it points at a segment.
            let mut bv = unsafe { bindings::dmr_bio_iter_iovec(bio, &it) };
            f(&mut bv, at)?;
            at += bv.bv_len as usize;
            // SAFETY: The bio is valid and ours, `it` points into its vector, and
            // `bv.bv_len` is the length of the segment at `it` (at most what is left there).
            unsafe { bindings::dmr_bio_advance_iter_single(bio, &mut it, bv.bv_len) };
        }
        Ok(())
    }

    /// Copies `buf.len()` bytes of the bio's data, from `skip` bytes into the data as
    /// `details` saw it, into `buf`. Returns `EINVAL` when that is outside the data.
    pub(crate) fn copy_from(&self, details: &BioDetails, skip: u32, buf: &mut [u8]) -> Result {
        let len = data_range(details, skip, buf.len())?;
        self.for_each_segment(details, skip, len, |bv, at| {
            let to = buf.get_mut(at..at + bv.bv_len as usize).ok_or(EINVAL)?;
            // SAFETY: `bv` is a single-page segment of the bio's data, whose pages stay
            // allocated while the bio is ours (type invariant); `to` is `bv_len` writable
            // bytes.
            unsafe { bindings::dmr_memcpy_from_bvec(to.as_mut_ptr().cast(), bv) };
            Ok(())
        })
    }

    /// Copies `buf` into the bio's data at `skip` bytes (as `details` saw it). Returns
    /// `EINVAL` when that is outside the data.
    pub(crate) fn copy_to(&mut self, details: &BioDetails, skip: u32, buf: &[u8]) -> Result {
        let len = data_range(details, skip, buf.len())?;
        self.for_each_segment(details, skip, len, |bv, at| {
            let from = buf.get(at..at + bv.bv_len as usize).ok_or(EINVAL)?;
            // SAFETY: `bv` is a single-page segment of the bio's data, whose pages stay
            // allocated while the bio is ours (type invariant), and `&mut self` lets us
            // write them; `from` is `bv_len` readable bytes.
            unsafe { bindings::dmr_memcpy_to_bvec(bv, from.as_ptr().cast()) };
            Ok(())
        })
    }

    /// Completes the bio with `status`, after restoring what `details` saved.
    ///
    /// `details` must be what [`Bio::record`] returned for this bio (the target keeps it in
    /// the bio's own per-bio data): the bio gets exactly the saved fields back, so details
    /// of another bio would hand it that bio's device, position and completion function.
    pub(crate) fn complete(self, details: &BioDetails, status: BlkStatus) {
        let p = self.into_raw();
        // SAFETY: `p` is valid and completing it is our duty (type invariant), so it is
        // ours until `bio_endio` hands it back. `details` were recorded from it (the
        // requirement above; not checked). Restoring them undoes what the lower layers
        // changed.
        unsafe {
            details.restore(p);
            (*p).bi_status = status.0;
            bindings::bio_endio(p);
        }
    }
}

/// `len` as `u32` when `skip..skip + len` lies within the data `details` recorded;
/// `EINVAL` otherwise.
fn data_range(details: &BioDetails, skip: u32, len: usize) -> Result<u32> {
    let len = u32::try_from(len).map_err(|_| EINVAL)?;
    if skip.checked_add(len).is_none_or(|end| end > details.size()) {
        return Err(EINVAL);
    }
    Ok(len)
}

impl<P: Copy> Drop for DeferredBio<P> {
    fn drop(&mut self) {
        let p = self.bio.as_ptr();
        // SAFETY: Completing the bio is our duty (type invariant) and it was not completed
        // (`complete` forgets `self`), so nobody else writes its status meanwhile.
        unsafe {
            (*p).bi_status = BlkStatus::IOERR.0;
            bindings::bio_endio(p);
        }
    }
}

/// A queue of deferred bios, linked through `bi_next`: pushed from any context (including
/// interrupts) without locks, taken all at once by one consumer.
///
/// # Invariants
///
/// `head` is NULL or the first of a NULL-terminated `bi_next` chain of bios, each one a
/// [`DeferredBio<P>`] given up by `push`: valid, deferred with per-bio data `P`, and its
/// completion owned by the queue.
pub(crate) struct BioQueue<P: Copy> {
    head: kernel::sync::atomic::Atomic<*mut bindings::bio>,
    _per_io: PhantomData<P>,
}

// SAFETY: The queue only holds bios whose completion it owns; completing a bio (drop) is
// allowed on any thread, and `P` is `Send`.
unsafe impl<P: Copy + Send> Send for BioQueue<P> {}
// SAFETY: The `&self` methods change `head` only with atomic operations: `push` links its
// own bio before a release cmpxchg, and `take_all` detaches the whole chain with one
// acquire xchg before it touches any `bi_next`, so no bio is reached by two threads.
unsafe impl<P: Copy + Send> Sync for BioQueue<P> {}

impl<P: Copy> BioQueue<P> {
    /// An empty queue.
    pub(crate) const fn new() -> Self {
        // INVARIANT: An empty chain.
        Self {
            head: kernel::sync::atomic::Atomic::new(core::ptr::null_mut()),
            _per_io: PhantomData,
        }
    }

    /// Adds a bio.
    pub(crate) fn push(&self, bio: DeferredBio<P>) {
        use kernel::sync::atomic::{Relaxed, Release};
        let p = bio.into_raw();
        let mut head = self.head.load(Relaxed);
        loop {
            // SAFETY: `p` is a valid bio we own; `bi_next` is free for the owner's use.
            unsafe { (*p).bi_next = head };
            // INVARIANT: `p` came from a `DeferredBio<P>` and links to the chain `head` was;
            // the release ordering publishes the `bi_next` store with it.
            match self.head.cmpxchg(head, p, Release) {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }

    /// Takes every queued bio, oldest first.
    pub(crate) fn take_all(&self) -> DeferredList<P> {
        use kernel::sync::atomic::Acquire;
        let mut p = self.head.xchg(core::ptr::null_mut(), Acquire);
        // The stack is newest first; reverse it.
        let mut fifo: *mut bindings::bio = core::ptr::null_mut();
        while !p.is_null() {
            // SAFETY: Every bio in the list is valid and ours (pushed as a `DeferredBio`).
            let next = unsafe { (*p).bi_next };
            // SAFETY: `p` is a bio of the list just taken, which only this function holds,
            // so nobody else reads or writes its `bi_next`.
            unsafe { (*p).bi_next = fifo };
            fifo = p;
            p = next;
        }
        // INVARIANT: `fifo` is the chain taken from the queue (same bios, same duty).
        DeferredList {
            head: fifo,
            _per_io: PhantomData,
        }
    }

    /// Whether the queue is empty (a hint: it may change at once).
    pub(crate) fn is_empty(&self) -> bool {
        self.head.load(kernel::sync::atomic::Relaxed).is_null()
    }
}

impl<P: Copy> Drop for BioQueue<P> {
    fn drop(&mut self) {
        // Fail whatever is still queued rather than leak it.
        drop(self.take_all());
    }
}

/// Bios taken from a [`BioQueue`], oldest first.
///
/// # Invariants
///
/// `head` is NULL or the first of a NULL-terminated `bi_next` chain of bios that only this
/// list holds, each one valid, deferred with per-bio data `P`, and its completion owned by
/// the list.
pub(crate) struct DeferredList<P: Copy> {
    head: *mut bindings::bio,
    _per_io: PhantomData<P>,
}

// SAFETY: Owns its bios, see `DeferredBio`.
unsafe impl<P: Copy + Send> Send for DeferredList<P> {}

impl<P: Copy> DeferredList<P> {
    /// An empty list.
    pub(crate) const fn new() -> Self {
        // INVARIANT: An empty chain.
        Self {
            head: core::ptr::null_mut(),
            _per_io: PhantomData,
        }
    }

    /// Whether the list holds no bio.
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    /// Adds a bio at the front (the list then is no longer oldest first).
    pub(crate) fn push_front(&mut self, bio: DeferredBio<P>) {
        let p = bio.into_raw();
        // SAFETY: `p` is a valid bio we own; `bi_next` is free for the owner's use.
        unsafe { (*p).bi_next = self.head };
        // INVARIANT: `p` came from a `DeferredBio<P>` and now heads the old chain.
        self.head = p;
    }
}

impl<P: Copy> Iterator for DeferredList<P> {
    type Item = DeferredBio<P>;

    fn next(&mut self) -> Option<DeferredBio<P>> {
        let p = self.head;
        if p.is_null() {
            return None;
        }
        // INVARIANT: The rest of the chain stays; `p` leaves it, unlinked.
        // SAFETY: `p` heads the chain, so it is a valid bio this list owns (type invariant).
        unsafe {
            self.head = (*p).bi_next;
            (*p).bi_next = core::ptr::null_mut();
        }
        // SAFETY: We own the duty to complete every bio in the list, and they were all
        // deferred with per-bio data `P` (only `DeferredBio<P>` can be pushed).
        unsafe { DeferredBio::from_raw(p) }
    }
}

impl<P: Copy> Drop for DeferredList<P> {
    fn drop(&mut self) {
        for bio in self.by_ref() {
            drop(bio);
        }
    }
}
