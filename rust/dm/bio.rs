// SPDX-License-Identifier: GPL-2.0

//! The bio a target maps, completes or splits.

use super::DmDev;
use crate::bindings;
use kernel::types::Opaque;

/// log2 of the sector size: every bio position and length is counted in 512-byte sectors.
pub(crate) const SECTOR_SHIFT: u32 = 9;

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

/// A block-layer completion status (`blk_status_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlkStatus(pub(crate) bindings::blk_status_t);

impl BlkStatus {
    /// Success.
    pub(crate) const OK: Self = Self(bindings::DMR_BLK_STS_OK);
    /// Generic I/O error.
    pub(crate) const IOERR: Self = Self(bindings::DMR_BLK_STS_IOERR);
    /// Out of space (used when no spare block is left).
    pub(crate) const NOSPC: Self = Self(bindings::DMR_BLK_STS_NOSPC);

    /// Whether this is success.
    pub(crate) fn is_ok(self) -> bool {
        self == Self::OK
    }
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

    /// Whether the bio asks for a cache flush before it (`REQ_PREFLUSH`).
    pub(crate) fn is_preflush(&self) -> bool {
        self.opf() & bindings::DMR_REQ_PREFLUSH != 0
    }

    /// Whether the bio's data must be on stable media when it completes (`REQ_FUA`).
    pub(crate) fn is_fua(&self) -> bool {
        self.opf() & bindings::DMR_REQ_FUA != 0
    }

    /// Whether the submitter must not be blocked (`REQ_NOWAIT`).
    pub(crate) fn is_nowait(&self) -> bool {
        self.opf() & bindings::DMR_REQ_NOWAIT != 0
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
