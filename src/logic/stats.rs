// SPDX-License-Identifier: GPL-2.0

//! The arithmetic of dm-remap's instrumentation: which counters exist, how a reader turns
//! per-CPU slots into totals, windows, latency summaries and rates, and when the current
//! window counts as a regression against a captured baseline.
//!
//! Storage is a flat array of `u64` slots per CPU (see [`Slot`]): plain counters, three
//! maxima, and two latency histograms ([`histogram`](super::histogram) buckets). Writers
//! only ever add to their own CPU's slots (or raise a maximum); readers sum every CPU into
//! a [`Snapshot`] and subtract an earlier snapshot for "since reset" and "last window"
//! figures, so nothing on the I/O path is shared between CPUs and a reset never races with
//! a writer.

use super::histogram::{self, BUCKETS};

/// The counter slots, in storage order. Histogram buckets follow them
/// ([`READ_HIST`], [`WRITE_HIST`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Slot {
    /// Reads completed.
    Reads,
    /// Writes completed.
    Writes,
    /// Flushes completed (one per flush request, not per device it reaches).
    Flushes,
    /// Discards completed.
    Discards,
    /// Write-zeroes requests completed.
    WriteZeroes,
    /// Bytes of completed reads.
    ReadBytes,
    /// Bytes of completed writes.
    WriteBytes,
    /// I/Os that reached a remapped, failing or moving block.
    RemapHits,
    /// Reads of the main device that failed (each failed attempt).
    MainReadErrors,
    /// Writes to the main device that failed.
    MainWriteErrors,
    /// I/Os to the spare device that failed.
    SpareErrors,
    /// I/Os completed upwards with an error.
    ErrorsReturned,
    /// Blocks remapped because they failed.
    AutoRemaps,
    /// Blocks remapped by `dmsetup message ... remap`.
    ManualRemaps,
    /// Metadata commits (journal records and checkpoints).
    MetaCommits,
    /// Bytes written to metadata copies.
    MetaBytes,
    /// Sum of metadata commit durations, nanoseconds.
    MetaNs,
    /// Longest metadata commit, nanoseconds (a maximum).
    MetaMaxNs,
    /// Sum of read latencies (`map` to `end_io`), nanoseconds.
    ReadNs,
    /// Longest read, nanoseconds (a maximum).
    ReadMaxNs,
    /// Sum of write latencies, nanoseconds.
    WriteNs,
    /// Longest write, nanoseconds (a maximum).
    WriteMaxNs,
    /// Calls of `map` (every bio, including those handed to the worker).
    MapCalls,
    /// I/Os whose CPU cost was sampled.
    CpuSamples,
    /// Nanoseconds spent in `map` by the sampled I/Os.
    CpuMapNs,
    /// Nanoseconds spent in `end_io` by the sampled I/Os.
    CpuEndNs,
}

/// Number of counter slots.
pub const COUNTERS: usize = Slot::CpuEndNs as usize + 1;
/// First bucket of the read latency histogram.
pub const READ_HIST: usize = COUNTERS;
/// First bucket of the write latency histogram.
pub const WRITE_HIST: usize = COUNTERS + BUCKETS;
/// Slots per CPU.
pub const SLOTS: usize = COUNTERS + 2 * BUCKETS;

/// One in this many I/Os (per CPU) has its CPU cost measured: the two extra clock reads
/// this takes would otherwise be a visible part of the cost being measured.
pub const CPU_SAMPLE_EVERY: u64 = 8;

impl Slot {
    /// Whether the slot holds a maximum (merged with `max`, not summed).
    pub const fn is_max(i: usize) -> bool {
        i == Slot::MetaMaxNs as usize
            || i == Slot::ReadMaxNs as usize
            || i == Slot::WriteMaxNs as usize
    }
}

/// Read or write, for latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Reads.
    Read,
    /// Writes.
    Write,
}

impl Dir {
    /// Slots of this direction: count, latency sum, latency maximum, first bucket.
    pub const fn slots(self) -> (Slot, Slot, Slot, usize) {
        match self {
            Dir::Read => (Slot::Reads, Slot::ReadNs, Slot::ReadMaxNs, READ_HIST),
            Dir::Write => (Slot::Writes, Slot::WriteNs, Slot::WriteMaxNs, WRITE_HIST),
        }
    }
}

/// All CPUs' slots added up, at a point in time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The summed slots.
    pub slots: [u64; SLOTS],
    /// When it was taken (monotonic clock, nanoseconds).
    pub at_ns: u64,
}

impl Snapshot {
    /// An all-zero snapshot taken at `at_ns`.
    pub const fn zero(at_ns: u64) -> Self {
        Self {
            slots: [0; SLOTS],
            at_ns,
        }
    }

    /// Adds one CPU's slots (maxima are merged as maxima).
    pub fn add_cpu(&mut self, cpu: &[u64; SLOTS]) {
        for (i, (a, &b)) in self.slots.iter_mut().zip(cpu.iter()).enumerate() {
            *a = Self::merge_slot(i, *a, b);
        }
    }

    /// Slot `i` of two CPUs together: the sum, or for a maximum the larger.
    pub fn merge_slot(i: usize, a: u64, b: u64) -> u64 {
        if Slot::is_max(i) {
            a.max(b)
        } else {
            a.wrapping_add(b)
        }
    }

    /// A counter.
    pub fn get(&self, s: Slot) -> u64 {
        self.slots[s as usize]
    }

    /// Turns `self` into what happened between `earlier` and `self`. Counters and buckets
    /// become differences (wrapping, as the per-CPU sums are); a maximum cannot be
    /// subtracted, so a latency maximum becomes the top of the highest non-empty bucket
    /// of the difference (capped by the maximum so far), and the commit maximum stays
    /// the maximum so far. In place: a snapshot is too big for a kernel stack.
    pub fn subtract(&mut self, earlier: &Snapshot) {
        for (i, (a, &b)) in self.slots.iter_mut().zip(earlier.slots.iter()).enumerate() {
            if !Slot::is_max(i) {
                *a = a.wrapping_sub(b);
            }
        }
        for dir in [Dir::Read, Dir::Write] {
            let (_, _, max, hist) = dir.slots();
            let top = self.slots[hist..hist + BUCKETS]
                .iter()
                .rposition(|&n| n != 0)
                .map_or(0, |i| histogram::bounds(i).1);
            self.slots[max as usize] = top.min(self.slots[max as usize]);
        }
    }

    /// The latency histogram of `dir`.
    pub fn buckets(&self, dir: Dir) -> &[u64] {
        let (_, _, _, hist) = dir.slots();
        &self.slots[hist..hist + BUCKETS]
    }

    /// Latency figures of `dir`.
    pub fn latency(&self, dir: Dir) -> Latency {
        let (count, sum, max, _) = dir.slots();
        let buckets = self.buckets(dir);
        let samples: u64 = buckets.iter().sum();
        let max = self.get(max);
        // Quantiles are bucket midpoints; never report one above the exact maximum.
        let q = |permille| histogram::quantile(buckets, permille).map_or(0, |v| v.min(max));
        Latency {
            count: self.get(count),
            mean: self.get(sum).checked_div(samples).unwrap_or(0),
            p50: q(500),
            p90: q(900),
            p99: q(990),
            p999: q(999),
            max,
        }
    }

    /// `total / count`, 0 when `count` is 0.
    fn mean(total: u64, count: u64) -> u64 {
        total.checked_div(count).unwrap_or(0)
    }

    /// Mean nanoseconds of dm-remap's own code per I/O (`map` plus `end_io`), from the
    /// sampled I/Os; 0 without samples.
    pub fn cpu_ns_per_io(&self) -> u64 {
        let ns = self
            .get(Slot::CpuMapNs)
            .wrapping_add(self.get(Slot::CpuEndNs));
        Self::mean(ns, self.get(Slot::CpuSamples))
    }

    /// Mean nanoseconds in `map` per sampled I/O.
    pub fn cpu_map_ns(&self) -> u64 {
        Self::mean(self.get(Slot::CpuMapNs), self.get(Slot::CpuSamples))
    }

    /// Mean nanoseconds in `end_io` per sampled I/O.
    pub fn cpu_end_ns(&self) -> u64 {
        Self::mean(self.get(Slot::CpuEndNs), self.get(Slot::CpuSamples))
    }

    /// Mean metadata commit duration, nanoseconds.
    pub fn meta_commit_ns(&self) -> u64 {
        Self::mean(self.get(Slot::MetaNs), self.get(Slot::MetaCommits))
    }

    /// `slot` per second over `elapsed_ns` (whole operations or bytes per second).
    pub fn per_second(&self, s: Slot, elapsed_ns: u64) -> u64 {
        per_second(self.get(s), elapsed_ns)
    }
}

/// `n` events in `elapsed_ns` as events per second, rounded down; 0 for no time. Exact
/// while `n` is below about 1.8e10; beyond that computed from whole milliseconds.
/// (No 128-bit division: the kernel has none.)
pub fn per_second(n: u64, elapsed_ns: u64) -> u64 {
    if elapsed_ns == 0 {
        return 0;
    }
    match n.checked_mul(1_000_000_000) {
        Some(x) => x / elapsed_ns,
        None => n.saturating_mul(1000) / (elapsed_ns / 1_000_000).max(1),
    }
}

/// Latency figures of one direction; zeroes without samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    /// Completed I/Os.
    pub count: u64,
    /// Mean, nanoseconds.
    pub mean: u64,
    /// Median (bucket midpoint), nanoseconds.
    pub p50: u64,
    /// 90th percentile, nanoseconds.
    pub p90: u64,
    /// 99th percentile, nanoseconds.
    pub p99: u64,
    /// 99.9th percentile, nanoseconds.
    pub p999: u64,
    /// Maximum, nanoseconds.
    pub max: u64,
}

/// What a baseline keeps of a window, and what the current window is compared on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    /// Length of the window, nanoseconds.
    pub elapsed_ns: u64,
    /// Read latency.
    pub read: Latency,
    /// Write latency.
    pub write: Latency,
    /// Reads per second.
    pub read_iops: u64,
    /// Writes per second.
    pub write_iops: u64,
    /// Bytes read per second.
    pub read_bps: u64,
    /// Bytes written per second.
    pub write_bps: u64,
    /// CPU nanoseconds per I/O.
    pub cpu_ns_per_io: u64,
}

impl Figures {
    /// The figures of a window (a difference of two snapshots) that lasted `elapsed_ns`.
    pub fn of(window: &Snapshot, elapsed_ns: u64) -> Self {
        Self {
            elapsed_ns,
            read: window.latency(Dir::Read),
            write: window.latency(Dir::Write),
            read_iops: window.per_second(Slot::Reads, elapsed_ns),
            write_iops: window.per_second(Slot::Writes, elapsed_ns),
            read_bps: window.per_second(Slot::ReadBytes, elapsed_ns),
            write_bps: window.per_second(Slot::WriteBytes, elapsed_ns),
            cpu_ns_per_io: window.cpu_ns_per_io(),
        }
    }
}

/// How `now` differs from `base`, in tenths of a percent (positive: larger); `None` when
/// the base is zero.
pub fn change_permille(base: u64, now: u64) -> Option<i64> {
    if base == 0 {
        return None;
    }
    let diff = now.abs_diff(base);
    let p = match diff.checked_mul(1000) {
        Some(x) => x / base,
        None => (diff / base).saturating_mul(1000),
    };
    let p = i64::try_from(p).unwrap_or(i64::MAX);
    Some(if now < base { -p } else { p })
}

/// Formats tenths of a percent as `12.3` / `-0.5`.
pub fn write_permille(w: &mut impl core::fmt::Write, p: i64) -> core::fmt::Result {
    let sign = if p < 0 { "-" } else { "" };
    let a = p.unsigned_abs();
    write!(w, "{sign}{}.{}", a / 10, a % 10)
}

/// When a window is a regression against a baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegressionRule {
    /// How much slower (mean latency, percent) counts as a regression.
    pub threshold_pct: u32,
    /// I/Os of a direction both the baseline and the window need before that direction is
    /// compared at all.
    pub min_samples: u64,
}

/// Default `threshold_pct`.
pub const DEFAULT_THRESHOLD_PCT: u32 = 2;
/// Largest `threshold_pct` accepted.
pub const MAX_THRESHOLD_PCT: u32 = 10_000;
/// Default `min_samples`.
pub const DEFAULT_MIN_SAMPLES: u64 = 100;

impl Default for RegressionRule {
    fn default() -> Self {
        Self {
            threshold_pct: DEFAULT_THRESHOLD_PCT,
            min_samples: DEFAULT_MIN_SAMPLES,
        }
    }
}

impl RegressionRule {
    /// Whether `now` regressed against `base`: for reads or for writes, both have at least
    /// `min_samples` I/Os and the mean latency grew by more than `threshold_pct`.
    ///
    /// The mean, not a percentile: it comes from exact sums, so it resolves changes far
    /// smaller than a histogram bucket (about 6%), which a 2% threshold needs.
    pub fn regressed(&self, base: &Figures, now: &Figures) -> bool {
        [(base.read, now.read), (base.write, now.write)]
            .iter()
            .any(|(b, n)| {
                b.count >= self.min_samples
                    && n.count >= self.min_samples
                    && b.count > 0
                    && n.mean.saturating_mul(100)
                        > b.mean.saturating_mul(100 + u64::from(self.threshold_pct))
            })
    }
}

/// Shortest and longest window, seconds.
pub const WINDOW_SECS: core::ops::RangeInclusive<u32> = 1..=3600;
/// Default window, seconds.
pub const DEFAULT_WINDOW_SECS: u32 = 5;

#[cfg(test)]
mod tests {
    use super::*;
    use std::boxed::Box;
    use std::string::String;

    fn snap() -> Box<Snapshot> {
        Box::new(Snapshot::zero(0))
    }

    fn record(s: &mut Snapshot, dir: Dir, ns: u64) {
        let (count, sum, max, hist) = dir.slots();
        s.slots[count as usize] += 1;
        s.slots[sum as usize] += ns;
        s.slots[max as usize] = s.slots[max as usize].max(ns);
        s.slots[hist + histogram::index(ns)] += 1;
    }

    #[test]
    fn layout_is_contiguous() {
        assert_eq!(COUNTERS, 26);
        assert_eq!(SLOTS, COUNTERS + 2 * BUCKETS);
        assert!(Slot::is_max(Slot::ReadMaxNs as usize));
        assert!(!Slot::is_max(Slot::ReadNs as usize));
        assert!(!Slot::is_max(READ_HIST));
    }

    #[test]
    fn cpus_sum_and_maxima_merge() {
        let mut a = snap();
        let mut b = snap();
        record(&mut a, Dir::Read, 1000);
        record(&mut b, Dir::Read, 3000);
        record(&mut b, Dir::Write, 50);
        let mut total = snap();
        total.add_cpu(&a.slots);
        total.add_cpu(&b.slots);
        let r = total.latency(Dir::Read);
        assert_eq!((r.count, r.mean, r.max), (2, 2000, 3000));
        assert_eq!(total.latency(Dir::Write).count, 1);
    }

    #[test]
    fn subtract_subtracts_and_bounds_the_window_maximum() {
        let mut early = snap();
        for _ in 0..10 {
            record(&mut early, Dir::Read, 5_000_000);
        }
        let mut d = early.clone();
        d.at_ns = 2_000_000_000;
        for _ in 0..4 {
            record(&mut d, Dir::Read, 1000);
        }
        d.subtract(&early);
        let l = d.latency(Dir::Read);
        assert_eq!(l.count, 4);
        assert_eq!(l.mean, 1000);
        // Not the 5 ms of before the window: the top of 1000's bucket.
        let (lo, hi) = histogram::bounds(histogram::index(1000));
        assert!(lo <= l.max && l.max <= hi, "{}", l.max);
        assert_eq!(d.per_second(Slot::Reads, 2_000_000_000), 2);
    }

    #[test]
    fn quantiles_never_exceed_the_maximum() {
        let mut s = snap();
        record(&mut s, Dir::Write, 1_000_001);
        let l = s.latency(Dir::Write);
        assert_eq!(l.max, 1_000_001);
        assert!(l.p50 <= l.max && l.p999 <= l.max);
        // Midpoint within 3.2%.
        assert!(l.p50.abs_diff(1_000_001) * 32 <= 1_000_001);
    }

    #[test]
    fn empty_is_all_zero() {
        let s = snap();
        assert_eq!(s.latency(Dir::Read), Latency::default());
        assert_eq!(s.cpu_ns_per_io(), 0);
        assert_eq!(s.meta_commit_ns(), 0);
        assert_eq!(per_second(5, 0), 0);
        assert_eq!(per_second(3, 2_000_000_000), 1);
        // Beyond exact range: from milliseconds.
        assert_eq!(per_second(1 << 40, 2_000_000_000), 1 << 39);
    }

    #[test]
    fn cpu_cost_is_per_sampled_io() {
        let mut s = snap();
        s.slots[Slot::CpuSamples as usize] = 4;
        s.slots[Slot::CpuMapNs as usize] = 400;
        s.slots[Slot::CpuEndNs as usize] = 200;
        assert_eq!(
            (s.cpu_ns_per_io(), s.cpu_map_ns(), s.cpu_end_ns()),
            (150, 100, 50)
        );
    }

    fn figures(read_mean: u64, reads: u64) -> Figures {
        Figures {
            read: Latency {
                count: reads,
                mean: read_mean,
                ..Latency::default()
            },
            ..Figures::default()
        }
    }

    #[test]
    fn regression_needs_threshold_and_samples() {
        let rule = RegressionRule::default();
        let base = figures(10_000, 1000);
        assert!(!rule.regressed(&base, &figures(10_200, 1000)), "exactly 2%");
        assert!(rule.regressed(&base, &figures(10_201, 1000)));
        assert!(!rule.regressed(&base, &figures(20_000, 99)), "too few now");
        assert!(!rule.regressed(&figures(10_000, 99), &figures(20_000, 1000)));
        assert!(!rule.regressed(&base, &figures(5_000, 1000)), "faster");
        let lax = RegressionRule {
            threshold_pct: 50,
            min_samples: 0,
        };
        assert!(!lax.regressed(&base, &figures(14_000, 1000)));
        assert!(lax.regressed(&base, &figures(16_000, 1000)));
        // An empty baseline never regresses, even with min_samples 0.
        assert!(!lax.regressed(&Figures::default(), &figures(1, 1)));
    }

    #[test]
    fn change_is_in_tenths_of_a_percent() {
        assert_eq!(change_permille(0, 5), None);
        assert_eq!(change_permille(1000, 1000), Some(0));
        assert_eq!(change_permille(1000, 1123), Some(123));
        assert_eq!(change_permille(1000, 995), Some(-5));
        assert_eq!(change_permille(1, u64::MAX), Some(i64::MAX));
        assert_eq!(change_permille(u64::MAX, 0), Some(-1000));
        let mut s = String::new();
        write_permille(&mut s, -5).unwrap();
        s.push(' ');
        write_permille(&mut s, 1234).unwrap();
        assert_eq!(s, "-0.5 123.4");
    }
}
