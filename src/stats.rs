// SPDX-License-Identifier: GPL-2.0

//! Per-device instrumentation: per-CPU counters and latency histograms updated on the I/O
//! path, and the since-reset figures, windows, baseline and regression check that the
//! sysfs files and the module's ticker read.
//!
//! The I/O path does `this_cpu` adds on the current CPU's slots (see `rust/percpu.rs`),
//! two clock reads per I/O for its latency, and two more on one I/O in
//! [`CPU_SAMPLE_EVERY`] to measure its own CPU cost. Everything else (sums over CPUs,
//! windows, percentiles) happens when someone reads, or once a second in the ticker. The
//! arithmetic is `logic::stats`, tested in userspace.

use crate::clock::now_ns;
use crate::logic::histogram;
use crate::logic::stats::{
    Dir, Figures, RegressionRule, Slot, Snapshot, CPU_SAMPLE_EVERY, DEFAULT_WINDOW_SECS, SLOTS,
    WINDOW_SECS,
};
use crate::percpu::PerCpuSlots;
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};
use kernel::sync::{new_mutex, Mutex};

/// What kind of I/O a bio is, as far as the counters care.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum IoKind {
    /// Not counted: instrumentation was off when the bio was mapped, or it was killed.
    #[default]
    None,
    Read,
    Write,
    WriteZeroes,
    Discard,
    /// The empty flush sent to the main device: one per flush request.
    Flush,
    /// The copy of a flush sent to the spare device: not counted again.
    FlushCopy,
}

/// The instrumentation's part of the per-bio data.
#[derive(Clone, Copy, Default)]
pub(crate) struct IoTiming {
    /// When `map` was entered; 0 when the bio is not timed.
    start_ns: u64,
    /// Nanoseconds spent in `map`, for a sampled bio.
    map_ns: u64,
    sampled: bool,
    pub(crate) kind: IoKind,
    /// The bio reached a remapped, failing or moving block.
    pub(crate) remap_hit: bool,
}

/// Taken when `end_io` starts: the time, for latency and (sampled) CPU cost.
pub(crate) struct EndStart(u64);

/// Counters of one dm device, shared by its targets (a table reload keeps them).
#[pin_data]
pub(crate) struct DeviceStats {
    slots: PerCpuSlots<SLOTS>,
    enabled: Atomic<bool>,
    #[pin]
    windows: Mutex<Windows>,
}

/// Reader-side state: taken only by sysfs and the ticker, never by the I/O path.
struct Windows {
    /// All CPUs' slots at the last reset (creation: zero); "since reset" subtracts it.
    reset: KBox<Snapshot>,
    /// All CPUs' slots when the current window began.
    window_start: KBox<Snapshot>,
    /// Scratch space for a new snapshot, and for a window's difference.
    scratch: KBox<Snapshot>,
    delta: KBox<Snapshot>,
    /// The figures of the last complete window, if one completed since the last reset.
    last: Option<Figures>,
    window_secs: u32,
    baseline: Option<Figures>,
    rule: RegressionRule,
    regression: bool,
    /// The value of `regression` last announced (see [`DeviceStats::take_flip`]).
    announced: bool,
}

/// The reader-side settings and results, copied out.
#[derive(Clone, Copy)]
pub(crate) struct WindowView {
    /// The last complete window, if one completed since the last reset.
    pub(crate) last: Option<Figures>,
    pub(crate) baseline: Option<Figures>,
    pub(crate) rule: RegressionRule,
    pub(crate) window_secs: u32,
    pub(crate) regression: bool,
}

impl Windows {
    fn new() -> Result<Self> {
        Ok(Self {
            reset: new_snapshot()?,
            window_start: new_snapshot()?,
            scratch: new_snapshot()?,
            delta: new_snapshot()?,
            last: None,
            window_secs: DEFAULT_WINDOW_SECS,
            baseline: None,
            rule: RegressionRule::default(),
            regression: false,
            announced: false,
        })
    }
}

/// A zeroed snapshot taken now, built in place (it is ~10 KiB, too large for the stack).
fn new_snapshot() -> Result<KBox<Snapshot>> {
    KBox::init(
        pin_init::init!(Snapshot {
            slots <- pin_init::init_array_from_fn(|_| 0u64),
            at_ns: now_ns(),
        }),
        GFP_KERNEL,
    )
}

impl DeviceStats {
    /// New, zeroed counters; instrumentation on or off.
    pub(crate) fn new(enabled: bool) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            slots: PerCpuSlots::new()?,
            enabled: Atomic::new(enabled),
            windows <- new_mutex!(Windows::new()?),
        }? Error)
    }

    /// Whether I/Os are counted and timed.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Relaxed)
    }

    /// Switches counting and timing of I/Os on or off (event counters stay on).
    pub(crate) fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Relaxed);
    }

    // --- The I/O path. Any context, no locks, current CPU only. ---

    /// Called first thing in `map`, with `t` as the per-bio data starts (default: the
    /// `rust/dm` adapter initialises it before every `map`).
    #[inline]
    pub(crate) fn map_start(&self, t: &mut IoTiming) {
        if !self.enabled() {
            return;
        }
        t.start_ns = now_ns();
        t.sampled = self.slots.inc_return(Slot::MapCalls as usize) % CPU_SAMPLE_EVERY == 0;
    }

    /// Called last thing in `map`.
    #[inline]
    pub(crate) fn map_end(&self, t: &mut IoTiming) {
        if t.sampled {
            t.map_ns = now_ns().saturating_sub(t.start_ns);
        }
    }

    /// Called first thing in `end_io`.
    #[inline]
    pub(crate) fn end_start(&self, t: &IoTiming) -> EndStart {
        EndStart(if t.start_ns != 0 { now_ns() } else { 0 })
    }

    /// Called when `end_io` completes a bio (not when it hands it to the worker):
    /// counts it, with `bytes` of data and whether it succeeded.
    #[inline]
    pub(crate) fn completed(&self, t: &IoTiming, e: EndStart, bytes: u64, ok: bool) {
        if !ok {
            self.count(Slot::ErrorsReturned);
        }
        if t.start_ns == 0 {
            return;
        }
        let s = &self.slots;
        let latency = e.0.saturating_sub(t.start_ns);
        let dir = match t.kind {
            IoKind::Read => Some((Dir::Read, Slot::ReadBytes)),
            IoKind::Write => Some((Dir::Write, Slot::WriteBytes)),
            IoKind::WriteZeroes => {
                self.count(Slot::WriteZeroes);
                None
            }
            IoKind::Discard => {
                self.count(Slot::Discards);
                None
            }
            IoKind::Flush => {
                self.count(Slot::Flushes);
                None
            }
            IoKind::FlushCopy | IoKind::None => None,
        };
        if let Some((dir, bytes_slot)) = dir {
            let (count, sum, max, hist) = dir.slots();
            s.add(count as usize, 1);
            s.add(bytes_slot as usize, bytes);
            s.add(sum as usize, latency);
            s.max(max as usize, latency);
            s.add(hist + histogram::index(latency), 1);
        }
        if t.remap_hit {
            self.count(Slot::RemapHits);
        }
        if t.sampled {
            s.add(Slot::CpuSamples as usize, 1);
            s.add(Slot::CpuMapNs as usize, t.map_ns);
            s.add(Slot::CpuEndNs as usize, now_ns().saturating_sub(e.0));
        }
    }

    /// Counts one event (errors, remaps: always counted, instrumentation on or off).
    #[inline]
    pub(crate) fn count(&self, s: Slot) {
        self.slots.add(s as usize, 1);
    }

    /// Counts a metadata commit that took `ns` and wrote `bytes`.
    pub(crate) fn commit_done(&self, ns: u64, bytes: u64) {
        let s = &self.slots;
        s.add(Slot::MetaCommits as usize, 1);
        s.add(Slot::MetaBytes as usize, bytes);
        s.add(Slot::MetaNs as usize, ns);
        s.max(Slot::MetaMaxNs as usize, ns);
    }

    // --- Readers. Process context. ---

    /// Counter `s` since the last reset.
    pub(crate) fn value(&self, s: Slot) -> u64 {
        let total = self.sum(s as usize);
        if Slot::is_max(s as usize) {
            return total;
        }
        total.wrapping_sub(self.windows.lock().reset.slots[s as usize])
    }

    fn sum(&self, i: usize) -> u64 {
        let mut v = 0;
        self.slots
            .for_each_cpu(|c| v = Snapshot::merge_slot(i, v, c.get(i)));
        v
    }

    /// Fills `out` with every CPU's slots added up, now.
    fn snapshot(&self, out: &mut Snapshot) {
        out.slots.fill(0);
        out.at_ns = now_ns();
        self.slots.for_each_cpu(|c| {
            for (i, v) in out.slots.iter_mut().enumerate() {
                *v = Snapshot::merge_slot(i, *v, c.get(i));
            }
        });
    }

    /// Everything since the last reset, and the nanoseconds that took.
    pub(crate) fn since_reset(&self) -> Result<(KBox<Snapshot>, u64)> {
        let mut s = new_snapshot()?;
        self.snapshot(&mut s);
        let w = self.windows.lock();
        s.subtract(&w.reset);
        let elapsed = s.at_ns.saturating_sub(w.reset.at_ns);
        Ok((s, elapsed))
    }

    /// Nanoseconds since the last reset.
    pub(crate) fn elapsed_ns(&self) -> u64 {
        now_ns().saturating_sub(self.windows.lock().reset.at_ns)
    }

    /// Starts every count, latency figure and the window afresh. The baseline stays;
    /// without a window there is no regression until the next window completes.
    pub(crate) fn reset(&self) {
        let mut w = self.windows.lock();
        let w = &mut *w;
        self.snapshot(&mut w.reset);
        w.window_start.slots.copy_from_slice(&w.reset.slots);
        w.window_start.at_ns = w.reset.at_ns;
        // Maxima cannot be subtracted: start them again (a racing update may survive).
        for i in (0..SLOTS).filter(|&i| Slot::is_max(i)) {
            self.slots.set_all(i, 0);
        }
        w.last = None;
        Self::evaluate(w);
    }

    /// Ends the window if it is due (half a second early at most, for the ticker's own
    /// delay) and checks it against the baseline.
    pub(crate) fn tick(&self) {
        let mut w = self.windows.lock();
        let w = &mut *w;
        let due = w.window_start.at_ns + u64::from(w.window_secs) * 1_000_000_000;
        if now_ns() + 500_000_000 < due {
            return;
        }
        self.snapshot(&mut w.scratch);
        w.delta.slots.copy_from_slice(&w.scratch.slots);
        w.delta.at_ns = w.scratch.at_ns;
        w.delta.subtract(&w.window_start);
        let elapsed = w.scratch.at_ns.saturating_sub(w.window_start.at_ns);
        // The new snapshot starts the next window.
        core::mem::swap(&mut w.scratch, &mut w.window_start);
        w.last = Some(Figures::of(&w.delta, elapsed));
        Self::evaluate(w);
    }

    /// Sets the regression flag from the last window and the baseline.
    fn evaluate(w: &mut Windows) {
        w.regression = match (&w.baseline, &w.last) {
            (Some(b), Some(l)) => w.rule.regressed(b, l),
            _ => false,
        };
    }

    /// The settings and the results of the last window.
    pub(crate) fn view(&self) -> WindowView {
        let w = self.windows.lock();
        WindowView {
            last: w.last,
            baseline: w.baseline,
            rule: w.rule,
            window_secs: w.window_secs,
            regression: w.regression,
        }
    }

    /// Makes the last complete window the baseline. `ENODATA` if no window completed
    /// since the last reset, or the last one saw no read or write (nothing to compare).
    pub(crate) fn capture(&self) -> Result {
        let mut w = self.windows.lock();
        let last = w.last.ok_or(ENODATA)?;
        if last.read.count == 0 && last.write.count == 0 {
            return Err(ENODATA);
        }
        w.baseline = Some(last);
        Self::evaluate(&mut w);
        Ok(())
    }

    /// Changes the regression rule and checks the last window against it again.
    pub(crate) fn set_rule(&self, f: impl FnOnce(&mut RegressionRule)) {
        let mut w = self.windows.lock();
        f(&mut w.rule);
        Self::evaluate(&mut w);
    }

    /// Sets the window length (a value in [`WINDOW_SECS`]) and starts a new window.
    pub(crate) fn set_window_secs(&self, secs: u32) -> Result {
        if !WINDOW_SECS.contains(&secs) {
            return Err(EINVAL);
        }
        let mut w = self.windows.lock();
        let w = &mut *w;
        w.window_secs = secs;
        self.snapshot(&mut w.window_start);
        w.last = None;
        Self::evaluate(w);
        Ok(())
    }

    /// Whether the regression flag changed since the last call (which then announces it).
    pub(crate) fn take_flip(&self) -> bool {
        let mut w = self.windows.lock();
        let flipped = w.announced != w.regression;
        w.announced = w.regression;
        flipped
    }
}
