// SPDX-License-Identifier: GPL-2.0

//! Pure logic of the in-kernel stress engine (`src/stress.rs`): what its control files
//! accept, the data pattern every write carries and every read checks, the choice of each
//! next I/O, and the results as the files show them.
//!
//! The pattern: every 512-byte sector of a block written by the engine starts with a
//! header (a magic number, the block number, the run and the block's generation in that
//! run, the sector's index in the block) and is filled with words derived from them. A
//! read of a block the engine wrote checks every byte against what the engine last wrote
//! there, so data from another block, an older write, another run or anyone else is told
//! apart in the report.

use super::args::parse_u64;
use super::histogram::{self, Histogram};
use super::rng::{mix, Rng};
use super::stats::{change_permille, per_second, write_permille};
use core::fmt::{self, Write};

/// Most workers of one run.
pub const MAX_WORKERS: u32 = 32;
/// Most I/Os one worker keeps in flight.
pub const MAX_QUEUE_DEPTH: u32 = 256;
/// Most I/Os in flight in one run (workers x queue depth).
pub const MAX_IN_FLIGHT: u32 = 4096;
/// Largest I/O.
pub const MAX_IO_KIB: u32 = 1024;
/// Most buffer memory of one run (workers x queue depth x I/O size), in KiB.
pub const MAX_BUFFER_KIB: u64 = 64 * 1024;
/// Longest run (an hour).
pub const MAX_DURATION_MS: u64 = 3_600_000;
/// Queue depth when the start line gives none.
pub const DEFAULT_QUEUE_DEPTH: u32 = 8;
/// Most blocks a run works on (from block 0): the engine keeps 8 bytes per block to know
/// what each holds (8 MiB at this size).
pub const MAX_REGION_BLOCKS: u64 = 1 << 20;
/// Most memory `memory_pressure_test` holds, in MiB.
pub const MAX_PRESSURE_MB: u64 = 1 << 20;
/// Bytes of one pattern unit (a sector).
pub const UNIT: usize = 512;

/// What a run does: the number written to `stress_test_start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// 0: each worker reads its share of the region in order.
    SeqRead,
    /// 1: random reads over the region.
    RandRead,
    /// 2: each worker writes its share of the region in order.
    SeqWrite,
    /// 3: random writes over the region.
    RandWrite,
    /// 4: 70% reads, 80% of the I/Os at random places (the rest continue in order).
    Mixed,
    /// 5: I/O aimed at remapped blocks and their neighbours (half reads) while blocks are
    /// remapped and moved back.
    RemapHeavy,
}

impl Kind {
    /// All kinds, by number.
    pub const ALL: [Kind; 6] = [
        Kind::SeqRead,
        Kind::RandRead,
        Kind::SeqWrite,
        Kind::RandWrite,
        Kind::Mixed,
        Kind::RemapHeavy,
    ];

    /// The kind numbered `n`.
    pub fn from_number(n: u64) -> Option<Self> {
        Self::ALL.get(usize::try_from(n).ok()?).copied()
    }

    /// Its number.
    pub fn number(self) -> u32 {
        self as u32
    }

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::SeqRead => "sequential_read",
            Kind::RandRead => "random_read",
            Kind::SeqWrite => "sequential_write",
            Kind::RandWrite => "random_write",
            Kind::Mixed => "mixed",
            Kind::RemapHeavy => "remap_heavy",
        }
    }

    /// Whether it changes data on the device (needs `allow_writes`).
    pub fn writes(self) -> bool {
        !matches!(self, Kind::SeqRead | Kind::RandRead)
    }
}

/// A run's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub kind: Kind,
    pub workers: u32,
    pub duration_ms: u64,
    pub queue_depth: u32,
    /// Bytes per I/O: a whole number of blocks.
    pub io_bytes: u32,
}

/// Why a start line was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamError {
    Syntax,
    Kind,
    Workers,
    Duration,
    QueueDepth,
    IoSize,
    InFlight,
    Memory,
}

impl ParamError {
    /// What the kernel log says.
    pub fn message(self) -> &'static str {
        match self {
            ParamError::Syntax => {
                "expected <type> <workers> <duration_ms> [<queue_depth> [<io_kib>]] (decimal)"
            }
            ParamError::Kind => "type must be 0 to 5",
            ParamError::Workers => "workers must be 1 to 32",
            ParamError::Duration => "duration_ms must be 1 to 3600000",
            ParamError::QueueDepth => "queue_depth must be 1 to 256",
            ParamError::IoSize => {
                "io_kib must be a whole number of blocks, at least one block, at most 1024"
            }
            ParamError::InFlight => "workers x queue_depth must be at most 4096",
            ParamError::Memory => "workers x queue_depth x io_kib must be at most 65536 KiB",
        }
    }
}

/// Splits `input` at runs of spaces and tabs.
fn words(input: &[u8]) -> impl Iterator<Item = &[u8]> {
    input
        .split(|c| *c == b' ' || *c == b'\t')
        .filter(|w| !w.is_empty())
}

/// Parses `<type> <workers> <duration_ms> [<queue_depth> [<io_kib>]]` for a device of
/// `block_bytes` blocks (the I/O size defaults to one block).
pub fn parse_start(input: &[u8], block_bytes: u32) -> Result<Params, ParamError> {
    let mut n = [0u64; 5];
    let mut count = 0;
    for w in words(input) {
        if count == n.len() {
            return Err(ParamError::Syntax);
        }
        n[count] = parse_u64(w).map_err(|_| ParamError::Syntax)?;
        count += 1;
    }
    if count < 3 {
        return Err(ParamError::Syntax);
    }
    let kind = Kind::from_number(n[0]).ok_or(ParamError::Kind)?;
    let workers = u32::try_from(n[1])
        .ok()
        .filter(|w| (1..=MAX_WORKERS).contains(w))
        .ok_or(ParamError::Workers)?;
    let duration_ms = n[2];
    if !(1..=MAX_DURATION_MS).contains(&duration_ms) {
        return Err(ParamError::Duration);
    }
    let queue_depth = if count > 3 {
        u32::try_from(n[3])
            .ok()
            .filter(|q| (1..=MAX_QUEUE_DEPTH).contains(q))
            .ok_or(ParamError::QueueDepth)?
    } else {
        DEFAULT_QUEUE_DEPTH
    };
    let io_bytes = if count > 4 {
        let kib = n[4];
        if kib == 0 || kib > u64::from(MAX_IO_KIB) {
            return Err(ParamError::IoSize);
        }
        // At most MAX_IO_KIB KiB: fits.
        let bytes = (kib * 1024) as u32;
        if block_bytes == 0 || !bytes.is_multiple_of(block_bytes) {
            return Err(ParamError::IoSize);
        }
        bytes
    } else {
        block_bytes
    };
    if io_bytes == 0 || io_bytes > MAX_IO_KIB * 1024 {
        return Err(ParamError::IoSize);
    }
    if workers * queue_depth > MAX_IN_FLIGHT {
        return Err(ParamError::InFlight);
    }
    let kib = u64::from(workers) * u64::from(queue_depth) * u64::from(io_bytes).div_ceil(1024);
    if kib > MAX_BUFFER_KIB {
        return Err(ParamError::Memory);
    }
    Ok(Params {
        kind,
        workers,
        duration_ms,
        queue_depth,
        io_bytes,
    })
}

/// Parses `<pressure_mb> <duration_ms>` for `memory_pressure_test`.
pub fn parse_pressure(input: &[u8]) -> Option<(u64, u64)> {
    let mut it = words(input);
    let mb = parse_u64(it.next()?).ok()?;
    let ms = parse_u64(it.next()?).ok()?;
    if it.next().is_some()
        || !(1..=MAX_PRESSURE_MB).contains(&mb)
        || !(1..=MAX_DURATION_MS).contains(&ms)
    {
        return None;
    }
    Some((mb, ms))
}

// --- What each block holds: a stamp per block, kept by the engine. ---

/// Set while an I/O of the engine owns the block (no other I/O of the engine touches it).
pub const CLAIM: u64 = 1 << 63;
/// The run number of a block whose content is unknown (a write to it failed).
pub const UNKNOWN_RUN: u32 = 0x7fff_ffff;

/// What the engine last wrote to a block: its run (1 or more; 0: never written) and the
/// block's generation in that run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub run: u32,
    pub gen: u32,
}

impl Stamp {
    /// From a stamp word (the claim bit ignored).
    pub fn from_word(w: u64) -> Self {
        Self {
            run: ((w >> 32) as u32) & 0x7fff_ffff,
            gen: w as u32,
        }
    }

    /// As a stamp word (not claimed).
    pub fn word(self) -> u64 {
        (u64::from(self.run & 0x7fff_ffff) << 32) | u64::from(self.gen)
    }

    /// Whether a read of the block can be checked.
    pub fn known(self) -> bool {
        self.run != 0 && self.run != UNKNOWN_RUN
    }

    /// The stamp of the next write in run `run`.
    pub fn next(self, run: u32) -> Self {
        if self.run == run {
            Self {
                run,
                gen: self.gen.wrapping_add(1).max(1),
            }
        } else {
            Self { run, gen: 1 }
        }
    }

    /// A block whose content is unknown.
    pub const UNKNOWN: Self = Self {
        run: UNKNOWN_RUN,
        gen: 0,
    };
}

// --- The pattern. ---

const MAGIC: u64 = u64::from_le_bytes(*b"dmrSTRS1");
const WORDS: usize = UNIT / 8;

fn seed(block: u64, stamp: Stamp, unit: u64) -> u64 {
    mix(block ^ mix(stamp.word() ^ (unit << 48)))
}

fn put(buf: &mut [u8], i: usize, v: u64) {
    buf[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
}

fn get(buf: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&buf[i * 8..i * 8 + 8]);
    u64::from_le_bytes(w)
}

/// The `k`th filler word of a unit.
fn filler(seed: u64, k: usize) -> u64 {
    seed.wrapping_add((k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Fills `buf` (a whole block) with the pattern of `block` written with `stamp`.
pub fn fill(buf: &mut [u8], block: u64, stamp: Stamp) {
    for (unit, u) in buf.chunks_exact_mut(UNIT).enumerate() {
        let unit = unit as u64;
        put(u, 0, MAGIC);
        put(u, 1, block);
        put(u, 2, stamp.word());
        put(u, 3, unit);
        let s = seed(block, stamp, unit);
        for k in 4..WORDS {
            put(u, k, filler(s, k));
        }
    }
}

/// What a read found instead of the expected pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// This block's pattern of another write (an older one: data lost).
    Stale(Stamp),
    /// Another block's pattern (data in the wrong place).
    Misplaced { block: u64, stamp: Stamp },
    /// A header as expected but different bytes after it (damaged data).
    Damaged,
    /// No pattern at all (someone else's data, zeroes).
    Foreign,
}

/// A read that did not find what the engine last wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub block: u64,
    /// The first unit (sector of the block) that differs.
    pub unit: u32,
    pub expected: Stamp,
    pub found: Found,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "block {} sector {}: expected run {} gen {}, found ",
            self.block, self.unit, self.expected.run, self.expected.gen
        )?;
        match self.found {
            Found::Stale(s) => write!(f, "an older write (run {} gen {})", s.run, s.gen),
            Found::Misplaced { block, stamp } => write!(
                f,
                "block {block}'s data (run {} gen {})",
                stamp.run, stamp.gen
            ),
            Found::Damaged => write!(f, "damaged data"),
            Found::Foreign => write!(f, "data the engine did not write"),
        }
    }
}

/// Checks `buf` (a whole block read from `block`) against `expected`.
pub fn check(buf: &[u8], block: u64, expected: Stamp) -> Result<(), Mismatch> {
    for (unit, u) in buf.chunks_exact(UNIT).enumerate() {
        let n = unit as u64;
        let bad = |found| Mismatch {
            block,
            unit: unit as u32,
            expected,
            found,
        };
        if get(u, 0) != MAGIC || get(u, 3) != n {
            return Err(bad(Found::Foreign));
        }
        let (b, st) = (get(u, 1), Stamp::from_word(get(u, 2)));
        if b != block {
            return Err(bad(Found::Misplaced {
                block: b,
                stamp: st,
            }));
        }
        if st != expected {
            return Err(bad(Found::Stale(st)));
        }
        let s = seed(block, expected, n);
        if (4..WORDS).any(|k| get(u, k) != filler(s, k)) {
            return Err(bad(Found::Damaged));
        }
    }
    Ok(())
}

// --- Choosing the next I/O. ---

/// A worker's position for I/O in order: the next unit in its share of the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub start: u64,
    pub end: u64,
    pub next: u64,
}

impl Cursor {
    /// Worker `w` of `workers`'s share of `units` I/O units (every worker gets at least one
    /// unit when there are enough; shares wrap around the region otherwise).
    pub fn share(units: u64, workers: u32, w: u32) -> Self {
        let (workers, w) = (u64::from(workers.max(1)), u64::from(w));
        let per = (units / workers).max(1);
        let start = (w * per) % units.max(1);
        let end = if w + 1 == workers {
            units.max(start + 1)
        } else {
            (start + per).min(units.max(1))
        };
        Self {
            start,
            end,
            next: start,
        }
    }

    /// The next unit in order (wrapping around the share).
    pub fn step(&mut self) -> u64 {
        let u = self.next;
        self.next = if u + 1 >= self.end { self.start } else { u + 1 };
        u
    }
}

/// The next I/O: which unit, read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub unit: u64,
    pub write: bool,
}

/// Chooses the next I/O of a run of `kind` over `units` I/O units of `unit_blocks`
/// blocks. `hot` gives a remapped block (for [`Kind::RemapHeavy`]), if any.
pub fn choose(
    kind: Kind,
    rng: &mut Rng,
    cursor: &mut Cursor,
    units: u64,
    unit_blocks: u64,
    hot: impl FnOnce(&mut Rng) -> Option<u64>,
) -> Plan {
    let random = |rng: &mut Rng| rng.below(units);
    match kind {
        Kind::SeqRead => Plan {
            unit: cursor.step(),
            write: false,
        },
        Kind::RandRead => Plan {
            unit: random(rng),
            write: false,
        },
        Kind::SeqWrite => Plan {
            unit: cursor.step(),
            write: true,
        },
        Kind::RandWrite => Plan {
            unit: random(rng),
            write: true,
        },
        Kind::Mixed => {
            let write = !rng.chance(700);
            let unit = if rng.chance(800) {
                random(rng)
            } else {
                cursor.step()
            };
            Plan { unit, write }
        }
        Kind::RemapHeavy => {
            let write = rng.chance(500);
            let aimed = if rng.chance(800) { hot(rng) } else { None };
            let unit = match aimed {
                Some(b) => {
                    // The block, or the one before or after it.
                    let b = match rng.below(3) {
                        0 => b.saturating_sub(1),
                        1 => b,
                        _ => b + 1,
                    };
                    (b / unit_blocks.max(1)).min(units.saturating_sub(1))
                }
                None => random(rng),
            };
            Plan { unit, write }
        }
    }
}

// --- Results. ---

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Ran for its duration.
    Done,
    /// Stopped early by `stress_test_stop`, a suspend, removal or reboot.
    Stopped(StopReason),
    /// Could not go on, or found errors or mismatches.
    Failed(FailReason),
}

/// Why a run stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    Request,
    Suspend,
    Remove,
    Reboot,
    Sleep,
}

impl StopReason {
    pub fn name(self) -> &'static str {
        match self {
            StopReason::Request => "stress_test_stop",
            StopReason::Suspend => "device suspended",
            StopReason::Remove => "device removed",
            StopReason::Reboot => "reboot",
            StopReason::Sleep => "system suspend or hibernation",
        }
    }
}

/// Why a run failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// Data read back was not what the engine wrote.
    Mismatches,
    /// I/Os failed.
    Errors,
    /// Someone opened the device during a run that writes.
    Opened,
}

impl FailReason {
    pub fn name(self) -> &'static str {
        match self {
            FailReason::Mismatches => "data mismatches",
            FailReason::Errors => "I/O errors",
            FailReason::Opened => "the device was opened during a run that writes",
        }
    }
}

/// Counts of one worker (summed into the run's).
#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub reads: u64,
    pub writes: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub read_errors: u64,
    pub write_errors: u64,
    pub mismatches: u64,
    /// Blocks read whose content was checked.
    pub verified: u64,
    /// Blocks read that the engine never wrote (or whose write failed), or read while
    /// someone else had the device open: not checked.
    pub unverified: u64,
    /// I/Os that failed because the device was being removed (not counted as reads,
    /// writes or errors: they never reached dm-remap).
    pub aborted: u64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.reads += o.reads;
        self.writes += o.writes;
        self.read_bytes += o.read_bytes;
        self.write_bytes += o.write_bytes;
        self.read_errors += o.read_errors;
        self.write_errors += o.write_errors;
        self.mismatches += o.mismatches;
        self.verified += o.verified;
        self.unverified += o.unverified;
        self.aborted += o.aborted;
    }

    pub fn ios(&self) -> u64 {
        self.reads + self.writes
    }

    pub fn errors(&self) -> u64 {
        self.read_errors + self.write_errors
    }
}

/// Mismatches a report lists (the count has them all).
pub const LISTED_MISMATCHES: usize = 8;

/// What a run measured.
#[derive(Clone, Debug)]
pub struct Results {
    pub run: u32,
    pub params: Params,
    pub outcome: Outcome,
    /// Why the run ended early, if it did (kept when mismatches or errors fail it).
    pub stopped: Option<StopReason>,
    pub region_blocks: u64,
    pub elapsed_ns: u64,
    pub counts: Counts,
    /// Latency of every I/O, submission to completion.
    pub latency: Histogram,
    /// dm-remap's CPU time per I/O (`map` and `end_io`, sampled by the device's counters)
    /// over the run; 0 with instrumentation off.
    pub cpu_ns_per_io: u64,
    /// Remaps and moves back done by a remap-heavy run, and those refused.
    pub remaps: u64,
    pub unremaps: u64,
    pub remap_errors: u64,
    /// Memory held by `memory_pressure_test` (MiB) and allocations it was refused.
    pub pressure_mb: u64,
    pub pressure_refused: u64,
    /// I/Os dm-remap failed because it could not allocate memory, over the run.
    pub io_path_alloc_failures: u64,
    /// Sectors written or discarded on the device by others during the run (then
    /// mismatches may be theirs, and what the engine wrote is not checked later).
    pub foreign_write_sectors: u64,
    pub mismatch_list: [Option<Mismatch>; LISTED_MISMATCHES],
}

impl Results {
    /// Empty results for a run starting with `params` (the kernel builds them in place
    /// instead, field by field: `src/stress.rs`, `new_results`).
    pub fn new(run: u32, params: Params) -> Self {
        Self {
            run,
            params,
            outcome: Outcome::Done,
            stopped: None,
            region_blocks: 0,
            elapsed_ns: 0,
            counts: Counts::default(),
            latency: Histogram::new(),
            cpu_ns_per_io: 0,
            remaps: 0,
            unremaps: 0,
            remap_errors: 0,
            pressure_mb: 0,
            pressure_refused: 0,
            io_path_alloc_failures: 0,
            foreign_write_sectors: 0,
            mismatch_list: [None; LISTED_MISMATCHES],
        }
    }

    /// Records a mismatch in the list (the first ones are kept).
    pub fn list_mismatch(&mut self, m: Mismatch) {
        if let Some(slot) = self.mismatch_list.iter_mut().find(|s| s.is_none()) {
            *slot = Some(m);
        }
    }

    /// The outcome from the counts: mismatches, then I/O errors fail a run that ended in
    /// time or was stopped (a run that failed otherwise keeps its reason).
    pub fn judge(&mut self) {
        if matches!(self.outcome, Outcome::Done | Outcome::Stopped(_)) {
            if self.counts.mismatches > 0 {
                self.outcome = Outcome::Failed(FailReason::Mismatches);
            } else if self.counts.errors() > 0 {
                self.outcome = Outcome::Failed(FailReason::Errors);
            }
        }
    }

    /// Mean latency in ns (0 without I/O).
    pub fn mean_ns(&self) -> u64 {
        self.latency
            .sum
            .checked_div(self.latency.count)
            .unwrap_or(0)
    }

    /// I/Os per second.
    pub fn iops(&self) -> u64 {
        per_second(self.counts.ios(), self.elapsed_ns)
    }

    fn quantile(&self, permille: u32) -> u64 {
        histogram::quantile(&self.latency.buckets, permille).unwrap_or(0)
    }
}

/// Writes the outcome as `stress_test_status` shows a finished run.
pub fn write_outcome(out: &mut impl Write, r: &Results) -> fmt::Result {
    match r.outcome {
        Outcome::Done => write!(out, "done"),
        Outcome::Stopped(_) => write!(out, "stopped"),
        Outcome::Failed(FailReason::Mismatches) => {
            write!(
                out,
                "failed: {} data mismatches (first at block {}",
                r.counts.mismatches,
                r.mismatch_list[0].map_or(0, |m| m.block)
            )?;
            if r.foreign_write_sectors > 0 {
                write!(
                    out,
                    "; the device was also written by others during the run"
                )?;
            }
            write!(out, ")")
        }
        Outcome::Failed(FailReason::Errors) => write!(
            out,
            "failed: {} I/O errors ({} reads, {} writes)",
            r.counts.errors(),
            r.counts.read_errors,
            r.counts.write_errors
        ),
        Outcome::Failed(why) => write!(out, "failed: {}", why.name()),
    }
}

/// `bytes` in `ns` as MB/s (10^6 bytes) with two decimals.
fn write_mb_s(out: &mut impl Write, bytes: u64, ns: u64) -> fmt::Result {
    let hundredths = per_second(bytes, ns) / 10_000;
    write!(out, "{}.{:02}", hundredths / 100, hundredths % 100)
}

/// Writes `stress_test_results`: one `key value` line each.
pub fn write_results(out: &mut impl Write, r: &Results) -> fmt::Result {
    let p = &r.params;
    let c = &r.counts;
    writeln!(out, "run {}", r.run)?;
    writeln!(out, "type {}", p.kind.number())?;
    writeln!(out, "type_name {}", p.kind.name())?;
    writeln!(out, "workers {}", p.workers)?;
    writeln!(out, "queue_depth {}", p.queue_depth)?;
    writeln!(out, "io_bytes {}", p.io_bytes)?;
    writeln!(out, "duration_ms {}", p.duration_ms)?;
    writeln!(out, "elapsed_ms {}", r.elapsed_ns / 1_000_000)?;
    write!(out, "status ")?;
    write_outcome(out, r)?;
    writeln!(out)?;
    if let Some(why) = r.stopped {
        writeln!(out, "stop_reason {}", why.name())?;
    }
    writeln!(out, "region_blocks {}", r.region_blocks)?;
    writeln!(out, "ios {}", c.ios())?;
    writeln!(out, "reads {}", c.reads)?;
    writeln!(out, "writes {}", c.writes)?;
    writeln!(out, "bytes {}", c.read_bytes + c.write_bytes)?;
    writeln!(out, "read_bytes {}", c.read_bytes)?;
    writeln!(out, "write_bytes {}", c.write_bytes)?;
    writeln!(out, "read_iops {}", per_second(c.reads, r.elapsed_ns))?;
    writeln!(out, "write_iops {}", per_second(c.writes, r.elapsed_ns))?;
    write!(out, "read_mb_s ")?;
    write_mb_s(out, c.read_bytes, r.elapsed_ns)?;
    write!(out, "\nwrite_mb_s ")?;
    write_mb_s(out, c.write_bytes, r.elapsed_ns)?;
    writeln!(out)?;
    writeln!(out, "latency_mean_ns {}", r.mean_ns())?;
    writeln!(out, "latency_p50_ns {}", r.quantile(500))?;
    writeln!(out, "latency_p99_ns {}", r.quantile(990))?;
    writeln!(out, "latency_p999_ns {}", r.quantile(999))?;
    writeln!(out, "latency_max_ns {}", r.latency.max)?;
    writeln!(out, "cpu_ns_per_io {}", r.cpu_ns_per_io)?;
    writeln!(out, "errors {}", c.errors())?;
    writeln!(out, "read_errors {}", c.read_errors)?;
    writeln!(out, "write_errors {}", c.write_errors)?;
    writeln!(out, "verify_mismatches {}", c.mismatches)?;
    writeln!(out, "verified_blocks {}", c.verified)?;
    writeln!(out, "unverified_blocks {}", c.unverified)?;
    writeln!(out, "remaps {}", r.remaps)?;
    writeln!(out, "unremaps {}", r.unremaps)?;
    writeln!(out, "remap_errors {}", r.remap_errors)?;
    writeln!(out, "pressure_mb {}", r.pressure_mb)?;
    writeln!(out, "pressure_alloc_refused {}", r.pressure_refused)?;
    writeln!(out, "io_path_alloc_failures {}", r.io_path_alloc_failures)?;
    writeln!(out, "aborted_ios {}", c.aborted)?;
    writeln!(out, "foreign_write_sectors {}", r.foreign_write_sectors)?;
    for m in r.mismatch_list.iter().flatten() {
        writeln!(out, "mismatch {m}")?;
    }
    Ok(())
}

/// One line of a run for `comprehensive_report`.
pub fn write_summary(out: &mut impl Write, r: &Results) -> fmt::Result {
    let p = &r.params;
    write!(
        out,
        "run {}: {} {} workers x QD {} x {} B, {} ms: {} I/Os ({} IOPS), mean {} us, p99 {} us, {} errors, {} mismatches: ",
        r.run,
        p.kind.name(),
        p.workers,
        p.queue_depth,
        p.io_bytes,
        r.elapsed_ns / 1_000_000,
        r.counts.ios(),
        r.iops(),
        r.mean_ns() / 1000,
        r.quantile(990) / 1000,
        r.counts.errors(),
        r.counts.mismatches
    )?;
    write_outcome(out, r)?;
    writeln!(out)
}

/// `quick_validation`'s run length.
pub const QUICK_MS: u64 = 30_000;

/// The mixed run of `quick_validation` and `memory_pressure_test`: 4 workers at queue
/// depth 8, one block per I/O, for `duration_ms`.
pub fn mixed_params(block_bytes: u32, duration_ms: u64) -> Params {
    Params {
        kind: Kind::Mixed,
        workers: 4,
        duration_ms,
        queue_depth: 8,
        io_bytes: block_bytes,
    }
}

/// The fixed workload of `regression_test`: random reads of one block, 4 workers at queue
/// depth 8, for 2 seconds.
pub fn regression_params(block_bytes: u32) -> Params {
    Params {
        kind: Kind::RandRead,
        workers: 4,
        duration_ms: 2_000,
        queue_depth: 8,
        io_bytes: block_bytes,
    }
}

/// What `regression_test` compares against: figures of an earlier run of its workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Baseline {
    pub mean_ns: u64,
    pub iops: u64,
}

impl Baseline {
    pub fn of(r: &Results) -> Self {
        Self {
            mean_ns: r.mean_ns(),
            iops: r.iops(),
        }
    }
}

/// The verdict of `regression_test`: the mean latency of the run against the baseline's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub baseline: Baseline,
    pub now: Baseline,
    /// Change of the mean latency, in permille (positive: slower).
    pub change_permille: i64,
    pub threshold_pct: u32,
}

impl Verdict {
    /// Compares `now` with `baseline` (their mean latency) under a threshold in percent.
    pub fn of(baseline: Baseline, now: &Results, threshold_pct: u32) -> Self {
        let now = Baseline::of(now);
        Self {
            baseline,
            now,
            change_permille: change_permille(baseline.mean_ns, now.mean_ns).unwrap_or(0),
            threshold_pct,
        }
    }

    /// Whether the run is slower than the baseline by more than the threshold.
    pub fn failed(&self) -> bool {
        self.change_permille > i64::from(self.threshold_pct) * 10
    }

    /// `PASS <change>%` or `FAIL <change>%`, then the figures.
    pub fn write(&self, out: &mut impl Write) -> fmt::Result {
        write!(out, "{} ", if self.failed() { "FAIL" } else { "PASS" })?;
        if self.change_permille >= 0 {
            write!(out, "+")?;
        }
        write_permille(out, self.change_permille)?;
        write!(
            out,
            "% mean latency {} ns (baseline {} ns), {} IOPS (baseline {}), threshold {}%",
            self.now.mean_ns,
            self.baseline.mean_ns,
            self.now.iops,
            self.baseline.iops,
            self.threshold_pct
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::string::String;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn start_lines() {
        let p = parse_start(b"4 8 30000", 4096).unwrap();
        assert_eq!(
            p,
            Params {
                kind: Kind::Mixed,
                workers: 8,
                duration_ms: 30000,
                queue_depth: DEFAULT_QUEUE_DEPTH,
                io_bytes: 4096
            }
        );
        let p = parse_start(b"5  32 60000\t32 64", 4096).unwrap();
        assert_eq!((p.queue_depth, p.io_bytes), (32, 65536));
        assert_eq!(parse_start(b"0 1 1 1 1", 512).unwrap().io_bytes, 1024);
        for (line, e) in [
            (&b""[..], ParamError::Syntax),
            (b"1 2", ParamError::Syntax),
            (b"1 2 3 4 5 6", ParamError::Syntax),
            (b"x 1 1", ParamError::Syntax),
            (b"-1 1 1", ParamError::Syntax),
            (b"6 1 1", ParamError::Kind),
            (b"0 0 1", ParamError::Workers),
            (b"0 33 1", ParamError::Workers),
            (b"0 1 0", ParamError::Duration),
            (b"0 1 3600001", ParamError::Duration),
            (b"0 1 1 0", ParamError::QueueDepth),
            (b"0 1 1 257", ParamError::QueueDepth),
            (b"0 1 1 1 0", ParamError::IoSize),
            (b"0 1 1 1 2", ParamError::IoSize),
            (b"0 1 1 1 1025", ParamError::IoSize),
            (b"0 32 1 256", ParamError::InFlight),
            (b"0 32 1 64 64", ParamError::Memory),
            (b"0 1 1 1 99999999999999999999", ParamError::Syntax),
        ] {
            assert_eq!(
                parse_start(line, 4096),
                Err(e),
                "{:?}",
                core::str::from_utf8(line)
            );
        }
        assert_eq!(parse_start(b"0 32 1 128", 4096).unwrap().queue_depth, 128);
    }

    #[test]
    fn pressure_lines() {
        assert_eq!(parse_pressure(b"64 1000"), Some((64, 1000)));
        for bad in [
            &b""[..],
            b"64",
            b"0 10",
            b"1 0",
            b"1 2 3",
            b"a 1",
            b"1048577 1",
        ] {
            assert_eq!(parse_pressure(bad), None);
        }
    }

    #[test]
    fn pattern_round_trip_and_every_kind_of_difference() {
        let mut b = [0u8; 4096];
        let st = Stamp { run: 3, gen: 7 };
        fill(&mut b, 42, st);
        assert_eq!(check(&b, 42, st), Ok(()));
        // An older write of the same block.
        let mut old = [0u8; 4096];
        fill(&mut old, 42, Stamp { run: 3, gen: 6 });
        let m = check(&old, 42, st).unwrap_err();
        assert_eq!(m.found, Found::Stale(Stamp { run: 3, gen: 6 }));
        // Another block's data.
        let mut other = [0u8; 4096];
        fill(&mut other, 43, st);
        assert_eq!(
            check(&other, 42, st).unwrap_err().found,
            Found::Misplaced {
                block: 43,
                stamp: st
            }
        );
        // One byte changed in the fifth sector's filler.
        let mut d = b;
        d[4 * 512 + 100] ^= 1;
        let m = check(&d, 42, st).unwrap_err();
        assert_eq!((m.unit, m.found), (4, Found::Damaged));
        // A sector of zeroes, and a torn write (last sector old).
        let mut z = b;
        z[7 * 512..].fill(0);
        assert_eq!(check(&z, 42, st).unwrap_err().found, Found::Foreign);
        let mut t = b;
        t[7 * 512..].copy_from_slice(&old[7 * 512..]);
        let m = check(&t, 42, st).unwrap_err();
        assert_eq!(
            (m.unit, m.found),
            (7, Found::Stale(Stamp { run: 3, gen: 6 }))
        );
        // A sector moved within the block.
        let mut s = b;
        s.copy_within(0..512, 512);
        assert_eq!(check(&s, 42, st).unwrap_err().found, Found::Foreign);
        let text = format!("{}", m);
        assert_eq!(
            text,
            "block 42 sector 7: expected run 3 gen 7, found an older write (run 3 gen 6)"
        );
    }

    #[test]
    fn stamps() {
        let s = Stamp { run: 0, gen: 0 };
        assert!(!s.known());
        let a = s.next(5);
        assert_eq!(a, Stamp { run: 5, gen: 1 });
        assert_eq!(a.next(5), Stamp { run: 5, gen: 2 });
        assert_eq!(a.next(6), Stamp { run: 6, gen: 1 });
        assert!(!Stamp::UNKNOWN.known());
        assert_eq!(Stamp::from_word(a.word() | CLAIM), a);
        assert_eq!(Stamp::UNKNOWN.next(9), Stamp { run: 9, gen: 1 });
    }

    #[test]
    fn shares_cover_the_region_once() {
        for (units, workers) in [(100u64, 3u32), (8, 8), (5, 32), (1, 4), (1000, 32)] {
            let mut seen = vec![0u32; units as usize];
            for w in 0..workers {
                let mut c = Cursor::share(units, workers, w);
                assert!(c.start < c.end && c.end <= units.max(1));
                for _ in c.start..c.end {
                    seen[c.step() as usize] += 1;
                }
                assert_eq!(c.next, c.start);
            }
            if units >= u64::from(workers) {
                assert!(seen.iter().all(|&n| n == 1), "{units} {workers}");
            } else {
                assert!(seen.iter().all(|&n| n >= 1));
            }
        }
    }

    #[test]
    fn mixes() {
        let mut rng = Rng::new(1);
        let mut c = Cursor::share(1000, 1, 0);
        let n = 100_000;
        let mut writes = 0;
        for _ in 0..n {
            let p = choose(Kind::Mixed, &mut rng, &mut c, 1000, 1, |_| None);
            assert!(p.unit < 1000);
            writes += u32::from(p.write);
        }
        // 30% writes, within 1%.
        assert!((29_000..31_000).contains(&writes), "{writes}");
        let mut near = 0;
        for _ in 0..n {
            let p = choose(Kind::RemapHeavy, &mut rng, &mut c, 1000, 1, |_| Some(500));
            assert!(p.unit < 1000);
            near += u32::from((499..=501).contains(&p.unit));
        }
        assert!(near > 79_000, "{near}");
        // Sequential kinds walk the share in order.
        let mut c = Cursor::share(10, 2, 1);
        let units: Vec<u64> = (0..7)
            .map(|_| choose(Kind::SeqWrite, &mut rng, &mut c, 10, 1, |_| None).unit)
            .collect();
        assert_eq!(units, [5, 6, 7, 8, 9, 5, 6]);
    }

    #[test]
    fn results_and_verdicts() {
        let p = parse_start(b"4 2 1000 4", 4096).unwrap();
        let mut r = Results::new(9, p);
        r.elapsed_ns = 2_000_000_000;
        r.counts.reads = 700;
        r.counts.writes = 300;
        r.counts.read_bytes = 700 * 4096;
        r.counts.write_bytes = 300 * 4096;
        for v in [1000u64, 2000, 3000] {
            r.latency.record(v);
        }
        r.judge();
        let mut s = String::new();
        write_results(&mut s, &r).unwrap();
        assert!(s.contains("\nios 1000\n"));
        assert!(s.contains("\nread_iops 350\n"));
        assert!(s.contains("\nread_mb_s 1.43\n"));
        assert!(s.contains("\nstatus done\n"));
        assert!(s.contains("\nlatency_mean_ns 2000\n"));
        assert!(s.lines().all(|l| l.split(' ').count() >= 2));
        r.counts.mismatches = 2;
        r.list_mismatch(Mismatch {
            block: 17,
            unit: 0,
            expected: Stamp { run: 9, gen: 1 },
            found: Found::Foreign,
        });
        r.judge();
        let mut s = String::new();
        write_outcome(&mut s, &r).unwrap();
        assert_eq!(s, "failed: 2 data mismatches (first at block 17)");
        let mut slow = r.clone();
        slow.latency = Histogram::new();
        slow.latency.record(4000);
        let v = Verdict::of(Baseline::of(&r), &slow, 2);
        assert!(v.failed());
        let mut s = String::new();
        v.write(&mut s).unwrap();
        assert!(
            s.starts_with("FAIL +100.0% mean latency 4000 ns (baseline 2000 ns)"),
            "{s}"
        );
        let v = Verdict::of(Baseline::of(&r), &r, 2);
        assert!(!v.failed());
        let mut s = String::new();
        v.write(&mut s).unwrap();
        assert!(s.starts_with("PASS +0.0%"), "{s}");
    }
}
