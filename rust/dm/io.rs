// SPDX-License-Identifier: GPL-2.0

//! Synchronous block I/O through the kernel's dm-io service.

use super::DmDev;
use crate::bindings;
use core::ptr::NonNull;
use kernel::alloc::KVVec;
use kernel::prelude::*;

/// A data buffer for [`DmIo`]: kmalloc or vmalloc memory (never the stack), a whole
/// number of sectors long.
pub(crate) struct IoBuffer(KVVec<u8>);

impl IoBuffer {
    /// A zero-filled buffer of `bytes` (a multiple of 512). It is allocated as with
    /// `GFP_NOIO`: callers are on a block device's I/O path, where reclaim must not
    /// write back through the device waiting for this memory.
    pub(crate) fn new(bytes: usize) -> Result<Self> {
        if bytes == 0 || bytes % 512 != 0 {
            return Err(EINVAL);
        }
        // SAFETY: No preconditions; the matching restore follows below.
        let flags = unsafe { bindings::dmr_memalloc_noio_save() };
        let v = KVVec::with_capacity(bytes, GFP_KERNEL).and_then(|mut v| {
            v.resize(bytes, 0, GFP_KERNEL)?;
            Ok(v)
        });
        // SAFETY: Restores what the save above returned, in the same task.
        unsafe { bindings::dmr_memalloc_noio_restore(flags) };
        Ok(Self(v?))
    }

    /// The bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// The bytes, mutably.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.0
    }

    /// Pointer to `offset..offset + len`, which must be a non-empty whole number of
    /// sectors inside the buffer.
    fn range(&mut self, offset: usize, len: usize) -> Result<*mut u8> {
        let end = offset.checked_add(len).ok_or(EINVAL)?;
        if offset % 512 != 0 || len % 512 != 0 || len == 0 || end > self.0.len() {
            return Err(EINVAL);
        }
        // SAFETY: `offset` is within the buffer (checked above).
        Ok(unsafe { self.0.as_mut_ptr().add(offset) })
    }
}

/// A dm-io client (its own mempools, so I/O on the remap path cannot deadlock on memory).
///
/// # Invariants
///
/// `client` came from `dm_io_client_create` and is destroyed on drop.
pub(crate) struct DmIo {
    client: NonNull<bindings::dm_io_client>,
}

// SAFETY: dm-io clients may be used from any thread in process context.
unsafe impl Send for DmIo {}
// SAFETY: As above; dm-io synchronises its mempools.
unsafe impl Sync for DmIo {}

impl DmIo {
    /// Creates a client.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: No preconditions; returns a client or an ERR_PTR.
        let p = kernel::error::from_err_ptr(unsafe { bindings::dm_io_client_create() })?;
        Ok(Self {
            client: NonNull::new(p).ok_or(ENOMEM)?,
        })
    }

    /// One synchronous request `opf` over `buf[offset..offset + len]` at `sector` of `dev`.
    fn io(
        &self,
        dev: &DmDev,
        sector: u64,
        buf: &mut IoBuffer,
        offset: usize,
        len: usize,
        opf: u32,
    ) -> Result {
        let p = buf.range(offset, len)?;
        // SAFETY: The client is valid (type invariant), `dev` is open, and `p` points to
        // `len` bytes of a kmalloc/vmalloc buffer (checked by `IoBuffer::range`). dm-io
        // waits for completion before returning.
        kernel::error::to_result(unsafe {
            bindings::dmr_io_sync(
                self.client.as_ptr(),
                dev.bdev(),
                sector,
                (len / 512) as u64,
                opf,
                p.cast(),
            )
        })
    }

    /// Reads `len` bytes at `sector` of `dev` into `buf[offset..offset + len]`. Sleeps.
    pub(crate) fn read(
        &self,
        dev: &DmDev,
        sector: u64,
        buf: &mut IoBuffer,
        offset: usize,
        len: usize,
    ) -> Result {
        self.io(dev, sector, buf, offset, len, bindings::DMR_REQ_OP_READ)
    }

    /// Writes `buf[offset..offset + len]` at `sector` of `dev`; with `fua` the data is on
    /// stable media when this returns. Sleeps.
    pub(crate) fn write(
        &self,
        dev: &DmDev,
        sector: u64,
        buf: &mut IoBuffer,
        offset: usize,
        len: usize,
        fua: bool,
    ) -> Result {
        self.io(dev, sector, buf, offset, len, write_opf(fua))
    }
}

impl DmIo {
    /// Writes `buf[offset..offset + len]` to each of `sectors` of `dev` in parallel (with
    /// FUA when asked). Returns which regions failed, one bit per region.
    pub(crate) fn write_regions(
        &self,
        dev: &DmDev,
        sectors: &[u64],
        buf: &mut IoBuffer,
        offset: usize,
        len: usize,
        fua: bool,
    ) -> Result<u64> {
        if sectors.is_empty() || sectors.len() > bindings::DMR_MAX_COPIES_C as usize {
            return Err(EINVAL);
        }
        let p = buf.range(offset, len)?;
        let opf = write_opf(fua);
        let mut bits: c_ulong = 0;
        // SAFETY: The client is valid, `dev` is open, `sectors` has `sectors.len()` entries
        // (checked against the helper's limit), `p` points to `len` bytes of an `IoBuffer`,
        // and `bits` is a valid out-pointer. dm-io waits for completion.
        unsafe {
            bindings::dmr_io_sync_regions(
                self.client.as_ptr(),
                dev.bdev(),
                sectors.as_ptr(),
                sectors.len() as u32,
                (len / 512) as u64,
                opf,
                p.cast(),
                &mut bits,
            )
        };
        Ok(bits as u64)
    }
}

/// The operation and flags of a synchronous write, FUA when asked.
fn write_opf(fua: bool) -> u32 {
    let opf = bindings::DMR_REQ_OP_WRITE | bindings::DMR_REQ_SYNC;
    if fua {
        opf | bindings::DMR_REQ_FUA
    } else {
        opf
    }
}

impl Drop for DmIo {
    fn drop(&mut self) {
        // SAFETY: The client is valid and no I/O is in flight (all I/O is synchronous).
        unsafe { bindings::dm_io_client_destroy(self.client.as_ptr()) };
    }
}
