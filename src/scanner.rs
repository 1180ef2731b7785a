// SPDX-License-Identifier: GPL-2.0

//! The background scanner: reads the main device from the saved position to its end in
//! chunks of [`CHUNK_BYTES`], one at a time, in the idle I/O priority class, and the spare
//! blocks of remapped blocks as it passes them; its state and settings are `scan.rs`.
//!
//! - A chunk that fails or takes longer than `slow_threshold_us` is narrowed down to its
//!   blocks, each read on its own (with the target's read retries) at normal priority: an
//!   idle-class read can wait seconds behind foreground I/O, which says nothing about the
//!   block. Between blocks the scan looks for a command or a detach, so a suspend does not
//!   wait for a whole chunk of slow blocks.
//! - A block that cannot be read (a medium error after every retry) has lost its data: it
//!   is never moved with invented contents. A main block becomes `Failing` (reads keep
//!   failing; the next write remaps it); either kind is counted and raises a dm event.
//! - A block that is readable but slow (its read and then 2 of 3 timed re-reads over the
//!   threshold) or that needed a retry is relocated to a new spare block through
//!   `moves.rs`, the protocol every move follows (a spare block: to another spare block,
//!   the old one retired). When more than a quarter of a chunk's blocks are slow, the
//!   region or the device is slow, not single blocks: they are not relocated (a log line
//!   says so), so a busy or uniformly slow device cannot use up the spare region. A
//!   relocation whose commit fails (its block frozen) stops the scan.
//! - Any other error (a lost path, an offline device) stops the scan: nothing is judged
//!   through it.
//!
//! The scan never holds the writer lock while it reads; a relocation holds it for the move
//! like every move. The throttle is md's (`logic::scan::must_wait`). The cursor is saved in
//! the metadata (`Change::Scan`) every [`SAVE_EVERY_NS`] of scanning, at the end of a pass
//! and whenever the work returns (stopped, paused, detached by a suspend or a removal).

use crate::clock::now_ns;
use crate::dm::{rw_block, BlkStatus, BlockBuffer, DataOp, IoBuffer};
use crate::instance::{Core, Event};
use crate::logic::format::Change;
use crate::logic::route::{Entry, Lookup};
use crate::logic::scan::{kib_per_s, must_wait, wait_for_rate_ns, SlowVote};
use crate::moves::{self, Move};
use crate::scan::{ScanHost, Step};
use crate::workqueue::OwnedQueue;
use core::ops::Range;
use kernel::block::SECTOR_SHIFT;
use kernel::prelude::*;
use kernel::sync::atomic::Relaxed;
use kernel::sync::Arc;
use kernel::workqueue::WorkItem;

/// Bytes read at once from the main device.
pub(crate) const CHUNK_BYTES: usize = 1 << 20;
/// How often a running scan saves its cursor (a crash loses at most this much progress).
const SAVE_EVERY_NS: u64 = 30_000_000_000;
/// The throttle's window: the rate is measured over the last one to two of these.
const THROTTLE_WINDOW_NS: u64 = 3_000_000_000;

/// The work item of a target's scan: the target's `Core`, run on the scanner's own queue
/// (never the worker's, which the scan's moves wait for).
pub(crate) struct ScanRunner {
    queue: OwnedQueue,
    core: Arc<Core>,
}

impl ScanRunner {
    /// A runner for `core`, with its queue.
    pub(crate) fn new(core: Arc<Core>) -> Result<Arc<Self>> {
        let queue = OwnedQueue::ordered(c"dm_remap_scan")?;
        Ok(Arc::new(Self { queue, core }, GFP_KERNEL)?)
    }

    /// Waits for the scan work to return (after [`crate::scan::Scan::detach`]).
    pub(crate) fn flush(&self) {
        self.queue.flush();
    }
}

impl ScanHost for ScanRunner {
    fn kick(&self) {
        // Already queued is fine: the work looks at the state when it runs.
        let _ = self
            .queue
            .queue()
            .enqueue::<Arc<Core>, 1>(self.core.clone());
    }
}

impl WorkItem<1> for Core {
    type Pointer = Arc<Core>;

    fn run(this: Arc<Core>) {
        run(&this);
    }
}

/// What one run of the work keeps.
struct Run {
    chunk: IoBuffer,
    block: BlockBuffer,
    /// Slow blocks of the chunk being narrowed down, relocated once it is done.
    weak: KVec<(u64, Option<u64>)>,
    /// The work's target, and the scanner's generation when its chunk began: a command or
    /// a detach since then interrupts the chunk between blocks.
    id: usize,
    generation: u64,
    /// When the cursor was last saved.
    saved_ns: u64,
    /// Throttle windows: when the previous and the current one started, with the bytes
    /// read by then; the rate is measured from the previous one's start.
    marks: [(u64, u64); 2],
    /// The dm device's and the main device's disk's I/O counts when last looked at, and
    /// the sectors the scan itself read from the main device since (see [`Run::idle`]).
    activity: (u64, u64),
    main_activity: (u64, u64),
    own_sectors: u64,
}

/// Why a chunk ended early, and the block to go on from.
enum Stop {
    /// A command, a setting or a detach came: go on later from this block.
    Interrupted(u64),
    /// A device error that is not about the medium: the scan stops here.
    Device(BlkStatus, u64),
    /// A relocation could not be done (no memory, or its commit failed, which freezes
    /// its block): the scan stops here rather than freeze more.
    Move(u64),
}

impl Run {
    /// Whether neither the dm device nor the main device's disk had I/O other than the
    /// scan's since the last look: nothing completed and nothing in flight. The disk's
    /// counts include other users of it (other partitions, other dm devices), as md's
    /// idle test does for its member disks; the scan's own reads are taken off, with md's
    /// slack of 64 sectors.
    fn idle(&mut self, core: &Core) -> bool {
        let dm = core.handle.disk_activity();
        let main = core.main.disk_activity();
        let others = main
            .0
            .wrapping_sub(self.main_activity.0)
            .saturating_sub(self.own_sectors);
        let idle = dm.0 == self.activity.0 && dm.1 == 0 && others <= 64 && main.1 == 0;
        self.activity = dm;
        self.main_activity = main;
        self.own_sectors = 0;
        idle
    }

    /// `Err` if the chunk must end before block `at` (see [`Run::generation`]).
    fn check(&self, core: &Core, at: u64) -> Result<(), Stop> {
        if core.table.scan.keep_going(self.id, self.generation) {
            Ok(())
        } else {
            Err(Stop::Interrupted(at))
        }
    }
}

/// Runs the scan for `core` until it stops, pauses, ends a pass or is detached.
fn run(core: &Core) {
    let scan = &core.table.scan;
    let chunk_blocks = CHUNK_BYTES / core.block_bytes();
    let (Ok(chunk), Ok(block), Ok(weak)) = (
        IoBuffer::new(CHUNK_BYTES),
        BlockBuffer::new(core.block_bytes()),
        KVec::with_capacity(chunk_blocks, GFP_KERNEL),
    ) else {
        pr_warn!("remap: scanner: out of memory; scan stopped\n");
        scan.abort();
        return;
    };
    let now = now_ns();
    let mut r = Run {
        chunk,
        block,
        weak,
        id: core.id(),
        generation: scan.generation(),
        saved_ns: now,
        marks: [(now, scan.bytes.load(Relaxed)); 2],
        activity: core.handle.disk_activity(),
        main_activity: core.main.disk_activity(),
        own_sectors: 0,
    };
    loop {
        r.generation = scan.generation();
        match scan.next_step(r.id) {
            Step::Exit => break,
            Step::Wait(ns, generation) => {
                save(core);
                scan.wait(r.id, ns, generation);
                continue;
            }
            Step::Scan => {}
        }
        if let Some(ns) = throttle(core, &mut r) {
            scan.wait(r.id, ns, r.generation);
            continue;
        }
        let pos = scan.position.load(Relaxed);
        let end = core.blocks();
        if pos >= end {
            pass_done(core);
            continue;
        }
        let next = (pos + chunk_blocks as u64).min(end);
        match scan_range(core, &mut r, pos..next) {
            Ok(()) => scan.position.store(next, Relaxed),
            Err(Stop::Interrupted(at)) => scan.position.store(at, Relaxed),
            Err(Stop::Device(s, at)) => {
                pr_err!(
                    "remap: scanner stopped at block {at}: device error {} (not a medium error)\n",
                    s.to_errno()
                );
                scan.position.store(at, Relaxed);
                scan.abort();
            }
            Err(Stop::Move(at)) => {
                pr_err!("remap: scanner stopped at block {at}: a relocation failed\n");
                scan.position.store(at, Relaxed);
                scan.abort();
            }
        }
        if now_ns().saturating_sub(r.saved_ns) >= SAVE_EVERY_NS {
            save(core);
            r.saved_ns = now_ns();
        }
    }
    save(core);
}

/// Ends a pass: back to block 0, one more pass, and a line in the kernel log.
fn pass_done(core: &Core) {
    let scan = &core.table.scan;
    scan.position.store(0, Relaxed);
    scan.passes.add(1, Relaxed);
    scan.pass_done();
    pr_info!(
        "remap: scan pass {} done ({} blocks read, {} unreadable, {} slow, {} relocated since load)\n",
        scan.passes.load(Relaxed),
        scan.blocks_scanned.load(Relaxed),
        scan.unreadable.load(Relaxed),
        scan.slow.load(Relaxed),
        scan.relocated.load(Relaxed)
    );
    save(core);
}

/// Saves the cursor in the metadata if it changed since it was last saved.
pub(crate) fn save(core: &Core) {
    let c = core.table.scan.cursor();
    let mut w = core.table.writer();
    if !w.is_loaded() || w.scan() == c {
        return;
    }
    if core.commit(&mut w, &[Change::Scan(c)]).is_err() {
        pr_warn!("remap: scanner: cannot save its position in the metadata\n");
    }
}

/// How long to wait before the next chunk, if at all (md's rule, `must_wait`).
fn throttle(core: &Core, r: &mut Run) -> Option<u64> {
    let scan = &core.table.scan;
    let settings = scan.settings();
    let now = now_ns();
    let bytes = scan.bytes.load(Relaxed);
    if now.saturating_sub(r.marks[1].0) >= THROTTLE_WINDOW_NS {
        r.marks = [r.marks[1], (now, bytes)];
    }
    let elapsed = now.saturating_sub(r.marks[0].0).max(1);
    let read = bytes.saturating_sub(r.marks[0].1);
    let rate = kib_per_s(read, elapsed);
    let idle = r.idle(core);
    if !must_wait(rate, &settings, idle) {
        return None;
    }
    if rate > settings.speed_max_kib_s {
        Some(wait_for_rate_ns(read, elapsed, settings.speed_max_kib_s))
    } else {
        // Busy: look again soon (md waits 500 ms; foreground bursts are often shorter).
        Some(100_000_000)
    }
}

/// Scans main blocks `range`: runs without an entry from the main device, remapped blocks
/// from their spare blocks; failing and moving blocks are skipped (known, or being moved).
fn scan_range(core: &Core, r: &mut Run, range: Range<u64>) -> Result<(), Stop> {
    let mut b = range.start;
    while b < range.end {
        match Lookup::first_in(&*core.table, b, range.end - 1) {
            None => {
                scan_main(core, r, b..range.end)?;
                b = range.end;
            }
            Some((e, entry)) => {
                if e > b {
                    scan_main(core, r, b..e)?;
                }
                if let Entry::Remapped(s) = entry {
                    r.check(core, e)?;
                    r.weak.clear();
                    check_block(core, r, e, Some(s))?;
                    relocate_weak(core, r, e, 1)?;
                }
                b = e + 1;
            }
        }
    }
    Ok(())
}

/// Reads main blocks `blocks` in one request at idle priority (again at normal priority
/// if that was slow); when that fails or is slow, reads each block on its own (see
/// [`check_block`]), then relocates the slow ones, unless so many are slow that the
/// device is slow there rather than single blocks.
fn scan_main(core: &Core, r: &mut Run, blocks: Range<u64>) -> Result<(), Stop> {
    let scan = &core.table.scan;
    let shift = core.layout().block_shift();
    let n = blocks.end - blocks.start;
    let bytes = (n as usize) * core.block_bytes();
    let threshold_ns = scan.settings().slow_threshold_us * 1000;
    let sector = blocks.start << shift;
    r.own_sectors += (bytes >> SECTOR_SHIFT) as u64;
    let start = now_ns();
    let mut ok = core
        .io
        .read_idle(&core.main, sector, &mut r.chunk, 0, bytes)
        .is_ok();
    let mut slow = now_ns().saturating_sub(start) > threshold_ns;
    if ok && slow {
        // Slow at idle priority may only mean it waited behind foreground I/O in the I/O
        // scheduler: once more at normal priority before any block is suspected.
        r.own_sectors += (bytes >> SECTOR_SHIFT) as u64;
        let start = now_ns();
        ok = core
            .io
            .read(&core.main, sector, &mut r.chunk, 0, bytes)
            .is_ok();
        slow = now_ns().saturating_sub(start) > threshold_ns;
    }
    if ok && !slow {
        count_read(core, n);
        return Ok(());
    }
    r.weak.clear();
    for b in blocks.clone() {
        if let Err(e) = r.check(core, b) {
            // Go on later from the first slow block not relocated yet: it is judged again.
            return Err(match r.weak.first() {
                Some(&(w, _)) => Stop::Interrupted(w),
                None => e,
            });
        }
        check_block(core, r, b, None)?;
    }
    relocate_weak(core, r, blocks.start, n)
}

/// Counts blocks read.
fn count_read(core: &Core, blocks: u64) {
    let scan = &core.table.scan;
    scan.blocks_scanned.add(blocks, Relaxed);
    scan.bytes.add(blocks * core.block_bytes() as u64, Relaxed);
}

/// One block read on its own.
enum Verdict {
    Healthy,
    /// Readable, but slow or only after a retry: relocate.
    Weak,
    /// Not readable: the data is lost.
    Unreadable,
}

/// Reads main block `block` (from spare block `loc` when remapped) on its own and acts on
/// the verdict: an unreadable block is marked at once, a weak one joins `r.weak`.
fn check_block(core: &Core, r: &mut Run, block: u64, loc: Option<u64>) -> Result<(), Stop> {
    let verdict = judge(core, r, block, loc).map_err(|s| Stop::Device(s, block))?;
    count_read(core, 1);
    match verdict {
        Verdict::Healthy => {}
        Verdict::Unreadable => {
            if mark_unreadable(core, block, loc) {
                core.table.scan.unreadable.add(1, Relaxed);
                core.handle.raise_event();
            }
        }
        Verdict::Weak => {
            // Room for every block of a chunk was reserved.
            let _ = r.weak.push_within_capacity((block, loc));
        }
    }
    Ok(())
}

/// Reads the block with the target's retries, and when that read was slow, times 2 of 3
/// re-reads. These reads are at normal priority: an idle-class read can wait seconds in
/// the I/O scheduler behind foreground I/O, which says nothing about the block.
fn judge(core: &Core, r: &mut Run, block: u64, loc: Option<u64>) -> Result<Verdict, BlkStatus> {
    let threshold_ns = core.table.scan.settings().slow_threshold_us * 1000;
    let (dev, sector) = core.location(block, loc);
    let all = 0..core.block_bytes();
    // Reads of the main device are the scan's own, not foreground I/O (see `Run::idle`).
    let own = if loc.is_none() {
        core.layout().block_sectors()
    } else {
        0
    };
    let own_sectors = &mut r.own_sectors;
    let mut read = |buf: &mut BlockBuffer| -> Result<bool, BlkStatus> {
        *own_sectors += own;
        let start = now_ns();
        match rw_block(dev, sector, buf, all.clone(), DataOp::Read) {
            Ok(()) => Ok(now_ns().saturating_sub(start) > threshold_ns),
            Err(s) => Err(s),
        }
    };
    let mut failed = false;
    let mut slow = None;
    for _ in 0..=core.features.read_retries() {
        match read(&mut r.block) {
            Ok(s) => {
                slow = Some(s);
                break;
            }
            Err(s) if s.is_medium_error() => failed = true,
            Err(s) => return Err(s),
        }
    }
    match (slow, failed) {
        (None, _) => return Ok(Verdict::Unreadable),
        (Some(_), true) => return Ok(Verdict::Weak),
        (Some(false), false) => return Ok(Verdict::Healthy),
        (Some(true), false) => {}
    }
    let mut vote = SlowVote::default();
    loop {
        match read(&mut r.block) {
            Ok(s) => vote.add(s),
            Err(s) if s.is_medium_error() => return Ok(Verdict::Weak),
            Err(s) => return Err(s),
        }
        if let Some(slow) = vote.verdict() {
            return Ok(if slow {
                Verdict::Weak
            } else {
                Verdict::Healthy
            });
        }
    }
}

/// An unreadable main block becomes `Failing`; an unreadable spare block stays where it
/// is (its reads fail; a write to it that fails moves it). Returns `false`, doing nothing,
/// if the block was moved or marked meanwhile: what the scan read is not where its data
/// is now.
fn mark_unreadable(core: &Core, block: u64, loc: Option<u64>) -> bool {
    let mut w = core.table.writer();
    if core.table.entry(block) != loc.map(Entry::Remapped) {
        return false;
    }
    match loc {
        None => {
            core.count(Event::MainReadError);
            // Best effort: without memory for the mark the block is still counted.
            let _ = core.table.set(&mut w, block, Some(Entry::Failing));
        }
        Some(_) => core.count(Event::SpareError),
    }
    true
}

/// Counts and relocates the weak blocks of `n` blocks from `first` just read on their
/// own. More than a quarter of them weak: the device is slow there (or the blocks were
/// read behind heavy foreground I/O), not single blocks; they are left, with a log line,
/// rather than spend the spare region on them.
fn relocate_weak(core: &Core, r: &mut Run, first: u64, n: u64) -> Result<(), Stop> {
    let scan = &core.table.scan;
    let weak = r.weak.len() as u64;
    if weak == 0 {
        return Ok(());
    }
    if n >= 4 && weak > n / 4 {
        pr_warn!(
            "remap: scanner: {weak} of {n} blocks from block {first} read slowly: a slow region or a busy device, not single blocks; not relocated\n"
        );
        return Ok(());
    }
    core.handle.raise_event();
    if !scan.settings().relocate_slow {
        scan.slow.add(weak, Relaxed);
        return Ok(());
    }
    // Counted one by one: an interrupted chunk goes on from the first block not
    // relocated, which is judged (and counted) again.
    for i in 0..r.weak.len() {
        let (block, loc) = r.weak[i];
        r.check(core, block)?;
        scan.slow.add(1, Relaxed);
        if loc.is_none() {
            // The move reads the block from the main device.
            r.own_sectors += core.layout().block_sectors();
        }
        relocate(core, block, loc)?;
    }
    Ok(())
}

/// Moves a weak block to a new spare block (the data read from where it is now), if it is
/// still where the scan found it. No free spare block: nothing moves (it stays counted as
/// slow). While blocks are frozen (a commit failed) nothing moves either.
fn relocate(core: &Core, block: u64, loc: Option<u64>) -> Result<(), Stop> {
    let table = &core.table;
    let mut w = table.writer();
    let now = table.entry(block);
    if now != loc.map(Entry::Remapped) || w.has_frozen() {
        return Ok(());
    }
    let Some(mut buf) = w.buf.take() else {
        return Ok(());
    };
    let mv = Move {
        buf: &mut buf,
        valid: 0..0,
    };
    // If the copy fails the block stays as it was (a spare block that cannot be read
    // stays remapped to it; a main block that cannot be read becomes failing).
    let staged = moves::stage(core, &mut w, block, loc, mv, now, true);
    let committed = moves::commit_group(core, &mut w);
    w.buf = Some(buf);
    match (staged, committed) {
        (Ok(_), Ok(())) => {
            table.scan.relocated.add(1, Relaxed);
            Ok(())
        }
        // Committed nowhere: the block is frozen until a checkpoint succeeds.
        (Ok(_), Err(_)) | (Err(BlkStatus::RESOURCE), _) => Err(Stop::Move(block)),
        (Err(s), _) if !s.is_medium_error() && s != BlkStatus::NOSPC => Err(Stop::Device(s, block)),
        _ => Ok(()),
    }
}
