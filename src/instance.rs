// SPDX-License-Identifier: GPL-2.0

//! One target instance's shared parts ([`Core`]): its devices, its spare region's table,
//! its worker queue and device statistics, with the block I/O and counting helpers that the
//! worker (`worker.rs`), moves (`moves.rs`) and messages (`message.rs`) share.

use crate::clock::now_ns;
use crate::dm::{rw_block, BioQueue, BlkStatus, BlockBuffer, DataOp, DmDev, DmIo, TargetHandle};
use crate::logic::args::Features;
use crate::logic::format::Change;
use crate::logic::layout::SpareLayout;
use crate::logic::stats::Slot;
use crate::per_io::PerIo;
use crate::registry::TableRef;
use crate::sysfs;
use crate::table::{Counters, Writer};
use core::ops::Range;
use kernel::block::SECTOR_SHIFT;
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::workqueue::{impl_has_work, Work};

/// The parts of a target that its worker uses too.
#[pin_data]
pub(crate) struct Core {
    pub(crate) main: DmDev,
    pub(crate) spare: DmDev,
    /// First sector of the target in the dm device (`ti->begin`).
    pub(crate) begin: u64,
    /// Length of the target in sectors; it maps main sectors `0..len`.
    pub(crate) len: u64,
    pub(crate) spare_start: u64,
    pub(crate) spare_len: u64,
    pub(crate) features: Features,
    pub(crate) table: TableRef,
    pub(crate) io: DmIo,
    pub(crate) handle: TargetHandle,
    /// The dm device's counters and sysfs files (shared with its other targets).
    pub(crate) dev: Arc<sysfs::Device>,
    /// Bios waiting for the worker.
    pub(crate) deferred: BioQueue<PerIo>,
    /// The worker's work item (`worker.rs` implements `WorkItem` for `Core`).
    #[pin]
    pub(crate) work: Work<Core>,
    /// The background scan's work item (`scanner.rs` implements `WorkItem<1>`).
    #[pin]
    pub(crate) scan_work: Work<Core, 1>,
}

impl_has_work! {
    impl HasWork<Self> for Core { self.work }
    impl HasWork<Self, 1> for Core { self.scan_work }
}

/// Events counted both in the table's counters (`dmsetup status`, kept with the table
/// across reloads) and in the device's statistics (sysfs, reset with `stats/reset`).
#[derive(Clone, Copy)]
pub(crate) enum Event {
    MainReadError,
    MainWriteError,
    SpareError,
    AutoRemap,
    ManualRemap,
}

impl Core {
    /// Identifies this target instance while it exists (its address; only compared).
    pub(crate) fn id(&self) -> usize {
        core::ptr::from_ref(self) as usize
    }

    /// The layout of the spare region.
    pub(crate) fn layout(&self) -> &SpareLayout {
        &self.table.layout
    }

    /// Number of main blocks the target maps.
    pub(crate) fn blocks(&self) -> u64 {
        self.len >> self.layout().block_shift()
    }

    /// Bytes in a block.
    pub(crate) fn block_bytes(&self) -> usize {
        self.features.block_size() as usize
    }

    /// Counts `e`.
    pub(crate) fn count(&self, e: Event) {
        let c = &self.table.counters;
        let (counter, slot) = match e {
            Event::MainReadError => (&c.read_errors, Slot::MainReadErrors),
            Event::MainWriteError => (&c.write_errors, Slot::MainWriteErrors),
            Event::SpareError => (&c.spare_errors, Slot::SpareErrors),
            Event::AutoRemap => (&c.auto_remaps, Slot::AutoRemaps),
            Event::ManualRemap => (&c.manual_remaps, Slot::ManualRemaps),
        };
        Counters::inc(counter);
        self.dev.stats.count(slot);
    }

    /// Commits `changes` to the metadata, timed and counted in the device's statistics.
    pub(crate) fn commit(&self, w: &mut Writer, changes: &[Change]) -> Result {
        let table = &self.table;
        let view = table.view();
        let (start, bytes) = (now_ns(), view.bytes_written());
        let r = table.commit(w, &self.spare, &self.io, changes);
        if r.is_ok() {
            let written = view.bytes_written().wrapping_sub(bytes);
            self.dev
                .stats
                .commit_done(now_ns().saturating_sub(start), written);
        }
        r
    }

    /// The device and first sector where the data of main block `block` is read from when
    /// its read location is `loc` (a spare block or the main device).
    pub(crate) fn location(&self, block: u64, loc: Option<u64>) -> (&DmDev, u64) {
        match loc {
            Some(s) => (&self.spare, self.layout().block_sector(s)),
            None => (&self.main, block << self.layout().block_shift()),
        }
    }

    /// Reads `buf[range]` of block `block` from `loc`, retrying medium errors as
    /// configured.
    pub(crate) fn read_block_part(
        &self,
        block: u64,
        loc: Option<u64>,
        buf: &mut BlockBuffer,
        range: Range<usize>,
    ) -> Result<(), BlkStatus> {
        if range.is_empty() {
            return Ok(());
        }
        let (dev, base) = self.location(block, loc);
        let sector = base + (range.start >> SECTOR_SHIFT) as u64;
        let mut r = Err(BlkStatus::IOERR);
        for _ in 0..=self.features.read_retries() {
            r = rw_block(dev, sector, buf, range.clone(), DataOp::Read);
            match r {
                Err(s) if s.is_medium_error() => {}
                _ => break,
            }
        }
        r
    }
}
