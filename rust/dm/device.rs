// SPDX-License-Identifier: GPL-2.0

//! Devices a target opens, and the hooks that describe them to device-mapper.

use crate::rust::bindings;
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::prelude::*;
use kernel::types::Opaque;

/// A device opened by a target with `dm_get_device()`, released with `dm_put_device()`
/// when dropped.
///
/// # Invariants
///
/// `dev` was returned by `dm_get_device(ti, ...)` and has not been put; `ti` is the target
/// that opened it. The only way to create a `DmDev` is [`super::TargetCtx::get_device`], and
/// the only place it can be kept is the target state, which device-mapper drops (in the
/// destructor, or when the constructor fails) before it frees `ti`.
pub(crate) struct DmDev {
    ti: NonNull<bindings::dm_target>,
    dev: NonNull<bindings::dm_dev>,
}

// SAFETY: A `dm_dev` may be used and released from any thread; device-mapper serialises
// table construction and destruction itself.
unsafe impl Send for DmDev {}
// SAFETY: All `&self` methods only read immutable fields of the open device.
unsafe impl Sync for DmDev {}

impl DmDev {
    /// Wraps a freshly opened device.
    ///
    /// # Safety
    ///
    /// `dev` must have been returned by `dm_get_device(ti, ...)` and ownership of that
    /// reference passes to the new `DmDev`; `ti` must outlive it (see the type invariants).
    pub(crate) unsafe fn from_raw(
        ti: NonNull<bindings::dm_target>,
        dev: NonNull<bindings::dm_dev>,
    ) -> Self {
        // INVARIANT: Guaranteed by the caller.
        Self { ti, dev }
    }

    /// The `dm_dev` pointer, for calls into C.
    pub(crate) fn as_raw(&self) -> *mut bindings::dm_dev {
        self.dev.as_ptr()
    }

    /// The open block device.
    pub(crate) fn bdev(&self) -> *mut bindings::block_device {
        // SAFETY: By the type invariant `dev` is an open device.
        unsafe { (*self.dev.as_ptr()).bdev }
    }

    /// What the block layer has counted of the I/O of the whole disk this device is on
    /// (`/sys/block/<disk>/stat`): sectors completed (read, written, discarded) and I/Os
    /// in flight, whoever sent them. Both stay 0 when the disk's `iostats` is off.
    pub(crate) fn disk_activity(&self) -> (u64, u64) {
        // SAFETY: `bdev()` is an open block device; its whole-disk device lives as long.
        let whole = unsafe { bindings::dmr_bdev_whole(self.bdev()) };
        // SAFETY: `whole` is a live block device; its per-CPU statistics are read without
        // a lock (summed racily, as `/sys/block/*/stat` does).
        let sectors = unsafe { bindings::dmr_part_stat_sectors(whole) } as u64;
        // SAFETY: As above; `bdev_count_inflight` sums the per-CPU counts (clamping a
        // racy negative sum to 0).
        let in_flight = unsafe { bindings::bdev_count_inflight(whole) };
        (sectors, u64::from(in_flight))
    }

    /// Size of the device in sectors.
    pub(crate) fn sectors(&self) -> u64 {
        // SAFETY: `bdev()` is an open block device.
        unsafe { bindings::dmr_bdev_nr_sectors(self.bdev()) }
    }

    /// Logical block size of the device in bytes.
    pub(crate) fn logical_block_size(&self) -> u32 {
        // SAFETY: `bdev()` is an open block device.
        unsafe { bindings::dmr_bdev_logical_block_size(self.bdev()) }
    }

    /// The device as `major:minor`, the form device-mapper tables print.
    pub(crate) fn name(&self) -> &CStr {
        // SAFETY: By the type invariant `dev` is valid; `name` is a fixed array filled in
        // by `dm_get_device()` and never changed afterwards.
        let name: &[u8] = unsafe { &(*self.dev.as_ptr()).name };
        CStr::from_bytes_until_nul(name).unwrap_or(c"?")
    }

    /// The device number (`dev_t`).
    pub(crate) fn devt(&self) -> u32 {
        // SAFETY: `bdev()` is an open block device; `bd_dev` is set when it is created and
        // never changes.
        unsafe { (*self.bdev()).bd_dev }
    }

    /// Whether `self` and `other` are the same block device.
    pub(crate) fn is_same_device(&self, other: &DmDev) -> bool {
        self.bdev() == other.bdev()
    }
}

impl Drop for DmDev {
    fn drop(&mut self) {
        // SAFETY: By the type invariants `dev` was opened on `ti`, which is still alive,
        // and this is the only release of that reference.
        unsafe { bindings::dm_put_device(self.ti.as_ptr(), self.dev.as_ptr()) };
    }
}

/// The callback device-mapper passes to `iterate_devices`, to be called once for each
/// region of an underlying device the target uses.
pub(crate) struct DeviceIter<'a> {
    ti: *mut bindings::dm_target,
    callout: bindings::iterate_devices_callout_fn,
    data: *mut c_void,
    _call: PhantomData<&'a mut ()>,
}

impl DeviceIter<'_> {
    /// # Safety
    ///
    /// The arguments must be those device-mapper passed to `iterate_devices`, valid for
    /// the duration of that call.
    pub(crate) unsafe fn new(
        ti: *mut bindings::dm_target,
        callout: bindings::iterate_devices_callout_fn,
        data: *mut c_void,
    ) -> Self {
        Self {
            ti,
            callout,
            data,
            _call: PhantomData,
        }
    }

    /// Reports that the target uses sectors `start..start + len` of `dev`; returns the
    /// callout's result, which the target must return at once when it is not zero.
    pub(crate) fn visit(&mut self, dev: &DmDev, start: u64, len: u64) -> c_int {
        match self.callout {
            // SAFETY: The callout and its arguments are valid for this `iterate_devices`
            // call (see `new`), and `dev` is open on `ti`.
            Some(f) => unsafe { f(self.ti, dev.as_raw(), start, len, self.data) },
            None => 0,
        }
    }
}

/// The queue limits device-mapper computed for the device, for a target's `io_hints`.
///
/// # Invariants
///
/// Wraps a valid `queue_limits` that the current `io_hints` call may modify.
#[repr(transparent)]
pub(crate) struct QueueLimits(Opaque<bindings::queue_limits>);

impl QueueLimits {
    /// # Safety
    ///
    /// `ptr` must be valid and exclusively ours for `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::queue_limits) -> &'a mut Self {
        // INVARIANT: The caller guarantees that the limits are valid and ours to modify for
        // `'a`, the lifetime of the returned borrow.
        // SAFETY: `repr(transparent)` over `Opaque<queue_limits>`; validity and exclusivity
        // are guaranteed by the caller.
        unsafe { &mut *ptr.cast() }
    }

    /// Makes `bytes` the smallest unit of I/O the device accepts: the logical and physical
    /// block size and the minimum I/O size become at least `bytes` (what the C inline
    /// `dm_stack_bs_limits` does for dm-integrity and dm-crypt). The block layer then
    /// builds, splits and aligns every bio to it.
    pub(crate) fn stack_block_size(&mut self, bytes: u32) {
        // SAFETY: By the type invariant the limits are valid and ours to modify.
        let l = unsafe { &mut *self.0.get() };
        l.logical_block_size = l.logical_block_size.max(bytes);
        l.physical_block_size = l.physical_block_size.max(bytes);
        l.io_min = l.io_min.max(bytes);
    }
}

/// Largest logical block size the running kernel accepts (`BLK_MAX_BLOCK_SIZE`: 64 KiB
/// when the page cache has large folios, else the page size).
pub(crate) const MAX_LOGICAL_BLOCK_SIZE: u32 = bindings::DMR_BLK_MAX_BLOCK_SIZE;
