// SPDX-License-Identifier: GPL-2.0

//! The `remap` target: table line and device-mapper callbacks.
//!
//! Table line:
//! `<start> <len> remap <main_dev> <spare_dev> <spare_start> <spare_len> [<#feature_args> <feature_arg>...]`.
//!
//! This file holds the device-mapper callbacks: the constructor, `map` and `end_io` (whose
//! bodies are `map.rs`), `status`, `message` (`message.rs`), suspend and resume. Failed
//! I/O and writes to failing or moving blocks go to a per-target worker (`worker.rs`),
//! which retries, remaps (`moves.rs`) and completes them.

use crate::dm::{
    Bio, BioQueue, BlkStatus, CtrError, DeferredBio, DeviceIter, DmDev, DmIo, EndIoResult,
    MapResult, MessageError, Operations, QueueLimits, ResultBuf, StatusType, TargetCtx,
    TargetHandle, FEATURE_NOWAIT, MAX_LOGICAL_BLOCK_SIZE,
};
use crate::instance::Core;
use crate::logic::args::{self, DeviceGeometry, TableArgs};
use crate::logic::format::Identity;
use crate::logic::layout::SpareLayout;
use crate::logic::stress::StopReason;
use crate::map::{self, FLUSH_BIOS};
use crate::message;
use crate::metadata::LoadError;
use crate::per_io::PerIo;
use crate::registry::{self, AcquireError, RegionKey, TableRef};
use crate::scan::ScanHost;
use crate::scanner::ScanRunner;
use crate::stats::DeviceStats;
use crate::stress::{Stress, StressHost};
use crate::sysfs;
use crate::table::LoadRequest;
use crate::table::RemapTable;
use crate::workqueue::OwnedQueue;
use core::fmt::Write;
use kernel::block::SECTOR_SIZE;
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};
use kernel::sync::Arc;
use kernel::workqueue::new_work;

/// One `remap` target.
pub(crate) struct RemapTarget {
    /// Declared first so it is dropped first: destroying it drains the worker, after which
    /// nothing else holds `core`.
    queue: OwnedQueue,
    core: Arc<Core>,
    /// Membership of the device's `/sys/kernel/dm_remap` directory.
    _sysfs: sysfs::Registration,
    /// Whether this table was resumed before (its `no_stats` choice is applied once).
    resumed: Atomic<bool>,
    /// Runs the background scan while this target is live (`scanner.rs`).
    scanner: Arc<ScanRunner>,
}

impl Drop for RemapTarget {
    fn drop(&mut self) {
        // A target that was live was suspended first (and detached then); one that never
        // went live was never attached. Stopping here too costs nothing. A command given
        // while the device was suspended is saved now.
        self.core
            .dev
            .stress
            .detach(self.core.id(), StopReason::Remove);
        self.stop_scan();
        crate::scanner::save(&self.core);
    }
}

impl RemapTarget {
    /// Detaches this target from the scanner and waits for its scan work to return
    /// (within one chunk).
    fn stop_scan(&self) {
        self.core.table.scan.detach(self.core.id());
        self.scanner.flush();
    }

    /// Attaches this target to the scanner: its work runs the scan from now on.
    fn attach_scan(&self) {
        let core = &*self.core;
        let host: Arc<dyn ScanHost> = self.scanner.clone();
        core.table.scan.attach(core.id(), host, core.blocks());
    }

    /// Makes sure the worker runs (soon) for what is queued.
    fn kick(&self) {
        // Already queued is fine: the worker takes everything queued when it runs.
        let _ = self
            .queue
            .queue()
            .enqueue::<Arc<Core>, 0>(self.core.clone());
    }
}

impl StressHost for Core {
    fn id(&self) -> usize {
        Core::id(self)
    }

    fn handle(&self) -> &TargetHandle {
        &self.handle
    }

    fn block_bytes(&self) -> u32 {
        self.features.block_size()
    }

    fn blocks(&self) -> u64 {
        Core::blocks(self)
    }

    fn first_sector(&self) -> u64 {
        self.begin
    }

    fn block_shift(&self) -> u32 {
        self.layout().block_shift()
    }

    fn table(&self) -> &RemapTable {
        &self.table
    }

    fn stats(&self) -> &DeviceStats {
        &self.dev.stats
    }

    fn stress(&self) -> &Stress {
        &self.dev.stress
    }

    fn remap(&self, block: u64) -> Result {
        message::remap(self, block).map(|_| ()).map_err(|e| e.errno)
    }

    fn unremap(&self, block: u64) -> Result {
        message::unremap(self, block).map_err(|e| e.errno)
    }
}

fn nomem<E>(_: E) -> CtrError {
    CtrError::new(ENOMEM, c"Cannot allocate memory")
}

fn ctr_error(e: args::ArgError) -> CtrError {
    CtrError::invalid(e.message())
}

/// The table line's words, parsed.
fn parse<'a>(argv: &[&'a CStr]) -> Result<TableArgs<'a>, CtrError> {
    let mut words = KVec::with_capacity(argv.len(), GFP_KERNEL).map_err(nomem)?;
    for a in argv {
        words.push(a.to_bytes(), GFP_KERNEL).map_err(nomem)?;
    }
    args::parse_table_args(&words).map_err(ctr_error)
}

/// The on-disk format is the standard CRC32C; a kernel whose `crc32c()` differed would make
/// every table unreadable.
fn crc_self_test() -> Result<(), CtrError> {
    if crate::logic::format::crc32c(crate::crc::crc32c_update, b"123456789") != 0xe306_9283 {
        return Err(CtrError::new(
            EINVAL,
            c"The kernel's crc32c() failed its self-test",
        ));
    }
    Ok(())
}

/// Checks the devices against the table line; returns the spare region's layout.
fn check_geometry(
    ctx: &TargetCtx<'_>,
    parsed: &TableArgs<'_>,
    main: &DmDev,
    spare: &DmDev,
) -> Result<SpareLayout, CtrError> {
    let geometry = DeviceGeometry {
        target_len: ctx.len(),
        main_sectors: main.sectors(),
        spare_sectors: spare.sectors(),
        same_device: main.is_same_device(spare),
        logical_block_size: main.logical_block_size().max(spare.logical_block_size()),
        spare_logical_block_size: spare.logical_block_size(),
        target_begin: ctx.begin(),
        max_block_size: MAX_LOGICAL_BLOCK_SIZE,
    };
    args::validate_geometry(parsed, &geometry).map_err(ctr_error)?;
    SpareLayout::new(
        parsed.spare_start,
        parsed.spare_len,
        parsed.features.block_size(),
        parsed.features.metadata_copies(),
    )
    .map_err(|_| ctr_error(args::ArgError::SpareTooSmall))
}

/// The region's table from the registry (shared with a table being replaced).
fn acquire_table(
    parsed: &TableArgs<'_>,
    layout: SpareLayout,
    main: &DmDev,
    spare: &DmDev,
) -> Result<TableRef, CtrError> {
    let key = RegionKey {
        main: main.devt(),
        spare: spare.devt(),
        spare_start: parsed.spare_start,
        spare_len: parsed.spare_len,
        block_size: parsed.features.block_size(),
        copies: layout.copies(),
    };
    registry::acquire(key, layout).map_err(|e| match e {
        AcquireError::Conflict => CtrError::new(
            EBUSY,
            c"Spare region overlaps one in use by another remap device or configuration",
        ),
        AcquireError::NoMemory => CtrError::new(ENOMEM, c"Cannot allocate the remap table"),
    })
}

/// What a failed load tells the administrator.
fn load_error(e: LoadError) -> CtrError {
    match e {
        LoadError::NoValidCopy => CtrError::invalid(
            c"No valid metadata copy in the spare region; the feature argument 'format' overwrites it",
        ),
        LoadError::Identity => CtrError::invalid(
            c"Metadata in the spare region belongs to a different main device or geometry",
        ),
        LoadError::Shorter => CtrError::invalid(
            c"Target is shorter than the one the remap table was made for; shrinking is not supported",
        ),
        LoadError::Unreadable => CtrError::new(
            EIO,
            c"The newest metadata copy cannot be read and no readable copy holds its table; not loading an older one (see dm-remap-tool check)",
        ),
        LoadError::IoUnit => CtrError::invalid(
            c"Metadata was written for a spare device with smaller logical blocks than this one",
        ),
        LoadError::Table => {
            CtrError::invalid(c"Metadata table is inconsistent (check it with dm-remap-tool)")
        }
        LoadError::Write => CtrError::new(EIO, c"Cannot write metadata to the spare device"),
        LoadError::NoMemory => CtrError::new(ENOMEM, c"Cannot allocate memory"),
    }
}

/// The constructor's part of loading: the first constructor that finds the region's
/// table not loaded loads it (or formats a blank region); a table shorter than the one
/// the metadata was made for is refused.
fn load_table(
    ctx: &TargetCtx<'_>,
    parsed: &TableArgs<'_>,
    table: &TableRef,
    main: &DmDev,
    spare: &DmDev,
    io: &DmIo,
) -> Result<(), CtrError> {
    let layout = table.layout;
    let features = &parsed.features;
    let mut w = table.writer();
    if !w.is_loaded() {
        let identity = Identity {
            copies: layout.copies(),
            block_size: features.block_size(),
            spare_start: parsed.spare_start,
            spare_len: parsed.spare_len,
            main_sectors: main.sectors(),
            target_len: ctx.len(),
            main_lbs: main.logical_block_size(),
        };
        let req = LoadRequest {
            identity,
            io_unit: spare.logical_block_size().max(SECTOR_SIZE),
            format: features.format,
            blocks: ctx.len() >> layout.block_shift(),
        };
        table.load(&mut w, spare, io, &req).map_err(load_error)?;
    }
    if table
        .metadata_target_len(&w)
        .is_some_and(|len| ctx.len() < len)
    {
        return Err(load_error(LoadError::Shorter));
    }
    Ok(())
}

#[vtable]
impl Operations for RemapTarget {
    const NAME: &'static CStr = c"remap";
    const VERSION: [u32; 3] = args::TARGET_VERSION;
    // Not PASSES_INTEGRITY, PASSES_CRYPTO, ZONED_HM or ATOMIC_WRITES as dm-linear is:
    // remapped blocks live on another device at another offset, and a bio may be split.
    const FEATURES: u64 = FEATURE_NOWAIT;

    type PerIo = PerIo;

    fn new(ctx: &mut TargetCtx<'_>, argv: &[&CStr]) -> Result<Pin<KBox<Self>>, CtrError> {
        let parsed = parse(argv)?;
        crc_self_test()?;
        let main = ctx
            .get_device(argv[0])
            .map_err(|e| CtrError::new(e, c"Cannot open main device"))?;
        let spare = ctx
            .get_device(argv[1])
            .map_err(|e| CtrError::new(e, c"Cannot open spare device"))?;
        let layout = check_geometry(ctx, &parsed, &main, &spare)?;
        let table = acquire_table(&parsed, layout, &main, &spare)?;
        let io = DmIo::new().map_err(|e| CtrError::new(e, c"Cannot create dm-io client"))?;
        load_table(ctx, &parsed, &table, &main, &spare, &io)?;
        let queue = OwnedQueue::ordered(c"dm_remap_worker")
            .map_err(|e| CtrError::new(e, c"Cannot allocate workqueue"))?;
        let registration = sysfs::register(&ctx.handle(), table.view(), !parsed.features.no_stats)
            .map_err(|(e, m)| CtrError::new(e, m))?;
        let dev = registration.device().clone();

        ctx.set_num_flush_bios(FLUSH_BIOS);
        ctx.set_num_discard_bios(1);
        ctx.set_num_write_zeroes_bios(1);

        let core = Arc::pin_init(
            pin_init!(Core {
                main,
                spare,
                begin: ctx.begin(),
                len: ctx.len(),
                spare_start: parsed.spare_start,
                spare_len: parsed.spare_len,
                features: parsed.features,
                table,
                io,
                handle: ctx.handle(),
                dev,
                deferred: BioQueue::new(),
                work <- new_work!("RemapTarget::work"),
                scan_work <- new_work!("RemapTarget::scan_work"),
            }),
            GFP_KERNEL,
        )
        .map_err(nomem)?;
        let scanner = ScanRunner::new(core.clone())
            .map_err(|e| CtrError::new(e, c"Cannot allocate the scanner's workqueue"))?;
        KBox::pin(
            RemapTarget {
                queue,
                core,
                _sysfs: registration,
                resumed: Atomic::new(false),
                scanner,
            },
            GFP_KERNEL,
        )
        .map_err(nomem)
    }

    fn map(&self, bio: &mut Bio, io: &mut PerIo) -> MapResult {
        let stats = &self.core.dev.stats;
        stats.map_start(&mut io.timing);
        let r = map::route(&self.core, bio, io);
        stats.map_end(&mut io.timing);
        r
    }

    fn end_io(&self, bio: &mut Bio, io: &mut PerIo, status: &mut BlkStatus) -> EndIoResult {
        let stats = &self.core.dev.stats;
        let start = stats.end_start(&io.timing);
        let r = map::complete(&self.core, bio, io, *status);
        if r == EndIoResult::Done {
            let bytes = u64::from(io.details.size());
            stats.completed(&io.timing, start, bytes, *status == BlkStatus::OK);
        }
        r
    }

    fn defer(&self, bio: DeferredBio<PerIo>) {
        self.core.deferred.push(bio);
        self.kick();
    }

    fn presuspend(&self) {
        // A stress run stops first: it submits I/O to the device (which the suspend waits
        // for), and its remap-heavy moves take the writer lock.
        // `dmsetup remove` marks the disk dead before it suspends.
        let why = if self.core.handle.disk_dead() {
            StopReason::Remove
        } else {
            StopReason::Suspend
        };
        self.core.dev.stress.detach(self.core.id(), why);
        // The scan stops within a chunk (and saves its position); it goes on when a
        // table of the device resumes.
        self.stop_scan();
        // Finish what the worker has; bios still in flight are waited for by
        // device-mapper and may queue more, which postsuspend finishes.
        self.queue.flush();
    }

    fn presuspend_undo(&self) {
        // The suspend was abandoned: the device stays live, and so does its scan (a
        // stress run stopped by the presuspend stays stopped).
        self.attach_scan();
        self.core.dev.stress.attach(self.core.clone());
    }

    fn postsuspend(&self) {
        self.queue.flush();
    }

    fn preresume(&self) -> Result {
        // A longer target (a grown device) is recorded in the metadata when its table goes
        // live; until then the table on disk stays valid for the shorter one.
        let core = &*self.core;
        let mut w = core.table.writer();
        match core.table.metadata_target_len(&w) {
            Some(len) if len < core.len => {
                let r =
                    core.table
                        .grow(&mut w, &core.spare, &core.io, core.len, core.main.sectors());
                if r.is_err() {
                    pr_err!(
                        "remap: cannot record the longer target in the metadata; not resumed\n"
                    );
                }
                r
            }
            _ => Ok(()),
        }
    }

    fn resume(&self) {
        // The table's instrumentation choice applies when it goes live (not when it is
        // loaded: the load may be abandoned), and only then: a later suspend and resume
        // keeps what `stats/enabled` was switched to.
        if !self.resumed.xchg(true, Relaxed) {
            let on = !self.core.features.no_stats;
            self.core.dev.stats.set_enabled(on);
        }
        self.attach_scan();
        self.core.dev.stress.attach(self.core.clone());
    }

    fn status(&self, kind: StatusType, out: &mut ResultBuf<'_>) {
        // A full buffer makes device-mapper retry with a larger one; nothing to handle.
        let _ = match kind {
            StatusType::Info => self.write_info(out),
            StatusType::Table => self.write_table(out),
            StatusType::Ima => self.write_ima(out),
        };
    }

    fn message(&self, argv: &[&CStr], out: &mut ResultBuf<'_>) -> Result<(), MessageError> {
        #[cfg(dmr_test_hooks)]
        if let Some(r) = crate::test_hooks::message(&self.core, argv, out) {
            return r;
        }
        let r = message::handle(&self.core, argv, out);
        // Writes that waited for a block being moved can go on now.
        if !self.core.deferred.is_empty() {
            self.kick();
        }
        r
    }

    fn io_hints(&self, limits: &mut QueueLimits) {
        // Every bio covers whole blocks: no write can end inside a block whose other part
        // cannot be read (docs/design.md, "Whole-block I/O").
        limits.stack_block_size(self.core.features.block_size());
    }

    fn iterate_devices(&self, iter: &mut DeviceIter<'_>) -> c_int {
        let core = &*self.core;
        match iter.visit(&core.main, 0, core.len) {
            0 => iter.visit(&core.spare, core.spare_start, core.spare_len),
            r => r,
        }
    }
}

impl RemapTarget {
    fn write_info(&self, out: &mut ResultBuf<'_>) -> core::fmt::Result {
        let core = &*self.core;
        let s = &core.table;
        let v = s.view();
        let c = &s.counters;
        let spare_state = if v.exhausted() { "exhausted" } else { "ok" };
        let scan = &s.scan;
        write!(
            out,
            "{}/{} {} {} {} {} {} {} {} {}/{} {} {} {} {} {} {} {} {} {}",
            s.remapped(),
            s.layout.data_blocks(),
            spare_state,
            c.read_errors.load(Relaxed),
            c.write_errors.load(Relaxed),
            c.auto_remaps.load(Relaxed),
            c.manual_remaps.load(Relaxed),
            s.failing(),
            c.spare_errors.load(Relaxed),
            v.copies_valid(),
            s.layout.copies(),
            v.seq(),
            v.bytes_written(),
            v.frozen(),
            scan.state().name(),
            scan.position.load(Relaxed),
            scan.passes.load(Relaxed),
            scan.unreadable.load(Relaxed),
            scan.slow.load(Relaxed),
            scan.relocated.load(Relaxed)
        )
    }

    fn write_table(&self, out: &mut ResultBuf<'_>) -> core::fmt::Result {
        let core = &*self.core;
        write!(
            out,
            "{} {} {} {}",
            core.main.name().to_str().unwrap_or("?"),
            core.spare.name().to_str().unwrap_or("?"),
            core.spare_start,
            core.spare_len
        )?;
        core.features.write_table_args(out)
    }

    fn write_ima(&self, out: &mut ResultBuf<'_>) -> core::fmt::Result {
        let core = &*self.core;
        let [a, b, c] = Self::VERSION;
        write!(
            out,
            "target_name=remap,target_version={a}.{b}.{c},main_device_name={},spare_device_name={},spare_start={},spare_len={},block_size={},remapped={},failing={};",
            core.main.name().to_str().unwrap_or("?"),
            core.spare.name().to_str().unwrap_or("?"),
            core.spare_start,
            core.spare_len,
            core.features.block_size(),
            core.table.remapped(),
            core.table.failing()
        )
    }
}
