// SPDX-License-Identifier: GPL-2.0

//! The background scanner: reads the main device from the saved position to its end in
//! chunks of [`CHUNK_BYTES`], one at a time, in the idle I/O priority class, and the spare
//! blocks of remapped blocks as it passes them; its state and settings are `scan.rs`.
//!
//! - A chunk that fails or takes longer than `slow_threshold_us` is narrowed down to its
//!   blocks, each read on its own (with the target's read retries).
//! - A block that cannot be read (a medium error after every retry) has lost its data: it
//!   is never moved with invented contents. A main block becomes `Failing` (reads keep
//!   failing; the next write remaps it); either kind is counted and raises a dm event.
//! - A block that is readable but slow (2 of 3 timed re-reads over the threshold) or
//!   needed a retry is relocated to a new
//!   spare block through `moves.rs`, the protocol every move follows (a spare block: to
//!   another spare block, the old one retired).
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
use crate::workqueue::OrderedQueue;
use core::ops::Range;
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
    queue: OrderedQueue,
    core: Arc<Core>,
}

impl ScanRunner {
    /// A runner for `core`, with its queue.
    pub(crate) fn new(core: Arc<Core>) -> Result<Arc<Self>> {
        let queue = OrderedQueue::new(c"dm_remap_scan")?;
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
    /// When the cursor was last saved, and what it was.
    saved_ns: u64,
    /// Throttle windows: when the previous and the current one started, with the bytes
    /// read by then; the rate is measured from the previous one's start.
    marks: [(u64, u64); 2],
    /// The dm device's I/O counts when last looked at (see [`Run::idle`]).
    activity: (u64, u64),
}

/// Why a scan stops early.
enum Stop {
    /// A device error that is not about the medium.
    Device(BlkStatus),
    /// Out of memory for a move.
    NoMemory,
}

impl Run {
    /// Whether the dm device had no I/O of its own since the last look: nothing completed
    /// and nothing in flight (md's idle test, plus in-flight I/O).
    fn idle(&mut self, core: &Core) -> bool {
        let now = core.handle.disk_activity();
        let idle = now.0 == self.activity.0 && now.1 == 0;
        self.activity = now;
        idle
    }
}

/// Runs the scan for `core` until it stops, pauses, ends a pass or is detached.
fn run(core: &Core) {
    let scan = &core.table.scan;
    let id = core.id();
    let (Ok(chunk), Ok(block)) = (
        IoBuffer::new(CHUNK_BYTES),
        BlockBuffer::new(core.block_bytes()),
    ) else {
        pr_warn!("remap: scanner: out of memory; not scanning\n");
        return;
    };
    let now = now_ns();
    let mut r = Run {
        chunk,
        block,
        saved_ns: now,
        marks: [(now, scan.bytes.load(Relaxed)); 2],
        activity: core.handle.disk_activity(),
    };
    loop {
        match scan.next_step(id) {
            Step::Exit => break,
            Step::Wait(ns) => {
                save(core);
                scan.wait(id, ns);
                continue;
            }
            Step::Scan => {}
        }
        if let Some(ns) = throttle(core, &mut r) {
            scan.wait(id, ns);
            continue;
        }
        let pos = scan.position.load(Relaxed);
        let end = core.blocks();
        if pos >= end {
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
            continue;
        }
        let chunk_blocks = (CHUNK_BYTES / core.block_bytes()) as u64;
        let next = (pos + chunk_blocks).min(end);
        if let Err(e) = scan_range(core, &mut r, pos..next) {
            match e {
                Stop::Device(s) => pr_err!(
                    "remap: scanner stopped at block {}: device error {} (not a medium error)\n",
                    pos,
                    s.to_errno()
                ),
                Stop::NoMemory => pr_err!("remap: scanner stopped at block {pos}: no memory\n"),
            }
            scan.abort();
            break;
        }
        scan.position.store(next, Relaxed);
        if now_ns().saturating_sub(r.saved_ns) >= SAVE_EVERY_NS {
            save(core);
            r.saved_ns = now_ns();
        }
    }
    save(core);
}

/// Saves the cursor in the metadata if it changed since it was last saved.
fn save(core: &Core) {
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
                    check_block(core, r, e, Some(s), false)?;
                }
                b = e + 1;
            }
        }
    }
    Ok(())
}

/// Reads main blocks `blocks` in one request; narrows down to the blocks when it fails or
/// is slow.
fn scan_main(core: &Core, r: &mut Run, blocks: Range<u64>) -> Result<(), Stop> {
    let scan = &core.table.scan;
    let shift = core.layout().block_shift();
    let bytes = ((blocks.end - blocks.start) as usize) * core.block_bytes();
    let threshold_ns = scan.settings().slow_threshold_us * 1000;
    let start = now_ns();
    let ok = core
        .io
        .read_idle(&core.main, blocks.start << shift, &mut r.chunk, 0, bytes)
        .is_ok();
    let slow = now_ns().saturating_sub(start) > threshold_ns;
    if ok && !slow {
        count_read(core, blocks.end - blocks.start);
        return Ok(());
    }
    for b in blocks {
        check_block(core, r, b, None, slow && ok)?;
    }
    Ok(())
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
/// the verdict. `suspect`: the chunk it was in read slowly, so it is timed even if its
/// first read is fast.
fn check_block(
    core: &Core,
    r: &mut Run,
    block: u64,
    loc: Option<u64>,
    suspect: bool,
) -> Result<(), Stop> {
    let verdict = judge(core, r, block, loc, suspect)?;
    count_read(core, 1);
    let scan = &core.table.scan;
    match verdict {
        Verdict::Healthy => Ok(()),
        Verdict::Unreadable => {
            scan.unreadable.add(1, Relaxed);
            mark_unreadable(core, block, loc);
            core.handle.raise_event();
            Ok(())
        }
        Verdict::Weak => {
            scan.slow.add(1, Relaxed);
            core.handle.raise_event();
            if scan.settings().relocate_slow {
                relocate(core, block, loc)?;
            }
            Ok(())
        }
    }
}

/// Reads the block with the target's retries and times re-reads as needed.
fn judge(
    core: &Core,
    r: &mut Run,
    block: u64,
    loc: Option<u64>,
    suspect: bool,
) -> Result<Verdict, Stop> {
    let threshold_ns = core.table.scan.settings().slow_threshold_us * 1000;
    let (dev, sector) = core.location(block, loc);
    let all = 0..core.block_bytes();
    let mut failed = false;
    let mut first_slow = suspect;
    let mut read = false;
    for _ in 0..=core.features.read_retries() {
        let start = now_ns();
        match rw_block(dev, sector, &mut r.block, all.clone(), DataOp::ReadIdle) {
            Ok(()) => {
                first_slow |= now_ns().saturating_sub(start) > threshold_ns;
                read = true;
                break;
            }
            Err(s) if s.is_medium_error() => failed = true,
            Err(s) => return Err(Stop::Device(s)),
        }
    }
    if !read {
        return Ok(Verdict::Unreadable);
    }
    if failed {
        return Ok(Verdict::Weak);
    }
    if !first_slow {
        return Ok(Verdict::Healthy);
    }
    // Slow once (or in a slow chunk): 2 of 3 timed re-reads decide. The threshold is far
    // above a healthy read's time even behind a queue of foreground I/O (the default is
    // 500 ms), so a block is not judged slow for waiting its turn.
    let mut vote = SlowVote::default();
    loop {
        let start = now_ns();
        match rw_block(dev, sector, &mut r.block, all.clone(), DataOp::ReadIdle) {
            Ok(()) => {}
            Err(s) if s.is_medium_error() => return Ok(Verdict::Weak),
            Err(s) => return Err(Stop::Device(s)),
        }
        vote.add(now_ns().saturating_sub(start) > threshold_ns);
        if let Some(slow) = vote.verdict() {
            return Ok(if slow {
                Verdict::Weak
            } else {
                Verdict::Healthy
            });
        }
    }
}

/// An unreadable main block becomes `Failing` (if it still has no entry); an unreadable
/// spare block stays where it is (its reads fail; a write to it that fails moves it).
fn mark_unreadable(core: &Core, block: u64, loc: Option<u64>) {
    let mut w = core.table.writer();
    match loc {
        None => {
            core.count(Event::MainReadError);
            if core.table.entry(block).is_none() {
                // Best effort: without memory for the mark the block is still counted.
                let _ = core.table.set(&mut w, block, Some(Entry::Failing));
            }
        }
        Some(_) => core.count(Event::SpareError),
    }
}

/// Moves a weak block to a new spare block (the data read from where it is now), if it is
/// still where the scan found it. No free spare block: nothing moves (counted as slow).
fn relocate(core: &Core, block: u64, loc: Option<u64>) -> Result<(), Stop> {
    let table = &core.table;
    let mut w = table.writer();
    let now = table.entry(block);
    if now != loc.map(Entry::Remapped) {
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
    // stays remapped to it).
    let staged = moves::stage(core, &mut w, block, loc, mv, now, true);
    let committed = moves::commit_group(core, &mut w);
    w.buf = Some(buf);
    match (staged, committed) {
        (Ok(_), Ok(())) => {
            table.scan.relocated.add(1, Relaxed);
            Ok(())
        }
        (Err(BlkStatus::RESOURCE), _) => Err(Stop::NoMemory),
        (Err(s), _) if !s.is_medium_error() && s != BlkStatus::NOSPC => Err(Stop::Device(s)),
        _ => Ok(()),
    }
}
