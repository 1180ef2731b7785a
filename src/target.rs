// SPDX-License-Identifier: GPL-2.0

//! The `remap` target: table line, I/O path and messages.
//!
//! Table line:
//! `<start> <len> remap <main_dev> <spare_dev> <spare_start> <spare_len> [<#feature_args> <feature_arg>...]`.
//!
//! `map` sends every bio to where its blocks live (see `logic::route`), accepting only the
//! front of a bio that reaches a remapped block. Failed I/O and writes to failing or moving
//! blocks are handed to a per-target worker (`remap.rs`), which retries, remaps and
//! completes them.

use crate::dm::{
    Bio, BioQueue, BlkStatus, CtrError, DeferredBio, DeviceIter, DmDev, DmIo, EndIoResult,
    MapResult, MessageError, Operations, QueueLimits, ReqOp, ResultBuf, StatusType, TargetCtx,
    TargetHandle, FEATURE_NOWAIT, MAX_LOGICAL_BLOCK_SIZE,
};
use crate::logic::args::{self, DeviceGeometry, Features};
use crate::logic::format::Identity;
use crate::logic::layout::SpareLayout;
use crate::logic::route::{self, Access, Destination, Route};
use crate::logic::stats::Slot;
use crate::metadata::LoadError;
use crate::per_io::PerIo;
use crate::state::{self, AcquireError, LoadRequest, StateKey, StateRef};
use crate::stats::IoKind;
use crate::sysfs;
use crate::workqueue::OrderedQueue;
use core::fmt::Write;
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};
use kernel::sync::Arc;
use kernel::workqueue::{impl_has_work, new_work, Work, WorkItem};

/// Which flush bio goes where: device-mapper sends `FLUSH_BIOS` empty flushes per flush,
/// numbered by `target_bio_nr`. Number 0 goes to the main device, number 1 to the spare.
const FLUSH_BIO_MAIN: u32 = 0;
const FLUSH_BIOS: u32 = 2;

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
    pub(crate) state: StateRef,
    pub(crate) io: DmIo,
    pub(crate) handle: TargetHandle,
    /// The dm device's counters and sysfs files (shared with its other targets).
    pub(crate) dev: Arc<sysfs::Device>,
    /// Bios waiting for the worker.
    pub(crate) deferred: BioQueue<PerIo>,
    #[pin]
    work: Work<Core>,
}

impl_has_work! {
    impl HasWork<Self> for Core { self.work }
}

impl WorkItem for Core {
    type Pointer = Arc<Core>;

    fn run(this: Arc<Core>) {
        this.run_worker();
    }
}

impl Core {
    /// The layout of the spare region.
    pub(crate) fn layout(&self) -> &SpareLayout {
        &self.state.layout
    }

    /// Number of main blocks the target maps.
    pub(crate) fn blocks(&self) -> u64 {
        self.len >> self.layout().block_shift()
    }

    /// Bytes in a block.
    pub(crate) fn block_bytes(&self) -> usize {
        self.features.block_size() as usize
    }
}

/// One `remap` target.
pub(crate) struct RemapTarget {
    /// Declared first so it is dropped first: destroying it drains the worker, after which
    /// nothing else holds `core`.
    queue: OrderedQueue,
    core: Arc<Core>,
    /// Membership of the device's `/sys/kernel/dm_remap` directory.
    _sysfs: sysfs::Registration,
    /// Whether this table was resumed before (its `no_stats` choice is applied once).
    resumed: Atomic<bool>,
}

impl RemapTarget {
    /// Makes sure the worker runs (soon) for what is queued.
    fn kick(&self) {
        // Already queued is fine: the worker takes everything queued when it runs.
        let _ = self.queue.queue().enqueue(self.core.clone());
    }
}

fn nomem<E>(_: E) -> CtrError {
    CtrError::new(ENOMEM, c"Cannot allocate memory")
}

fn ctr_error(e: args::ArgError) -> CtrError {
    CtrError::invalid(e.message())
}

/// The constructor's part of loading: the first constructor that finds the state's
/// table not loaded loads it (or formats a blank region); a table shorter than the one
/// the metadata was made for is refused.
fn load_table(
    ctx: &TargetCtx<'_>,
    state: &StateRef,
    spare: &DmDev,
    io: &DmIo,
    main: &DmDev,
    features: &Features,
) -> Result<(), CtrError> {
    let layout = state.layout;
    let mut w = state.writer();
    if w.meta.is_none() {
        let identity = Identity {
            copies: layout.copies(),
            block_size: features.block_size(),
            spare_start: state.key.spare_start,
            spare_len: state.key.spare_len,
            main_sectors: main.sectors(),
            target_len: ctx.len(),
            main_lbs: main.logical_block_size(),
        };
        let req = LoadRequest {
            identity,
            io_unit: spare.logical_block_size().max(512),
            format: features.format,
            blocks: ctx.len() >> layout.block_shift(),
        };
        state
            .load(&mut w, spare, io, &req)
            .map_err(|e| match e {
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
                    c"The newest metadata copy cannot be read and no readable copy holds its state; not loading an older one (see dm-remap-tool check)",
                ),
                LoadError::IoUnit => CtrError::invalid(
                    c"Metadata was written for a spare device with smaller logical blocks than this one",
                ),
                LoadError::Table => {
                    CtrError::invalid(c"Metadata table is inconsistent (check it with dm-remap-tool)")
                }
                LoadError::Write => CtrError::new(EIO, c"Cannot write metadata to the spare device"),
                LoadError::NoMemory => CtrError::new(ENOMEM, c"Cannot allocate memory"),
            })?;
    }
    if state
        .metadata_target_len(&w)
        .is_some_and(|len| ctx.len() < len)
    {
        return Err(CtrError::invalid(
            c"Target is shorter than the one the remap table was made for; shrinking is not supported",
        ));
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
        let mut words = KVec::with_capacity(argv.len(), GFP_KERNEL).map_err(nomem)?;
        for a in argv {
            words.push(a.to_bytes(), GFP_KERNEL).map_err(nomem)?;
        }
        let parsed = args::parse_table_args(&words).map_err(ctr_error)?;
        // The on-disk format is the standard CRC32C; a kernel whose crc32c() differed would
        // make every table unreadable.
        if crate::logic::format::crc32c(crate::crc::crc32c_update, b"123456789") != 0xe306_9283 {
            return Err(CtrError::new(
                EINVAL,
                c"The kernel's crc32c() failed its self-test",
            ));
        }

        let main = ctx
            .get_device(argv[0])
            .map_err(|e| CtrError::new(e, c"Cannot open main device"))?;
        let spare = ctx
            .get_device(argv[1])
            .map_err(|e| CtrError::new(e, c"Cannot open spare device"))?;
        let geometry = DeviceGeometry {
            target_len: ctx.len(),
            main_sectors: main.sectors(),
            spare_sectors: spare.sectors(),
            same_device: main.is_same_device(&spare),
            logical_block_size: main.logical_block_size().max(spare.logical_block_size()),
            spare_logical_block_size: spare.logical_block_size(),
            target_begin: ctx.begin(),
            max_block_size: MAX_LOGICAL_BLOCK_SIZE,
        };
        args::validate_geometry(&parsed, &geometry).map_err(ctr_error)?;
        let block_size = parsed.features.block_size();
        let layout = SpareLayout::new(
            parsed.spare_start,
            parsed.spare_len,
            block_size,
            parsed.features.metadata_copies(),
        )
        .map_err(|_| ctr_error(args::ArgError::SpareTooSmall))?;

        let key = StateKey {
            main: main.devt(),
            spare: spare.devt(),
            spare_start: parsed.spare_start,
            spare_len: parsed.spare_len,
            block_size,
            copies: layout.copies(),
        };
        let state = state::acquire(key, layout).map_err(|e| match e {
            AcquireError::Conflict => CtrError::new(
                EBUSY,
                c"Spare region overlaps one in use by another remap device or configuration",
            ),
            AcquireError::NoMemory => CtrError::new(ENOMEM, c"Cannot allocate the remap table"),
        })?;
        let io = DmIo::new().map_err(|e| CtrError::new(e, c"Cannot create dm-io client"))?;
        load_table(ctx, &state, &spare, &io, &main, &parsed.features)?;
        let queue = OrderedQueue::new(c"dm_remap_worker")
            .map_err(|e| CtrError::new(e, c"Cannot allocate workqueue"))?;
        let registration = sysfs::register(&ctx.handle(), state.arc(), !parsed.features.no_stats)
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
                state,
                io,
                handle: ctx.handle(),
                dev,
                deferred: BioQueue::new(),
                work <- new_work!("RemapTarget::work"),
            }),
            GFP_KERNEL,
        )
        .map_err(nomem)?;
        KBox::pin(
            RemapTarget {
                queue,
                core,
                _sysfs: registration,
                resumed: Atomic::new(false),
            },
            GFP_KERNEL,
        )
        .map_err(nomem)
    }

    fn map(&self, bio: &mut Bio, io: &mut PerIo) -> MapResult {
        let stats = &self.core.dev.stats;
        stats.map_start(&mut io.timing);
        let r = self.map_bio(bio, io);
        stats.map_end(&mut io.timing);
        r
    }

    fn end_io(&self, bio: &mut Bio, io: &mut PerIo, status: &mut BlkStatus) -> EndIoResult {
        let stats = &self.core.dev.stats;
        let start = stats.end_start(&io.timing);
        let r = self.end_bio(bio, io, *status);
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
        // Finish what the worker has; bios still in flight are waited for by
        // device-mapper and may queue more, which postsuspend finishes.
        self.queue.flush();
    }

    fn postsuspend(&self) {
        self.queue.flush();
    }

    fn preresume(&self) -> Result {
        // A longer target (a grown device) is recorded in the metadata when its table goes
        // live; until then the table on disk stays valid for the shorter one.
        let core = &*self.core;
        let mut w = core.state.writer();
        match core.state.metadata_target_len(&w) {
            Some(len) if len < core.len => {
                let r =
                    core.state
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
        if let Some(r) = crate::test_hooks::message(argv) {
            return r;
        }
        let r = self.core.message(argv, out);
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
    /// `map` without the instrumentation; sets what the instrumentation needs to know.
    fn map_bio(&self, bio: &mut Bio, io: &mut PerIo) -> MapResult {
        let core = &*self.core;
        let sectors = bio.sectors();
        if sectors == 0 {
            // An empty flush (the data of a REQ_PREFLUSH write comes separately): one copy
            // for each device, so data on either is durable when the flush completes.
            let (dev, kind) = if bio.target_bio_nr() == FLUSH_BIO_MAIN {
                (&core.main, IoKind::Flush)
            } else {
                (&core.spare, IoKind::FlushCopy)
            };
            bio.set_dev(dev);
            io.timing.kind = kind;
            return MapResult::Remapped;
        }
        let (access, kind) = match bio.op() {
            ReqOp::Read => (Access::Read, IoKind::Read),
            ReqOp::Write => (Access::Write, IoKind::Write),
            ReqOp::WriteZeroes => (Access::Write, IoKind::WriteZeroes),
            ReqOp::Discard => (Access::Write, IoKind::Discard),
            // Secure erase is not enabled (num_secure_erase_bios is 0) and zone operations
            // cannot reach a target that does not declare zone support.
            _ => {
                core.dev.stats.count(Slot::ErrorsReturned);
                return MapResult::Kill;
            }
        };
        io.timing.kind = kind;
        io.fua = bio.is_fua();
        let rel = bio.sector() - core.begin;
        let state = &core.state;
        let write = access == Access::Write;
        if !write && (state.is_empty() || self.no_entry_in(rel, sectors)) {
            // Reads of blocks without an entry go to the main device and need no read
            // section (below): nothing is freed or overwritten under them, and a move that
            // starts now copies what the main device has whether or not it waits for
            // them. Nearly all reads, once the filter has answered.
            #[cfg(dmr_test_hooks)]
            crate::test_hooks::after_lookup(rel >> core.layout().block_shift());
            bio.set_dev(&core.main);
            bio.set_sector(rel);
            io.details = bio.record();
            return MapResult::Remapped;
        }
        // The read section is entered before the table is looked at: a move that marks a
        // block `Moving` after this point waits (`synchronize_srcu`) for this bio, and one
        // that marked it before is seen by the lookup. Entering after the lookup would let
        // a write routed to main land behind a move's copy, or a read go to a spare block
        // that was freed and reused meanwhile.
        let token = state.srcu.down_read();
        // A write asks the filter here, inside the section (an answer from before it could
        // miss a move that marked the block meanwhile); a read that got here was told
        // "maybe" already and goes to the tree.
        let r = if write && (state.is_empty() || self.no_entry_in(rel, sectors)) {
            Route {
                dest: Destination::Main,
                sectors,
            }
        } else {
            route::route(rel, sectors, core.layout().block_shift(), access, &**state)
        };
        #[cfg(dmr_test_hooks)]
        crate::test_hooks::after_lookup(rel >> core.layout().block_shift());
        bio.accept_partial(r.sectors);
        io.details = bio.record();
        match r.dest {
            Destination::Worker { .. } => {
                state.srcu.up_read(token);
                io.timing.remap_hit = true;
                io.owned = true;
                return MapResult::Defer;
            }
            Destination::Main => {
                bio.set_dev(&core.main);
                bio.set_sector(rel);
                if !write {
                    state.srcu.up_read(token);
                    return MapResult::Remapped;
                }
            }
            Destination::Spare { block, offset } => {
                bio.set_dev(&core.spare);
                bio.set_sector(core.layout().block_sector(block) + offset);
                io.timing.remap_hit = true;
            }
        }
        // Writes anywhere (a move must not race them) and any I/O to a spare block (a
        // freed spare block must not be reused under a read still in flight) keep the
        // section until they complete.
        io.hold(token);
        MapResult::Remapped
    }

    /// Whether no block of target-relative sectors `rel..rel + sectors` has an entry
    /// (`false` when the filter cannot say).
    #[inline]
    fn no_entry_in(&self, rel: u64, sectors: u32) -> bool {
        let shift = self.core.layout().block_shift();
        let last = (rel + u64::from(sectors) - 1) >> shift;
        self.core.state.none_in(rel >> shift, last)
    }

    /// `end_io` without the instrumentation.
    fn end_bio(&self, bio: &mut Bio, io: &mut PerIo, status: BlkStatus) -> EndIoResult {
        if io.owned {
            // Completed by the worker, which set the status.
            return EndIoResult::Done;
        }
        io.release(&self.core.state.srcu);
        // Only a medium error may mean a bad block, which the worker retries and remaps.
        // Every other status is passed up as it is: a lost path, an offline device or a
        // timeout says nothing about the blocks, and `NOSPC`, `NOTSUPP` and `AGAIN` (a
        // `REQ_NOWAIT` bio that would have had to wait; the submitter retries it) are
        // not failures of the medium either.
        if !status.is_medium_error() || io.details.size() == 0 {
            return EndIoResult::Done;
        }
        match bio.op() {
            ReqOp::Read | ReqOp::Write | ReqOp::WriteZeroes => {
                io.owned = true;
                EndIoResult::Defer
            }
            // A failed discard is reported as it is: discards are advisory.
            _ => EndIoResult::Done,
        }
    }

    fn write_info(&self, out: &mut ResultBuf<'_>) -> core::fmt::Result {
        let core = &*self.core;
        let s = &core.state;
        let c = &s.counters;
        let spare_state = if s.exhausted.load(Relaxed) {
            "exhausted"
        } else {
            "ok"
        };
        write!(
            out,
            "{}/{} {} {} {} {} {} {} {} {}/{} {} {} {}",
            s.remapped(),
            s.layout.data_blocks(),
            spare_state,
            c.read_errors.load(Relaxed),
            c.write_errors.load(Relaxed),
            c.auto_remaps.load(Relaxed),
            c.manual_remaps.load(Relaxed),
            s.failing(),
            c.spare_errors.load(Relaxed),
            s.meta_copies_valid.load(Relaxed),
            s.layout.copies(),
            s.meta_seq.load(Relaxed),
            s.meta_bytes.load(Relaxed),
            s.frozen.load(Relaxed)
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
            core.state.remapped(),
            core.state.failing()
        )
    }
}
