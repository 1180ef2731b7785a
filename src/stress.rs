// SPDX-License-Identifier: GPL-2.0

//! The in-kernel stress engine of one dm device (`/sys/kernel/dm_remap/<dev>/stress/`):
//! workers that submit real bios to the dm device's own block device, so that dm core,
//! dm-remap and the devices below are all measured, keep their queue depth full, and
//! check every block they read against what they last wrote there.
//!
//! One run per device at a time, as the kernel's torture tests do: parameters logged at
//! the start, `End of test: SUCCESS` or `FAILURE` at the end. A run stops at
//! `stress_test_stop`, when its target is suspended (and so before a reload or removal
//! completes), at reboot and before a system sleep (`crate::sysfs::stop_all_stress_*`) and
//! at the end of its duration; the module cannot be unloaded while a device exists, and a
//! device's targets stop their run, and wait for its tasks, before they go.
//!
//! What the engine knows about the data: one stamp per block of the region (the first
//! `MAX_REGION_BLOCKS` blocks of the target; `logic::stress::Stamp`), set when a write
//! completes. An I/O claims its blocks first (a bit in the stamp), so no two I/Os of the
//! engine touch a block at once and a read always knows what the block must hold. The
//! stamps are kept after a run, so a read run later checks what a write run wrote, unless
//! anyone else wrote to the device during or since that run (the block layer's written and
//! discarded sectors moved by more than the engine's own) or the device's table changed:
//! then they are dropped. Blocks the engine never
//! wrote are read but not checked (`unverified_blocks`).
//!
//! Memory: everything a run needs (bios, buffers, histograms, stamps) is allocated when it
//! starts; a worker allocates nothing per I/O.

use crate::clock::now_ns;
use crate::countdown::Countdown;
use crate::dm::{IoSlots, Reaped, SlotOp, TargetHandle, MAX_SLOT_BYTES, NAME_LEN};
use crate::logic::histogram::Histogram;
use crate::logic::rng::{mix, Rng};
use crate::logic::route::{Entry, Lookup};
use crate::logic::stats::Slot;
use crate::logic::stress::{
    check, choose, fill, mixed_params, regression_params, write_outcome, write_results,
    write_summary, Baseline, Counts, Cursor, FailReason, Kind, Outcome, ParamError, Params, Plan,
    Results, Stamp, StopReason, Verdict, CLAIM, LISTED_MISMATCHES, MAX_REGION_BLOCKS, MAX_WORKERS,
    QUICK_MS, UNKNOWN_RUN,
};
use crate::pages::PageHold;
use crate::random::random_bytes;
use crate::stats::DeviceStats;
use crate::table::RemapTable;
use crate::workqueue::{cond_resched, OwnedQueue};
use core::fmt::Write;
use kernel::alloc::KVVec;
use kernel::prelude::*;
use kernel::sync::atomic::{Acquire, Atomic, Full, Relaxed, Release};
use kernel::sync::{new_mutex, Arc, Mutex};
use kernel::time::{delay::fsleep, Delta};
use kernel::workqueue::{impl_has_work, new_work, Work, WorkItem};

/// Longest a worker sleeps before it looks at the clock and the stop flag.
const POLL_MS: u32 = 20;
/// Blocks a remap-heavy run keeps remapped at once.
const HOT: usize = 16;
/// Runs `comprehensive_report` lists.
const HISTORY: usize = 8;
/// Mismatches logged per run (all are counted).
const LOGGED_MISMATCHES: u64 = 8;
/// Pause between two remaps or moves back of a remap-heavy run.
const REMAP_PAUSE_MS: i64 = 5;

// Every I/O size a start line accepts fits one slot.
const _: () = assert!(crate::logic::stress::MAX_IO_KIB as usize * 1024 <= MAX_SLOT_BYTES);

/// How a run can end early or on time, as set by [`Run::end`]; its `stop` holds the index
/// in this table plus one (0: going on).
const ENDINGS: [Outcome; 7] = [
    Outcome::Done,
    Outcome::Stopped(StopReason::Request),
    Outcome::Stopped(StopReason::Suspend),
    Outcome::Stopped(StopReason::Remove),
    Outcome::Stopped(StopReason::Reboot),
    Outcome::Stopped(StopReason::Sleep),
    Outcome::Failed(FailReason::Opened),
];

/// `stop` of a run going on.
const GOING: u32 = 0;

/// What the engine needs of the live target it drives: implemented by the target's
/// `Core` (in `target.rs`). A trait, so that this file does not depend on the target's
/// modules, which depend on the device's sysfs directory that holds the engine.
pub(crate) trait StressHost: Send + Sync {
    /// Identifies the target while it exists.
    fn id(&self) -> usize;
    /// The target, for its dm device (bios, open count, written sectors, name).
    fn handle(&self) -> &TargetHandle;
    /// Bytes per block.
    fn block_bytes(&self) -> u32;
    /// Blocks the target maps.
    fn blocks(&self) -> u64;
    /// First sector of the target in the dm device.
    fn first_sector(&self) -> u64;
    /// log2 of sectors per block.
    fn block_shift(&self) -> u32;
    /// The remap table.
    fn table(&self) -> &RemapTable;
    /// The device's counters.
    fn stats(&self) -> &DeviceStats;
    /// The device's engine (where a run's results go).
    fn stress(&self) -> &Stress;
    /// `remap <block>` as `dmsetup message` does it.
    fn remap(&self, block: u64) -> Result;
    /// `unremap <block>` as `dmsetup message` does it.
    fn unremap(&self, block: u64) -> Result;
}

/// Why a run was started.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// `stress_test_start`.
    Plain,
    /// `quick_validation`.
    Quick,
    /// `regression_test`.
    Regression,
    /// `memory_pressure_test`.
    Pressure,
}

/// What each block of the region holds (see the module documentation).
struct StampMap {
    words: KVVec<Atomic<u64>>,
    /// The target it describes (`Core::id`).
    host: usize,
    /// The dm device's written sectors when the last run using it ended.
    written_at_end: Atomic<u64>,
}

impl StampMap {
    fn new(blocks: u64, host: usize) -> Result<Self> {
        let n = usize::try_from(blocks).map_err(|_| EINVAL)?;
        let mut words = KVVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            words.push(Atomic::new(0u64), GFP_KERNEL)?;
        }
        Ok(Self {
            words,
            host,
            written_at_end: Atomic::new(0),
        })
    }
}

/// One run, shared by its tasks.
#[pin_data]
struct Run {
    id: u32,
    params: Params,
    purpose: Purpose,
    core: Arc<dyn StressHost>,
    name: [u8; NAME_LEN],
    /// Blocks in the region, blocks per I/O, I/O units in the region.
    region_blocks: u64,
    unit_blocks: u64,
    units: u64,
    block_bytes: usize,
    /// First sector of the target in the dm device, and log2 of sectors per block.
    first_sector: u64,
    block_shift: u32,
    map: Option<Arc<StampMap>>,
    start_ns: u64,
    end_ns: u64,
    seed: u64,
    /// [`GOING`], else how it ends (see [`ENDINGS`]).
    stop: Atomic<u32>,
    /// Blocks aimed at by a remap-heavy run, plus one (0: none): the remapper's own in the
    /// first half, blocks remapped before the run in the second.
    hot: [Atomic<u64>; 2 * HOT],
    remaps: Atomic<u64>,
    unremaps: Atomic<u64>,
    remap_errors: Atomic<u64>,
    /// Tasks still running; the last one to finish ends the run.
    left: Atomic<u32>,
    /// The device's CPU-cost counters, the table's allocation failures and the device's
    /// written sectors at the start.
    cpu_at_start: [u64; 3],
    alloc_failures_at_start: u64,
    written_at_start: u64,
    /// Mismatches logged so far (the first [`LOGGED_MISMATCHES`] are).
    logged: Atomic<u64>,
    #[pin]
    results: Mutex<Option<KBox<Results>>>,
    #[pin]
    pressure: Mutex<Option<PageHold>>,
}

impl Run {
    fn stopping(&self) -> bool {
        self.stop.load(Relaxed) != GOING
    }

    /// Ends the run (the first reason given is kept): `why` is one of [`ENDINGS`].
    fn end(&self, why: Outcome) {
        let code = ENDINGS
            .iter()
            .position(|o| *o == why)
            .map_or(1, |i| i as u32 + 1);
        let _ = self.stop.cmpxchg(GOING, code, Relaxed);
    }

    /// How the run ended, by what [`Run::end`] recorded (on time if nothing).
    fn ending(&self) -> Outcome {
        let code = self.stop.load(Relaxed) as usize;
        ENDINGS
            .get(code.wrapping_sub(1))
            .copied()
            .unwrap_or(Outcome::Done)
    }

    fn name(&self) -> &str {
        name_str(&self.name)
    }

    fn blocks_of(&self, unit: u64) -> core::ops::Range<u64> {
        let first = unit * self.unit_blocks;
        first..first + self.unit_blocks
    }

    /// Claims the blocks of `unit` for one I/O; `false` if an I/O of the run has one.
    fn claim(&self, unit: u64) -> bool {
        let Some(map) = &self.map else {
            return true;
        };
        let blocks = self.blocks_of(unit);
        for b in blocks.clone() {
            let word = &map.words[b as usize];
            let mut w = word.load(Relaxed);
            loop {
                if w & CLAIM != 0 {
                    self.release(blocks.start..b);
                    return false;
                }
                match word.cmpxchg(w, w | CLAIM, Acquire) {
                    Ok(_) => break,
                    Err(now) => w = now,
                }
            }
        }
        true
    }

    /// Releases claimed blocks, leaving their stamps.
    fn release(&self, blocks: core::ops::Range<u64>) {
        if let Some(map) = &self.map {
            for b in blocks {
                let word = &map.words[b as usize];
                word.store(word.load(Relaxed) & !CLAIM, Release);
            }
        }
    }

    /// The stamp a write of (claimed) block `b` by this run carries.
    fn next_stamp(&self, b: u64) -> Stamp {
        match &self.map {
            Some(map) => Stamp::from_word(map.words[b as usize].load(Relaxed)).next(self.id),
            None => Stamp {
                run: self.id,
                gen: 1,
            },
        }
    }

    /// A block a remap-heavy run aims at, if any.
    fn hot_block(&self, rng: &mut Rng) -> Option<u64> {
        let i = rng.below(2 * HOT as u64) as usize;
        match self.hot[i].load(Relaxed) {
            0 => None,
            b => Some(b - 1),
        }
    }
}

/// What an I/O worker owns: its bios and buffers, what each slot's I/O is, its latency
/// histogram. Made when the run starts.
struct Kit {
    slots: IoSlots,
    plans: KVec<Plan>,
    latency: KBox<Histogram>,
}

/// What a task does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// I/O worker number `n`.
    Io(u32),
    /// The remap-heavy run's remapper.
    Remapper,
}

/// A work item of a run on the engine's queue.
#[pin_data]
struct Task {
    run: Arc<Run>,
    /// The run's tasks not yet returned (see [`Task::run`]).
    tasks: Arc<Countdown>,
    role: Role,
    #[pin]
    kit: Mutex<Option<Kit>>,
    #[pin]
    work: Work<Task>,
}

impl_has_work! {
    impl HasWork<Self> for Task { self.work }
}

impl WorkItem for Task {
    type Pointer = Arc<Task>;

    fn run(this: Arc<Task>) {
        let run = &this.run;
        match this.role {
            Role::Io(n) => {
                let kit = this.kit.lock().take();
                if let Some(kit) = kit {
                    io_worker(run, n, kit);
                }
            }
            Role::Remapper => remapper(run),
        }
        // Fully ordered: the last task reads what the others counted.
        if run.left.fetch_sub(1, Full) == 1 {
            finish(run);
        }
        // The task's references (to the run, and through it to the target) go before it
        // counts itself out: whoever waits for the countdown (the target's suspend and
        // destructor, `stress_test_stop`) holds the target, so this never drops the last
        // reference to it, and once the count is zero no task holds it.
        let tasks = this.tasks.clone();
        drop(this);
        tasks.done();
    }
}

/// One I/O worker: keeps its queue depth full until the run ends, then waits for its
/// I/Os and adds its counts to the run's.
fn io_worker(run: &Run, n: u32, mut kit: Kit) {
    let mut rng = Rng::new(run.seed ^ mix(u64::from(n) + 1));
    let mut cursor = Cursor::share(run.units, run.params.workers, n);
    let mut counts = Counts::default();
    let writes = run.params.kind.writes();
    let Kit {
        slots,
        plans,
        latency,
    } = &mut kit;
    loop {
        slots.reap(|slots, r| completed(run, slots, plans, r, &mut counts, latency));
        if !run.stopping() && now_ns() >= run.end_ns {
            run.end(Outcome::Done);
        }
        if writes && !run.stopping() && run.core.handle().openers() > 0 {
            run.end(Outcome::Failed(FailReason::Opened));
        }
        if !run.stopping() && run.core.handle().disk_dead() {
            run.end(Outcome::Stopped(StopReason::Remove));
        }
        if run.stopping() {
            if slots.outstanding() == 0 {
                break;
            }
            slots.wait(POLL_MS);
            continue;
        }
        for i in 0..slots.len() {
            if slots.buf(i).is_none() {
                continue;
            }
            let Some(plan) = plan_io(run, &mut rng, &mut cursor) else {
                break;
            };
            if plan.write {
                let bb = run.block_bytes;
                let Some(buf) = slots.buf_mut(i) else {
                    run.release(run.blocks_of(plan.unit));
                    continue;
                };
                for (k, b) in run.blocks_of(plan.unit).enumerate() {
                    fill(&mut buf[k * bb..(k + 1) * bb], b, run.next_stamp(b));
                }
            }
            plans[i] = plan;
            let sector = run.first_sector + ((plan.unit * run.unit_blocks) << run.block_shift);
            let op = if plan.write {
                SlotOp::Write
            } else {
                SlotOp::Read
            };
            if slots.submit(i, sector, op).is_err() {
                run.release(run.blocks_of(plan.unit));
            }
        }
        if slots.outstanding() == 0 {
            // Nothing could be claimed (other workers have those blocks): let them run.
            fsleep(Delta::from_millis(1));
        } else {
            slots.wait(POLL_MS);
        }
        // Completions may keep the wait from sleeping; checks of big I/Os take long.
        cond_resched();
    }
    let mut results = run.results.lock();
    if let Some(r) = &mut *results {
        r.counts.add(&counts);
        r.latency.merge(latency);
    }
}

/// Chooses and claims the next I/O; `None` if none could be claimed now.
fn plan_io(run: &Run, rng: &mut Rng, cursor: &mut Cursor) -> Option<Plan> {
    let kind = run.params.kind;
    for _ in 0..8 {
        let plan = choose(kind, rng, cursor, run.units, run.unit_blocks, |rng| {
            run.hot_block(rng)
        });
        if run.claim(plan.unit) {
            return Some(plan);
        }
        if matches!(kind, Kind::SeqRead | Kind::SeqWrite) {
            // The worker's own I/O on its next unit is still in flight (a share smaller
            // than the queue depth): wait for it.
            return None;
        }
    }
    None
}

/// Accounts for one completed I/O: checks what a read brought, records what a write
/// left, releases the blocks.
fn completed(
    run: &Run,
    slots: &mut IoSlots,
    plans: &[Plan],
    r: Reaped,
    counts: &mut Counts,
    latency: &mut Histogram,
) {
    let plan = plans[r.index];
    let blocks = run.blocks_of(plan.unit);
    let bytes = slots.bytes() as u64;
    let ok = r.status.is_ok();
    if !ok && run.core.handle().disk_dead() {
        // Failed by the block layer because the device is being removed: it never
        // reached dm-remap. A write's blocks hold what they held, or not.
        counts.aborted += 1;
        if plan.write {
            if let Some(map) = &run.map {
                for b in blocks {
                    map.words[b as usize].store(Stamp::UNKNOWN.word(), Release);
                }
            }
        } else {
            run.release(blocks);
        }
        return;
    }
    latency.record(r.latency_ns);
    if plan.write {
        counts.writes += 1;
        counts.write_bytes += bytes;
        if !ok {
            counts.write_errors += 1;
        }
        if let Some(map) = &run.map {
            for b in blocks {
                // The claim is held: nobody else changes the word.
                let st = if ok {
                    run.next_stamp(b)
                } else {
                    Stamp::UNKNOWN
                };
                map.words[b as usize].store(st.word(), Release);
            }
        }
        return;
    }
    counts.reads += 1;
    counts.read_bytes += bytes;
    if !ok {
        counts.read_errors += 1;
        run.release(blocks);
        return;
    }
    // Someone else may be writing now: what the read found proves nothing.
    let Some(map) = run
        .map
        .as_ref()
        .filter(|_| run.core.handle().openers() == 0)
    else {
        counts.unverified += run.unit_blocks;
        run.release(blocks);
        return;
    };
    let bb = run.block_bytes;
    if let Some(buf) = slots.buf(r.index) {
        for (k, b) in blocks.clone().enumerate() {
            let expected = Stamp::from_word(map.words[b as usize].load(Relaxed));
            if !expected.known() {
                counts.unverified += 1;
                continue;
            }
            counts.verified += 1;
            if let Err(m) = check(&buf[k * bb..(k + 1) * bb], b, expected) {
                counts.mismatches += 1;
                if run.logged.fetch_add(1, Relaxed) < LOGGED_MISMATCHES {
                    let mut line = Line::new();
                    let _ = write!(line, "{m}");
                    pr_err!(
                        "{}: stress run {}: mismatch: {}\n",
                        run.name(),
                        run.id,
                        line.as_str()
                    );
                }
                if let Some(r) = &mut *run.results.lock() {
                    r.list_mismatch(m);
                }
            }
        }
    }
    run.release(blocks);
}

/// The remap-heavy run's remapper: remaps random blocks of the region and moves them
/// back, keeping up to [`HOT`] remapped, while the workers aim at them; moves back what
/// it remapped when the run ends.
fn remapper(run: &Run) {
    let core = &*run.core;
    // Blocks remapped before the run are aimed at too.
    let mut from = 0;
    for slot in run.hot[HOT..].iter() {
        let last = run.region_blocks - 1;
        let Some((b, _)) = core_entries(core, from, last) else {
            break;
        };
        slot.store(b + 1, Relaxed);
        from = b + 1;
    }
    let mut rng = Rng::new(run.seed ^ 0x7265_6d61_7070_6572);
    let mut held = [0u64; HOT];
    let mut len = 0usize;
    let mut next_out = 0usize;
    while !run.stopping() && now_ns() < run.end_ns {
        fsleep(Delta::from_millis(REMAP_PAUSE_MS));
        let full = len == HOT;
        if !full {
            let b = rng.below(run.region_blocks);
            if core.table().entry(b).is_some() {
                continue;
            }
            match core.remap(b) {
                Ok(()) => {
                    let slot = (next_out + len) % HOT;
                    held[slot] = b;
                    run.hot[slot].store(b + 1, Relaxed);
                    len += 1;
                    run.remaps.add(1, Relaxed);
                }
                Err(e) if e == ENOSPC => {
                    if len == 0 {
                        run.remap_errors.add(1, Relaxed);
                        fsleep(Delta::from_millis(100));
                    } else {
                        unremap_oldest(run, &held, &mut next_out, &mut len);
                    }
                }
                Err(_) => run.remap_errors.add(1, Relaxed),
            }
        } else {
            unremap_oldest(run, &held, &mut next_out, &mut len);
        }
    }
    while len > 0 {
        unremap_oldest(run, &held, &mut next_out, &mut len);
    }
}

/// The first entry of `core`'s table in `from..=last` that is a remap.
fn core_entries(core: &dyn StressHost, mut from: u64, last: u64) -> Option<(u64, Entry)> {
    while from <= last {
        let (b, e) = Lookup::first_in(core.table(), from, last)?;
        if matches!(e, Entry::Remapped(_)) {
            return Some((b, e));
        }
        from = b + 1;
    }
    None
}

fn unremap_oldest(run: &Run, held: &[u64; HOT], next_out: &mut usize, len: &mut usize) {
    let slot = *next_out;
    run.hot[slot].store(0, Relaxed);
    match run.core.unremap(held[slot]) {
        Ok(()) => run.unremaps.add(1, Relaxed),
        // It stays remapped (the device's own state says why); it is not the run's any more.
        Err(_) => run.remap_errors.add(1, Relaxed),
    }
    *next_out = (slot + 1) % HOT;
    *len -= 1;
}

/// The CPU-cost counters of `core`'s device: samples, `map` ns, `end_io` ns.
fn cpu_counters(core: &dyn StressHost) -> [u64; 3] {
    let s = core.stats();
    [
        s.value(Slot::CpuSamples),
        s.value(Slot::CpuMapNs),
        s.value(Slot::CpuEndNs),
    ]
}

/// Ends `run` (its last task): completes its results and hands them to the device.
fn finish(run: &Arc<Run>) {
    let core = &*run.core;
    let Some(mut r) = run.results.lock().take() else {
        return;
    };
    r.elapsed_ns = now_ns().saturating_sub(run.start_ns);
    r.outcome = run.ending();
    if let Outcome::Stopped(why) = r.outcome {
        r.stopped = Some(why);
    }
    let cpu = cpu_counters(core);
    let samples = cpu[0].wrapping_sub(run.cpu_at_start[0]);
    let ns = cpu[1]
        .wrapping_sub(run.cpu_at_start[1])
        .wrapping_add(cpu[2].wrapping_sub(run.cpu_at_start[2]));
    r.cpu_ns_per_io = ns.checked_div(samples).unwrap_or(0);
    r.remaps = run.remaps.load(Relaxed);
    r.unremaps = run.unremaps.load(Relaxed);
    r.remap_errors = run.remap_errors.load(Relaxed);
    r.io_path_alloc_failures = core
        .table()
        .counters
        .alloc_failures
        .load(Relaxed)
        .wrapping_sub(run.alloc_failures_at_start);
    let written = core.handle().written_sectors();
    let own = (r.counts.write_bytes) >> 9;
    r.foreign_write_sectors = written
        .wrapping_sub(run.written_at_start)
        .saturating_sub(own);
    r.judge();
    drop(run.pressure.lock().take());
    if let Some(map) = &run.map {
        map.written_at_end.store(written, Relaxed);
    }
    let mut line = Line::new();
    let _ = write_outcome(&mut line, &r);
    let verdict = if matches!(r.outcome, Outcome::Failed(_)) {
        "FAILURE"
    } else {
        "SUCCESS"
    };
    pr_info!(
        "{}: stress run {}: {} I/Os ({} reads, {} writes), {} errors, {} mismatches, {} verified blocks: {}\n",
        run.name(),
        run.id,
        r.counts.ios(),
        r.counts.reads,
        r.counts.writes,
        r.counts.errors(),
        r.counts.mismatches,
        r.counts.verified,
        line.as_str()
    );
    pr_info!(
        "{}: stress run {}: End of test: {}\n",
        run.name(),
        run.id,
        verdict
    );
    core.stress().finished(run, r);
}

/// A device name as `TargetHandle::device_name` left it in `buf`, for the log.
fn name_str(buf: &[u8; NAME_LEN]) -> &str {
    CStr::from_bytes_until_nul(buf)
        .ok()
        .and_then(|c| c.to_str().ok())
        .unwrap_or("?")
}

/// A short line built in place (for the log).
struct Line {
    buf: [u8; 192],
    len: usize,
}

impl Line {
    fn new() -> Self {
        Self {
            buf: [0; 192],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// What `regression_test` shows.
enum RegressionState {
    None,
    Baseline,
    Verdict(Verdict),
    /// The run did not complete (stopped or failed): nothing compared.
    Incomplete,
}

/// Why a start was refused, for the log.
fn refuse(name: &str, e: Error, why: &str) -> Error {
    pr_info!("{name}: stress test not started: {why}\n");
    e
}

/// Empty results, built in place: `Results::new` (the same fields; keep them in step) would
/// build its ~5 KiB histogram on the kernel stack first.
fn new_results(run: u32, params: Params) -> Result<KBox<Results>> {
    KBox::init(
        pin_init::init!(Results {
            run,
            params,
            outcome: Outcome::Done,
            stopped: None,
            region_blocks: 0,
            elapsed_ns: 0,
            counts: Counts::default(),
            latency <- histogram(),
            cpu_ns_per_io: 0,
            remaps: 0,
            unremaps: 0,
            remap_errors: 0,
            pressure_mb: 0,
            pressure_refused: 0,
            io_path_alloc_failures: 0,
            foreign_write_sectors: 0,
            mismatch_list: [None; LISTED_MISMATCHES],
        }),
        GFP_KERNEL,
    )
}

fn histogram() -> impl Init<Histogram> {
    pin_init::init!(Histogram {
        buckets <- pin_init::init_array_from_fn(|_| 0u64),
        count: 0,
        sum: 0,
        max: 0,
    })
}

/// A device's engine state.
struct State {
    /// The live target a device's runs use.
    host: Option<Arc<dyn StressHost>>,
    /// The run going on, until its last task ends it.
    run: Option<Arc<Run>>,
    /// The last run's tasks not yet returned, and its target (`StressHost::id`).
    tasks: Option<(usize, Arc<Countdown>)>,
    /// The queue the runs' tasks run on (made at the first run, kept with the device; it
    /// goes with the device, which a task never holds the last reference to, see
    /// [`Task::run`]).
    queue: Option<OwnedQueue>,
    allow_writes: bool,
    next_run: u32,
    map: Option<Arc<StampMap>>,
    /// Finished runs, newest last.
    history: KVec<KBox<Results>>,
    regression_baseline: Option<Baseline>,
    regression: RegressionState,
    /// Threshold of the regression verdict (the device's `baseline/threshold_pct`).
    regression_threshold_pct: u32,
}

/// The stress engine of one dm device (kept with its sysfs directory).
#[pin_data]
pub(crate) struct Stress {
    #[pin]
    state: Mutex<State>,
}

impl Stress {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            state <- new_mutex!(State {
                host: None,
                run: None,
                tasks: None,
                queue: None,
                allow_writes: false,
                next_run: 1,
                map: None,
                history: KVec::new(),
                regression_baseline: None,
                regression: RegressionState::None,
                regression_threshold_pct: 0,
            }),
        })
    }

    /// Target `core` went live (resume): runs use it from now on. A different target than
    /// the one the stamps describe drops them.
    pub(crate) fn attach(&self, core: Arc<dyn StressHost>) {
        let mut s = self.state.lock();
        if s.map.as_ref().is_some_and(|m| m.host != core.id()) {
            s.map = None;
        }
        s.host = Some(core);
    }

    /// Target `id` is suspended (`Suspend`) or destroyed (`Remove`): a run using it stops,
    /// and this returns when the run's tasks have returned (so none holds the target any
    /// more). Sleeps.
    pub(crate) fn detach(&self, id: usize, why: StopReason) {
        let (host, tasks) = {
            let mut s = self.state.lock();
            if why == StopReason::Remove && s.map.as_ref().is_some_and(|m| m.host == id) {
                s.map = None;
            }
            let host = if s.host.as_ref().is_some_and(|h| h.id() == id) {
                s.host.take()
            } else {
                None
            };
            if let Some(run) = s.run.as_ref().filter(|r| r.core.id() == id) {
                run.end(Outcome::Stopped(why));
            }
            // The last run's tasks may still be returning after it ended.
            let tasks = s
                .tasks
                .as_ref()
                .filter(|(core, _)| *core == id)
                .map(|(_, t)| t.clone());
            (host, tasks)
        };
        // Not under the lock: the last task takes it to hand over its results.
        if let Some(t) = tasks {
            t.wait();
        }
        // The host's `Arc<Core>` goes outside the lock.
        drop(host);
    }

    /// Stops the run going on, if any, and waits for its tasks; `false` if none was going.
    /// Sleeps.
    pub(crate) fn stop(&self, why: StopReason) -> bool {
        let tasks = {
            let s = self.state.lock();
            let Some(run) = s.run.as_ref() else {
                return false;
            };
            run.end(Outcome::Stopped(why));
            s.tasks.as_ref().map(|(_, t)| t.clone())
        };
        if let Some(t) = tasks {
            t.wait();
        }
        true
    }
}

impl Stress {
    /// `stress_test_start`: parses `input` and starts a run.
    pub(crate) fn start_line(&self, input: &[u8]) -> Result {
        self.start(
            |bb| crate::logic::stress::parse_start(input, bb),
            Purpose::Plain,
            0,
        )
    }

    /// `quick_validation`: a 30 s mixed run.
    pub(crate) fn quick_validation(&self) -> Result {
        self.start(|bb| Ok(mixed_params(bb, QUICK_MS)), Purpose::Quick, 0)
    }

    /// `regression_test`: the fixed workload, compared with the baseline when it ends
    /// (recorded as the baseline if there is none), under `threshold_pct`.
    pub(crate) fn regression_test(&self, threshold_pct: u32) -> Result {
        self.state.lock().regression_threshold_pct = threshold_pct;
        self.start(|bb| Ok(regression_params(bb)), Purpose::Regression, 0)
    }

    /// `regression_test` written `reset`: forgets the baseline.
    pub(crate) fn regression_reset(&self) {
        let mut s = self.state.lock();
        s.regression_baseline = None;
        s.regression = RegressionState::None;
    }

    /// `memory_pressure_test`: holds `mb` MiB while a mixed run goes on for `ms`.
    pub(crate) fn memory_pressure(&self, mb: u64, ms: u64) -> Result {
        self.start(|bb| Ok(mixed_params(bb, ms)), Purpose::Pressure, mb)
    }

    /// Starts a run with the parameters `parse` gives for the device's block size.
    fn start(
        &self,
        parse: impl FnOnce(u32) -> Result<Params, ParamError>,
        purpose: Purpose,
        pressure_mb: u64,
    ) -> Result {
        let mut s = self.state.lock();
        let s = &mut *s;
        // An ended run's tasks may still be returning (moments): one run's tasks at a time,
        // so that a target's detach knows which to wait for. (Waited for under the lock
        // only once the run ended: its last task takes the lock to hand over its results.)
        if s.run.is_none() {
            if let Some((_, t)) = s.tasks.take() {
                t.wait();
            }
        }
        let Some(host) = s.host.as_ref() else {
            return Err(refuse(
                "?",
                ENODEV,
                "the device is suspended or has no live remap table",
            ));
        };
        let core = host.clone();
        let host_id = core.id();
        let mut name = [0u8; NAME_LEN];
        let _ = core.handle().device_name(&mut name);
        let dev = name_str(&name);
        let block_bytes = core.block_bytes();
        let params = parse(block_bytes).map_err(|e| refuse(dev, EINVAL, e.message()))?;
        if s.run.is_some() {
            return Err(refuse(dev, EBUSY, "a run is going on"));
        }
        let writes = params.kind.writes();
        if writes {
            if !s.allow_writes {
                return Err(refuse(
                    dev,
                    EPERM,
                    "it writes, and stress/allow_writes is 0 (its data would be overwritten)",
                ));
            }
            if !core.handle().writable() {
                return Err(refuse(dev, EROFS, "it writes, and the device is read-only"));
            }
            if core.handle().openers() > 0 {
                return Err(refuse(
                    dev,
                    EBUSY,
                    "it writes, and the device is open (mounted or held by a process)",
                ));
            }
        }
        let region_blocks = core.blocks().min(MAX_REGION_BLOCKS);
        // `checked_div` rather than `/`: no panic path (objtool in 7.3 does not know
        // `panic_const_div_by_zero` ends a function).
        let unit_blocks = u64::from(params.io_bytes.checked_div(block_bytes).unwrap_or(1)).max(1);
        let units = region_blocks.checked_div(unit_blocks).unwrap_or(0);
        if units < u64::from(params.workers) {
            return Err(refuse(
                dev,
                EINVAL,
                "the device is too small for that many workers of that I/O size",
            ));
        }
        // The stamps are good only if nobody else wrote since the last run ended.
        if let Some(m) = &s.map {
            let written = core.handle().written_sectors();
            if m.host != host_id || m.words.len() as u64 != region_blocks {
                s.map = None;
            } else if written != m.written_at_end.load(Relaxed) {
                pr_info!("{dev}: stress: the device was written since the last run; what the engine wrote before is not checked\n");
                s.map = None;
            }
        }
        if writes && s.map.is_none() {
            let map = StampMap::new(region_blocks, host_id)
                .map_err(|e| refuse(dev, e, "no memory for the block stamps"))?;
            s.map = Some(Arc::new(map, GFP_KERNEL)?);
        }
        if s.queue.is_none() {
            s.queue = Some(OwnedQueue::unbound(c"dm_remap_stress", MAX_WORKERS + 1)?);
        }
        if s.history.capacity() < HISTORY {
            s.history.reserve(HISTORY, GFP_KERNEL)?;
        }
        let id = s.next_run;
        let mut results = new_results(id, params)?;
        results.region_blocks = region_blocks;
        let mut seed = [0u8; 8];
        random_bytes(&mut seed);
        let now = now_ns();
        // A read run of a device someone has open checks nothing: they may write.
        let map = if !writes && core.handle().openers() > 0 {
            if s.map.is_some() {
                pr_info!(
                    "{dev}: stress: the device is open; this run does not check what it reads\n"
                );
            }
            None
        } else {
            s.map.clone()
        };
        let written_at_start = core.handle().written_sectors();
        let cpu_at_start = cpu_counters(&*core);
        let alloc_failures_at_start = core.table().counters.alloc_failures.load(Relaxed);
        let (first_sector, block_shift) = (core.first_sector(), core.block_shift());
        let run_core = core.clone();
        let run = Arc::pin_init(
            pin_init!(Run {
                id,
                params,
                purpose,
                core: run_core,
                name,
                region_blocks,
                unit_blocks,
                units,
                block_bytes: block_bytes as usize,
                first_sector,
                block_shift,
                map,
                start_ns: now,
                end_ns: now + params.duration_ms * 1_000_000,
                seed: u64::from_le_bytes(seed),
                stop: Atomic::new(GOING),
                hot: [const { Atomic::new(0u64) }; 2 * HOT],
                remaps: Atomic::new(0),
                unremaps: Atomic::new(0),
                remap_errors: Atomic::new(0),
                left: Atomic::new(0),
                cpu_at_start,
                alloc_failures_at_start,
                written_at_start,
                logged: Atomic::new(0),
                results <- new_mutex!(Some(results)),
                pressure <- new_mutex!(None),
            }),
            GFP_KERNEL,
        )?;
        // Everything each task needs, before any starts.
        let remapper = params.kind == Kind::RemapHeavy;
        let count = params.workers + u32::from(remapper);
        let countdown = Arc::new(Countdown::new(count as i32), GFP_KERNEL)?;
        let mut tasks = KVec::with_capacity(count as usize, GFP_KERNEL)?;
        for n in 0..params.workers {
            let qd = params.queue_depth as usize;
            let mut plans = KVec::with_capacity(qd, GFP_KERNEL)?;
            for _ in 0..qd {
                plans.push(
                    Plan {
                        unit: 0,
                        write: false,
                    },
                    GFP_KERNEL,
                )?;
            }
            let kit = Kit {
                slots: IoSlots::new(core.handle(), qd, params.io_bytes as usize)
                    .map_err(|e| refuse(dev, e, "no memory for the bios and buffers"))?,
                plans,
                latency: KBox::init(histogram(), GFP_KERNEL)?,
            };
            tasks.push(
                new_task(&run, &countdown, Role::Io(n), Some(kit))?,
                GFP_KERNEL,
            )?;
        }
        if remapper {
            tasks.push(
                new_task(&run, &countdown, Role::Remapper, None)?,
                GFP_KERNEL,
            )?;
        }
        run.left.store(count, Relaxed);
        // The memory pressure last: nothing the run needs is allocated under it.
        if purpose == Purpose::Pressure {
            let pages =
                pressure_mb.saturating_mul(1 << 20) / u64::from(kernel::page::PAGE_SIZE as u32);
            let (hold, refused) = PageHold::take(usize::try_from(pages).map_err(|_| EINVAL)?)?;
            if let Some(r) = &mut *run.results.lock() {
                r.pressure_mb = (hold.len() as u64 * kernel::page::PAGE_SIZE as u64) >> 20;
                r.pressure_refused = refused;
            }
            *run.pressure.lock() = Some(hold);
        }
        pr_info!(
            "{dev}: stress run {id}: type {} ({}) workers {} queue_depth {} io_bytes {} duration_ms {} region_blocks {}{}\n",
            params.kind.number(),
            params.kind.name(),
            params.workers,
            params.queue_depth,
            params.io_bytes,
            params.duration_ms,
            region_blocks,
            match purpose {
                Purpose::Plain => "",
                Purpose::Quick => " (quick_validation)",
                Purpose::Regression => " (regression_test)",
                Purpose::Pressure => " (memory_pressure_test)",
            }
        );
        // Run numbers stay below the stamps' "unknown" run.
        s.next_run = if id + 1 >= UNKNOWN_RUN { 1 } else { id + 1 };
        s.run = Some(run);
        s.tasks = Some((host_id, countdown));
        let queue = s.queue.as_ref().ok_or(EINVAL)?;
        for t in tasks {
            // A task is queued once, so it cannot be queued already.
            let _ = queue.queue().enqueue(t);
        }
        Ok(())
    }

    /// Called by the last task of `run` with its results.
    fn finished(&self, run: &Arc<Run>, r: KBox<Results>) {
        let mut s = self.state.lock();
        if s.run.as_ref().is_some_and(|x| Arc::ptr_eq(x, run)) {
            s.run = None;
        }
        // Others wrote during the run: the stamps no longer say what the blocks hold.
        if r.foreign_write_sectors > 0 || r.outcome == Outcome::Failed(FailReason::Opened) {
            if let (Some(a), Some(b)) = (&s.map, &run.map) {
                if Arc::ptr_eq(a, b) {
                    s.map = None;
                }
            }
        }
        if run.purpose == Purpose::Regression {
            s.regression = if r.outcome != Outcome::Done {
                RegressionState::Incomplete
            } else if let Some(b) = s.regression_baseline {
                RegressionState::Verdict(Verdict::of(b, &r, s.regression_threshold_pct))
            } else {
                s.regression_baseline = Some(Baseline::of(&r));
                RegressionState::Baseline
            };
        }
        if s.history.len() == HISTORY {
            let _ = s.history.remove(0);
        }
        // Capacity was reserved when the run started.
        let _ = s.history.push_within_capacity(r);
    }

    /// Whether write runs are allowed.
    pub(crate) fn allow_writes(&self) -> bool {
        self.state.lock().allow_writes
    }

    /// Sets `allow_writes`.
    pub(crate) fn set_allow_writes(&self, on: bool) {
        self.state.lock().allow_writes = on;
    }

    /// `stress_test_stop`: `ESRCH` if no run is going on.
    pub(crate) fn stop_request(&self) -> Result {
        if self.stop(StopReason::Request) {
            Ok(())
        } else {
            Err(ESRCH)
        }
    }

    /// `stress_test_status`.
    pub(crate) fn write_status(&self, out: &mut impl Write) -> core::fmt::Result {
        let s = self.state.lock();
        if let Some(run) = &s.run {
            let span = run.end_ns.saturating_sub(run.start_ns).max(1);
            let pct = (now_ns().saturating_sub(run.start_ns).saturating_mul(100))
                .checked_div(span)
                .unwrap_or(0)
                .min(99);
            return writeln!(out, "running {pct}%");
        }
        match s.history.last() {
            Some(r) => {
                write_outcome(out, r)?;
                writeln!(out)
            }
            None => writeln!(out, "idle"),
        }
    }

    /// `stress_test_results`: the last finished run's, or nothing.
    pub(crate) fn write_results(&self, out: &mut impl Write) -> core::fmt::Result {
        match self.state.lock().history.last() {
            Some(r) => write_results(out, r),
            None => Ok(()),
        }
    }

    /// `regression_test` read.
    pub(crate) fn write_regression(&self, out: &mut impl Write) -> core::fmt::Result {
        let s = self.state.lock();
        if s.run
            .as_ref()
            .is_some_and(|r| r.purpose == Purpose::Regression)
        {
            return writeln!(out, "running");
        }
        match (&s.regression, s.regression_baseline) {
            (RegressionState::None, _) => writeln!(out, "none"),
            (RegressionState::Baseline, Some(b)) => writeln!(
                out,
                "BASELINE recorded: mean latency {} ns, {} IOPS",
                b.mean_ns, b.iops
            ),
            (RegressionState::Baseline, None) => writeln!(out, "none"),
            (RegressionState::Verdict(v), _) => {
                v.write(out)?;
                writeln!(out)
            }
            (RegressionState::Incomplete, _) => {
                writeln!(
                    out,
                    "INCOMPLETE: the run was stopped or failed; nothing compared"
                )
            }
        }
    }

    /// The engine's part of `comprehensive_report`.
    pub(crate) fn write_report(&self, out: &mut impl Write) -> core::fmt::Result {
        let s = self.state.lock();
        writeln!(
            out,
            "stress: allow_writes {}, {}",
            u8::from(s.allow_writes),
            if s.run.is_some() {
                "a run is going on"
            } else {
                "no run going on"
            }
        )?;
        if s.history.is_empty() {
            writeln!(out, "stress runs: none")?;
        }
        for r in s.history.iter() {
            write_summary(out, r)?;
        }
        drop(s);
        write!(out, "regression_test: ")?;
        self.write_regression(out)
    }
}

fn new_task(
    run: &Arc<Run>,
    tasks: &Arc<Countdown>,
    role: Role,
    kit: Option<Kit>,
) -> Result<Arc<Task>> {
    Arc::pin_init(
        pin_init!(Task {
            run: run.clone(),
            tasks: tasks.clone(),
            role,
            kit <- new_mutex!(kit),
            work <- new_work!("Task::work"),
        }),
        GFP_KERNEL,
    )
}
