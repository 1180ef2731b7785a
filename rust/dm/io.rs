// SPDX-License-Identifier: GPL-2.0

//! Synchronous block I/O: metadata through the kernel's dm-io service, block data with
//! one bio on the stack that reports the block layer's status.

use super::{BlkStatus, DmDev};
use crate::logic::args::MAX_METADATA_COPIES;
use crate::rust::bindings;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ops::Range;
use core::ptr::NonNull;
use kernel::alloc::KVVec;
use kernel::block::SECTOR_SIZE;
use kernel::prelude::*;

/// [`SECTOR_SIZE`] for byte counts and offsets in memory.
const SECTOR_BYTES: usize = SECTOR_SIZE as usize;

/// Most regions of one [`DmIo`] request: one per metadata copy.
const MAX_REGIONS: usize = MAX_METADATA_COPIES as usize;

// `write_regions` returns one bit per region in a `u64` (and dm-io one per region in an
// `unsigned long`), and sets them all with `(1 << n) - 1`.
const _: () = assert!(MAX_REGIONS < 64);

/// A scope in which every memory allocation of the current task behaves as `GFP_NOIO`
/// (`memalloc_noio_save`): code on a block device's error path must not let reclaim write
/// back through the device that is waiting for it. Ends when dropped, in the same task.
pub(crate) struct NoIo {
    flags: c_uint,
    /// The saved flags belong to this task: not `Send`.
    _task: PhantomData<*mut ()>,
}

impl NoIo {
    /// Enters the scope.
    pub(crate) fn enter() -> Self {
        // SAFETY: No preconditions; `drop` restores the returned flags in this task.
        let flags = unsafe { bindings::dmr_memalloc_noio_save() };
        Self {
            flags,
            _task: PhantomData,
        }
    }
}

impl Drop for NoIo {
    fn drop(&mut self) {
        // SAFETY: Restores what `enter` saved, in the same task (`NoIo` is not `Send`).
        unsafe { bindings::dmr_memalloc_noio_restore(self.flags) };
    }
}

/// A data buffer for [`DmIo`]: kmalloc or vmalloc memory (never the stack), a whole
/// number of sectors long.
pub(crate) struct IoBuffer(KVVec<u8>);

impl IoBuffer {
    /// A zero-filled buffer of `bytes` (a whole number of sectors). It is allocated as with
    /// `GFP_NOIO`: callers are on a block device's I/O path, where reclaim must not
    /// write back through the device waiting for this memory.
    pub(crate) fn new(bytes: usize) -> Result<Self> {
        if bytes == 0 || bytes % SECTOR_BYTES != 0 {
            return Err(EINVAL);
        }
        zeroed(bytes).map(Self)
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
        if offset % SECTOR_BYTES != 0 || len % SECTOR_BYTES != 0 || len == 0 || end > self.0.len() {
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

// SAFETY: A dm-io client has no thread affinity: it may be destroyed (dropped) on any
// thread.
unsafe impl Send for DmIo {}
// SAFETY: The `&self` methods submit synchronous dm-io requests on the client; dm-io allows
// concurrent requests on one client (its mempools and bio set synchronise themselves).
unsafe impl Sync for DmIo {}

impl DmIo {
    /// Creates a client.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: No preconditions; returns a client or an ERR_PTR.
        let p = kernel::error::from_err_ptr(unsafe { bindings::dm_io_client_create() })?;
        // INVARIANT: `p` is a client `dm_io_client_create` made; only `drop` destroys it.
        Ok(Self {
            client: NonNull::new(p).ok_or(ENOMEM)?,
        })
    }

    /// One synchronous dm-io request `op` over `buf[offset..offset + len]` to (or from)
    /// each of `sectors` of `dev`, in parallel. Returns dm-io's result (0 or a negative
    /// errno) and the regions that failed, bit `i` for `sectors[i]`.
    ///
    /// The request and the regions live on this stack; `dm_io` waits for the I/O because no
    /// notify function is given.
    fn sync_io(
        &self,
        dev: &DmDev,
        sectors: &[u64],
        buf: &mut IoBuffer,
        offset: usize,
        len: usize,
        op: Request,
    ) -> Result<(c_int, c_ulong)> {
        let Request { opf, ioprio } = op;
        if sectors.is_empty() || sectors.len() > MAX_REGIONS {
            return Err(EINVAL);
        }
        let p = buf.range(offset, len)?;
        let count = (len / SECTOR_BYTES) as u64;
        let mut regions = [bindings::dm_io_region {
            bdev: core::ptr::null_mut(),
            sector: 0,
            count: 0,
        }; MAX_REGIONS];
        for (region, &sector) in regions.iter_mut().zip(sectors) {
            *region = bindings::dm_io_region {
                bdev: dev.bdev(),
                sector,
                count,
            };
        }
        // SAFETY: `is_vmalloc_addr` only compares the address with the vmalloc range.
        let mem_type = if unsafe { kernel::bindings::is_vmalloc_addr(p.cast()) } {
            bindings::dm_io_mem_type_DM_IO_VMA
        } else {
            bindings::dm_io_mem_type_DM_IO_KMEM
        };
        let mut req = bindings::dm_io_request {
            bi_opf: opf,
            mem: bindings::dm_io_memory {
                type_: mem_type,
                offset: 0,
                ptr: bindings::dm_io_memory__bindgen_ty_1 { addr: p.cast() },
            },
            // No notify function: `dm_io` is synchronous.
            notify: bindings::dm_io_notify {
                fn_: None,
                context: core::ptr::null_mut(),
            },
            client: self.client.as_ptr(),
        };
        let mut bits: c_ulong = 0;
        // SAFETY: The client is valid (type invariant) and `dev` is open. `req` describes
        // `len` bytes at `p`, inside `buf` (checked by `IoBuffer::range`), which is kmalloc
        // or vmalloc memory (never the stack) of the type `mem_type` says and is borrowed
        // mutably until this returns; `regions` has `sectors.len()` filled entries (at most
        // `MAX_REGIONS`, checked above), each `count` sectors; `bits` is a valid
        // out-pointer and the unsupported-bits pointer may be NULL. Without a notify
        // function `dm_io` returns only when every region's I/O has completed.
        let r = unsafe {
            bindings::dm_io(
                &mut req,
                sectors.len() as c_uint,
                regions.as_mut_ptr(),
                &mut bits,
                core::ptr::null_mut(),
                ioprio,
            )
        };
        Ok((r, bits))
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
        let (r, _) = self.sync_io(dev, &[sector], buf, offset, len, Request::new(opf))?;
        kernel::error::to_result(r)
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

    /// [`DmIo::read`] in the idle I/O priority class: the I/O scheduler serves it when
    /// nothing else waits (the background scanner's reads). Sleeps.
    pub(crate) fn read_idle(
        &self,
        dev: &DmDev,
        sector: u64,
        buf: &mut IoBuffer,
        offset: usize,
        len: usize,
    ) -> Result {
        let op = Request {
            opf: bindings::DMR_REQ_OP_READ,
            ioprio: IOPRIO_IDLE,
        };
        let (r, _) = self.sync_io(dev, &[sector], buf, offset, len, op)?;
        kernel::error::to_result(r)
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
        let opf = write_opf(fua);
        let (r, bits) = self.sync_io(dev, sectors, buf, offset, len, Request::new(opf))?;
        // dm-io can fail before it sends anything, leaving no bit set: every region failed.
        if r != 0 && bits == 0 {
            return Ok((1u64 << sectors.len()) - 1);
        }
        Ok(bits as u64)
    }
}

/// I/O priorities of dm-io requests.
const IOPRIO_DEFAULT: u16 = bindings::DMR_IOPRIO_DEFAULT;
const IOPRIO_IDLE: u16 = bindings::DMR_IOPRIO_IDLE;

/// A dm-io request's operation and flags, and its I/O priority.
#[derive(Clone, Copy)]
struct Request {
    opf: u32,
    ioprio: u16,
}

impl Request {
    /// `opf` at the default priority.
    fn new(opf: u32) -> Self {
        Self {
            opf,
            ioprio: IOPRIO_DEFAULT,
        }
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

/// `bytes` zeroes from allocator `A`, allocated as with `GFP_NOIO` (see [`NoIo`]).
fn zeroed<A: kernel::alloc::Allocator>(bytes: usize) -> Result<kernel::alloc::Vec<u8, A>> {
    let _noio = NoIo::enter();
    let mut v = kernel::alloc::Vec::with_capacity(bytes, GFP_KERNEL)?;
    v.resize(bytes, 0, GFP_KERNEL)?;
    Ok(v)
}

/// A buffer for block data ([`rw_block`]): one kmalloc allocation, physically contiguous,
/// so one bio segment carries it, and aligned to its power-of-two size.
pub(crate) struct BlockBuffer(KVec<u8>);

/// Largest [`BlockBuffer`] (the largest remap block).
pub(crate) const MAX_BLOCK_BUFFER: usize = 64 * 1024;

impl BlockBuffer {
    /// A zero-filled buffer of `bytes`, a power of two from one sector to [`MAX_BLOCK_BUFFER`],
    /// allocated as with `GFP_NOIO` (see [`NoIo`]).
    pub(crate) fn new(bytes: usize) -> Result<Self> {
        if !bytes.is_power_of_two() || !(SECTOR_BYTES..=MAX_BLOCK_BUFFER).contains(&bytes) {
            return Err(EINVAL);
        }
        zeroed(bytes).map(Self)
    }

    /// The bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// The bytes, mutably.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

/// What [`rw_block`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DataOp {
    /// Read from the device into the buffer.
    Read,
    /// Write the buffer to the device; with `fua` the data is on stable media when the
    /// call returns.
    Write {
        /// Force unit access.
        fua: bool,
    },
}

/// Reads or writes `buf[range]` (whole sectors) at `sector` of `dev` with one bio and
/// waits for it. Sleeps; allocates no bio (it lives on this stack, as in the block layer's
/// `bdev_rw_virt`; the layers below may allocate, as for any bio).
///
/// Unlike dm-io, which reports every failure as `EIO`, this returns the block layer's own
/// status: the caller must tell a bad block (`IOERR`, `MEDIUM`) from a lost path or an
/// offline device, which must not be remapped.
pub(crate) fn rw_block(
    dev: &DmDev,
    sector: u64,
    buf: &mut BlockBuffer,
    range: Range<usize>,
    op: DataOp,
) -> Result<(), BlkStatus> {
    if range.is_empty() || range.start % SECTOR_BYTES != 0 || range.len() % SECTOR_BYTES != 0 {
        return Err(BlkStatus::INVAL);
    }
    let data = buf
        .0
        .get_mut(range.clone())
        .ok_or(BlkStatus::INVAL)?
        .as_mut_ptr();
    let opf = match op {
        DataOp::Read => bindings::DMR_REQ_OP_READ,
        DataOp::Write { fua } => write_opf(fua),
    };
    let mut bvec = MaybeUninit::<bindings::bio_vec>::zeroed();
    let mut bio = MaybeUninit::<bindings::bio>::zeroed();
    let b = bio.as_mut_ptr();
    // SAFETY: `bio_init` initialises the zeroed bio with room for the one bvec, for the
    // open device `dev`. `data` points to `range.len()` bytes of a kmalloc buffer (a
    // direct-map address `virt_to_page` accepts) inside `buf`, which this function
    // borrows mutably until the I/O is over: `submit_bio_wait` returns only when the bio
    // completed, and `bio_uninit` then releases what `bio_init` took. Neither the bio nor
    // the bvec moves meanwhile.
    let status = unsafe {
        bindings::bio_init(b, dev.bdev(), bvec.as_mut_ptr(), 1, opf);
        (*b).bi_iter.bi_sector = sector;
        bindings::bio_add_virt_nofail(b, data.cast(), range.len() as c_uint);
        bindings::submit_bio_wait(b);
        let status = (*b).bi_status;
        bindings::bio_uninit(b);
        status
    };
    match BlkStatus(status) {
        BlkStatus::OK => Ok(()),
        s => Err(s),
    }
}
