// SPDX-License-Identifier: GPL-2.0

//! Pure logic of the background scanner (`src/scanner.rs`): its commands and settings,
//! the throttle, the slow-block vote, the rate over the last 30 s of running time and
//! the ETA.

use super::args::parse_u64;
use core::ffi::CStr;

/// What `scanner/control` and `dmsetup message <dev> 0 scan <command>` take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Run: continue the pass from the saved position (block 0 after a completed pass).
    Start,
    /// Stop running (the position is kept and saved: the next `start` continues there).
    Stop,
    /// Pause a running scan.
    Pause,
    /// Go on with a paused scan.
    Resume,
}

/// Parses a command; a trailing newline (from `echo`) is allowed.
pub fn parse_command(word: &[u8]) -> Result<Command, &'static CStr> {
    match word.strip_suffix(b"\n").unwrap_or(word) {
        b"start" => Ok(Command::Start),
        b"stop" => Ok(Command::Stop),
        b"pause" => Ok(Command::Pause),
        b"resume" => Ok(Command::Resume),
        _ => Err(c"scan: the commands are start, stop, pause and resume"),
    }
}

/// Default `speed_min_kib_s` (md's `speed_limit_min`).
pub const DEFAULT_SPEED_MIN_KIB_S: u64 = 1_000;
/// Default `speed_max_kib_s` (md's `speed_limit_max`).
pub const DEFAULT_SPEED_MAX_KIB_S: u64 = 200_000;
/// Default `slow_threshold_us`: no healthy disk takes half a second for one block read
/// while otherwise idle; one retrying a weak sector internally does.
pub const DEFAULT_SLOW_THRESHOLD_US: u64 = 500_000;
/// Largest speed setting (10 GiB/s).
pub const MAX_SPEED_KIB_S: u64 = 10 * 1024 * 1024;
/// Smallest and largest `slow_threshold_us` (1 ms, 60 s).
pub const SLOW_THRESHOLD_US: core::ops::RangeInclusive<u64> = 1_000..=60_000_000;
/// Largest `interval_hours` (a year).
pub const MAX_INTERVAL_HOURS: u64 = 24 * 366;

/// The scanner's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Below this rate the scanner always proceeds.
    pub speed_min_kib_s: u64,
    /// Above this rate it sleeps.
    pub speed_max_kib_s: u64,
    /// A block read longer than this (µs) while the device is otherwise idle is slow.
    pub slow_threshold_us: u64,
    /// Whether slow blocks are relocated (counted either way).
    pub relocate_slow: bool,
    /// Hours between automatic passes (0: none).
    pub interval_hours: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            speed_min_kib_s: DEFAULT_SPEED_MIN_KIB_S,
            speed_max_kib_s: DEFAULT_SPEED_MAX_KIB_S,
            slow_threshold_us: DEFAULT_SLOW_THRESHOLD_US,
            relocate_slow: true,
            interval_hours: 0,
        }
    }
}

/// A settable file of the scanner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// `speed_min_kib_s`
    SpeedMin,
    /// `speed_max_kib_s`
    SpeedMax,
    /// `slow_threshold_us`
    SlowThreshold,
    /// `relocate_slow`
    RelocateSlow,
    /// `interval_hours`
    Interval,
}

impl Settings {
    /// The settings with `which` set to the written `input`, or why not (the settings
    /// are then unchanged). `speed_min_kib_s` may not exceed `speed_max_kib_s`.
    pub fn with(&self, which: Setting, input: &[u8]) -> Result<Self, &'static CStr> {
        let v = parse_u64(input.strip_suffix(b"\n").unwrap_or(input))
            .map_err(|_| c"not a decimal number")?;
        let mut s = *self;
        match which {
            Setting::SpeedMin | Setting::SpeedMax => {
                if v == 0 || v > MAX_SPEED_KIB_S {
                    return Err(c"speeds are 1 to 10485760 KiB/s");
                }
                if which == Setting::SpeedMin {
                    s.speed_min_kib_s = v;
                } else {
                    s.speed_max_kib_s = v;
                }
                if s.speed_min_kib_s > s.speed_max_kib_s {
                    return Err(c"speed_min_kib_s may not exceed speed_max_kib_s");
                }
            }
            Setting::SlowThreshold => {
                if !SLOW_THRESHOLD_US.contains(&v) {
                    return Err(c"slow_threshold_us is 1000 to 60000000");
                }
                s.slow_threshold_us = v;
            }
            Setting::RelocateSlow => {
                s.relocate_slow = match v {
                    0 => false,
                    1 => true,
                    _ => return Err(c"relocate_slow is 0 or 1"),
                };
            }
            Setting::Interval => {
                if v > MAX_INTERVAL_HOURS {
                    return Err(c"interval_hours is 0 to 8784");
                }
                s.interval_hours = v;
            }
        }
        Ok(s)
    }
}

/// Whether the scanner must wait before its next read, as md decides for a resync: below
/// `speed_min_kib_s` it always proceeds; above `speed_max_kib_s` it waits; in between it
/// proceeds only while the device is otherwise idle. `rate_kib_s` is its rate over the
/// current throttle window.
pub fn must_wait(rate_kib_s: u64, s: &Settings, idle: bool) -> bool {
    rate_kib_s > s.speed_min_kib_s && (rate_kib_s > s.speed_max_kib_s || !idle)
}

/// How long to wait (ns) so that `bytes` read over `elapsed_ns` come down to `max_kib_s`;
/// at least 1 ms, at most 500 ms (then the rate is looked at again).
pub fn wait_for_rate_ns(bytes: u64, elapsed_ns: u64, max_kib_s: u64) -> u64 {
    let need_ns = per_second_inverse(bytes, max_kib_s.max(1) * 1024);
    need_ns
        .saturating_sub(elapsed_ns)
        .clamp(1_000_000, 500_000_000)
}

/// `bytes` at `bytes_per_s`, in ns (no 128-bit division: the kernel has none).
fn per_second_inverse(bytes: u64, bytes_per_s: u64) -> u64 {
    match bytes.checked_mul(1_000_000_000) {
        Some(x) => x / bytes_per_s,
        None => (bytes / bytes_per_s).saturating_mul(1_000_000_000),
    }
}

/// KiB/s of `bytes` over `ns`.
pub fn kib_per_s(bytes: u64, ns: u64) -> u64 {
    if ns == 0 {
        return 0;
    }
    let kib = bytes / 1024;
    match kib.checked_mul(1_000_000_000) {
        Some(x) => x / ns,
        None => kib / (ns / 1_000_000_000).max(1),
    }
}

/// Re-reads a block gets before its verdict.
pub const VOTES: u32 = 3;

/// The verdict on a block from its timed re-reads: slow when [`VOTES`]` / 2 + 1` of them
/// (2 of 3) took longer than the threshold. Re-reads stop as soon as the verdict is known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlowVote {
    slow: u32,
    fast: u32,
}

impl SlowVote {
    /// Counts one re-read.
    pub fn add(&mut self, was_slow: bool) {
        if was_slow {
            self.slow += 1;
        } else {
            self.fast += 1;
        }
    }

    /// `Some(slow)` once decided.
    pub fn verdict(&self) -> Option<bool> {
        let need = VOTES / 2 + 1;
        if self.slow >= need {
            Some(true)
        } else if self.fast >= need {
            Some(false)
        } else {
            None
        }
    }
}

/// Samples of the rate ring: one per second of running time at most, so 32 cover 30 s.
const SAMPLES: usize = 32;
/// The rate's window: the last 30 s of running time.
pub const RATE_WINDOW_NS: u64 = 30_000_000_000;
/// Less running time than this in the window: no rate (and no ETA) yet.
pub const MIN_RATE_NS: u64 = 2_000_000_000;

/// Bytes scanned against running time (pauses and idle time excluded), sampled at most
/// once a second, for `rate_kib_s` over the last 30 s of running time.
#[derive(Debug, Clone, Copy)]
pub struct RateRing {
    /// `(running ns, bytes)`, oldest first from `start`.
    samples: [(u64, u64); SAMPLES],
    start: usize,
    len: usize,
}

impl Default for RateRing {
    fn default() -> Self {
        Self {
            samples: [(0, 0); SAMPLES],
            start: 0,
            len: 0,
        }
    }
}

impl RateRing {
    /// Forgets every sample (a new start).
    pub fn clear(&mut self) {
        self.len = 0;
        self.start = 0;
    }

    /// Records that `bytes` were scanned in total by `run_ns` of running time (both only
    /// grow); kept when a second has passed since the newest sample.
    pub fn record(&mut self, run_ns: u64, bytes: u64) {
        if self.len > 0 {
            let (newest, _) = self.samples[(self.start + self.len - 1) % SAMPLES];
            if run_ns < newest + 1_000_000_000 {
                return;
            }
        }
        if self.len == SAMPLES {
            self.start = (self.start + 1) % SAMPLES;
            self.len -= 1;
        }
        self.samples[(self.start + self.len) % SAMPLES] = (run_ns, bytes);
        self.len += 1;
    }

    /// KiB/s over the last 30 s of running time up to `(run_ns, bytes)`, or `None` with
    /// less than [`MIN_RATE_NS`] of running time to judge from.
    pub fn rate_kib_s(&self, run_ns: u64, bytes: u64) -> Option<u64> {
        let oldest = (0..self.len)
            .map(|i| self.samples[(self.start + i) % SAMPLES])
            .find(|&(t, _)| t + RATE_WINDOW_NS >= run_ns)?;
        let ns = run_ns.checked_sub(oldest.0)?;
        if ns < MIN_RATE_NS {
            return None;
        }
        Some(kib_per_s(bytes.saturating_sub(oldest.1), ns))
    }
}

/// Seconds left for `remaining_bytes` at `rate_kib_s`; `None` when the rate is too low to
/// say (none yet, or 0).
pub fn eta_s(remaining_bytes: u64, rate_kib_s: Option<u64>) -> Option<u64> {
    match rate_kib_s {
        Some(r) if r > 0 => Some(remaining_bytes.div_ceil(r * 1024)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(parse_command(b"start\n"), Ok(Command::Start));
        assert_eq!(parse_command(b"stop"), Ok(Command::Stop));
        assert_eq!(parse_command(b"pause"), Ok(Command::Pause));
        assert_eq!(parse_command(b"resume\n"), Ok(Command::Resume));
        for bad in [&b""[..], b"Start", b"start now", b"start\n\n", b" stop"] {
            assert!(parse_command(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn settings_refuse_bad_values_and_keep_the_old_ones() {
        let s = Settings::default();
        for (which, bad) in [
            (Setting::SpeedMin, &b"0"[..]),
            (Setting::SpeedMin, b"200001"),
            (Setting::SpeedMax, b"999"),
            (Setting::SpeedMax, b"10485761"),
            (Setting::SpeedMax, b"-1"),
            (Setting::SlowThreshold, b"999"),
            (Setting::SlowThreshold, b"60000001"),
            (Setting::RelocateSlow, b"2"),
            (Setting::Interval, b"8785"),
            (Setting::Interval, b"1.5"),
            (Setting::Interval, b""),
            (Setting::Interval, b"18446744073709551616"),
        ] {
            assert!(s.with(which, bad).is_err(), "{which:?} {bad:?}");
        }
        let t = s.with(Setting::SpeedMax, b"5000\n").unwrap();
        assert_eq!(t.speed_max_kib_s, 5000);
        let t = t.with(Setting::SpeedMin, b"5000").unwrap();
        assert_eq!(t.speed_min_kib_s, 5000);
        assert!(!s.with(Setting::RelocateSlow, b"0").unwrap().relocate_slow);
        assert_eq!(s.with(Setting::Interval, b"24").unwrap().interval_hours, 24);
        assert_eq!(
            s.with(Setting::SlowThreshold, b"1000")
                .unwrap()
                .slow_threshold_us,
            1000
        );
    }

    #[test]
    fn throttle_is_mds_rule() {
        let s = Settings {
            speed_min_kib_s: 100,
            speed_max_kib_s: 1000,
            ..Settings::default()
        };
        // Below the minimum: always on, busy or not.
        assert!(!must_wait(100, &s, false));
        // Between: only while idle.
        assert!(!must_wait(500, &s, true));
        assert!(must_wait(500, &s, false));
        // Above the maximum: wait even when idle.
        assert!(must_wait(1001, &s, true));
    }

    #[test]
    fn wait_brings_the_rate_down_to_the_maximum() {
        // 1 MiB in 100 ms is 10 MiB/s; at 1 MiB/s it must take 1 s: 500 ms (the cap) now.
        assert_eq!(wait_for_rate_ns(1 << 20, 100_000_000, 1024), 500_000_000);
        // 1 MiB in 900 ms at 1 MiB/s: 100 ms more.
        assert_eq!(wait_for_rate_ns(1 << 20, 900_000_000, 1024), 100_000_000);
        // Already slow enough: the minimum wait.
        assert_eq!(wait_for_rate_ns(1 << 20, 2_000_000_000, 1024), 1_000_000);
        assert_eq!(kib_per_s(1 << 20, 1_000_000_000), 1024);
        assert_eq!(kib_per_s(1, 0), 0);
        // No overflow with petabytes.
        assert_eq!(kib_per_s(1 << 50, 1_000_000_000), 1 << 40);
        assert_eq!(wait_for_rate_ns(1 << 50, 0, 1 << 20), 500_000_000);
    }

    #[test]
    fn two_of_three_reads_decide() {
        let mut v = SlowVote::default();
        v.add(true);
        assert_eq!(v.verdict(), None);
        v.add(false);
        assert_eq!(v.verdict(), None);
        v.add(true);
        assert_eq!(v.verdict(), Some(true));
        let mut v = SlowVote::default();
        v.add(false);
        v.add(false);
        assert_eq!(v.verdict(), Some(false));
    }

    #[test]
    fn rate_over_the_last_30_s_of_running_time() {
        let mut r = RateRing::default();
        let s = 1_000_000_000u64;
        assert_eq!(r.rate_kib_s(0, 0), None);
        // 1 MiB per second for 60 s, then 4 MiB per second for 30 s.
        let mut bytes = 0;
        for t in 0..=60 {
            r.record(t * s, bytes);
            bytes += 1 << 20;
        }
        bytes -= 1 << 20;
        assert_eq!(r.rate_kib_s(60 * s, bytes), Some(1024));
        for t in 61..=90 {
            bytes += 4 << 20;
            r.record(t * s, bytes);
        }
        assert_eq!(r.rate_kib_s(90 * s, bytes), Some(4096));
        // Samples closer than a second are not kept.
        let mut r = RateRing::default();
        r.record(0, 0);
        r.record(s / 2, 1 << 20);
        r.record(3 * s, 3 << 20);
        assert_eq!(r.rate_kib_s(3 * s, 3 << 20), Some(1024));
        // Less than 2 s of running time: no rate.
        let mut r = RateRing::default();
        r.record(0, 0);
        assert_eq!(r.rate_kib_s(s, 1 << 20), None);
        r.clear();
        assert_eq!(r.rate_kib_s(5 * s, 1 << 20), None);
    }

    #[test]
    fn eta() {
        assert_eq!(eta_s(10 << 20, Some(1024)), Some(10));
        assert_eq!(eta_s(1, Some(1024)), Some(1));
        assert_eq!(eta_s(10 << 20, Some(0)), None);
        assert_eq!(eta_s(10 << 20, None), None);
    }
}
