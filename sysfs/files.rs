// SPDX-License-Identifier: GPL-2.0

//! The files of `/sys/kernel/dm_remap` and of each device's directory. One value per file
//! (decimal, newline-terminated) except the documented summaries and histograms; writes
//! take one decimal number and fail with `EINVAL` otherwise.

use super::{Device, REGISTRY};
use crate::kobject::{File, Files, Group, ShowBuf};
use crate::logic::args::parse_u64;
use crate::logic::histogram;
use crate::logic::scan::{parse_command, Setting};
use crate::logic::stats::{
    change_permille, per_second, write_permille, Dir, Figures, Latency, Slot, CPU_SAMPLE_EVERY,
    MAX_THRESHOLD_PCT,
};
use crate::logic::stress::parse_pressure;
use kernel::prelude::*;
use kernel::sync::atomic::Relaxed;

/// The files of `/sys/kernel/dm_remap` itself.
pub(crate) struct Root;

/// Parses a written decimal number.
fn number(input: &[u8]) -> Result<u64> {
    parse_u64(input).map_err(|_| EINVAL)
}

/// Parses `0` or `1`.
fn flag(input: &[u8]) -> Result<bool> {
    match input {
        b"0" => Ok(false),
        b"1" => Ok(true),
        _ => Err(EINVAL),
    }
}

fn line(out: &mut ShowBuf<'_>, v: u64) -> Result {
    out.fmt(format_args!("{v}\n"));
    Ok(())
}

/// A read-only file showing one number computed from `T`.
macro_rules! value {
    ($name:literal, |$d:ident| $e:expr) => {
        File {
            name: $name,
            show: Some(|$d, out| line(out, $e)),
            store: None,
        }
    };
}

/// A read-only file showing counter `Slot::$slot` since the last reset.
macro_rules! counter {
    ($name:literal, $slot:ident) => {
        value!($name, |d| d.stats.value(Slot::$slot))
    };
}

/// A read-only file showing one figure computed from everything since the last reset.
macro_rules! since_reset {
    ($name:literal, |$s:ident| $e:expr) => {
        File {
            name: $name,
            show: Some(|d, out| {
                let ($s, _) = d.stats.since_reset()?;
                line(out, $e)
            }),
            store: None,
        }
    };
}

/// A read-only file showing one figure of the latency since the last reset.
macro_rules! latency {
    ($name:literal, $dir:ident, $field:ident) => {
        since_reset!($name, |s| s.latency(Dir::$dir).$field)
    };
}

/// A read-only file showing one figure of the last window (0 before one completed).
macro_rules! window {
    ($name:literal, |$f:ident| $e:expr) => {
        value!($name, |d| d.stats.view().last.map_or(0, |$f| $e))
    };
}

/// A read-only file showing one figure of the baseline (0 without one).
macro_rules! baseline {
    ($name:literal, |$f:ident| $e:expr) => {
        value!($name, |d| d.stats.view().baseline.map_or(0, |$f| $e))
    };
}

/// A read-only file showing one number about the remap table.
macro_rules! table {
    ($name:literal, |$s:ident| $e:expr) => {
        value!($name, |d| {
            let $s = d.table();
            $e
        })
    };
}

/// Rate since the last reset.
fn rate(d: &Device, s: Slot) -> u64 {
    per_second(d.stats.value(s), d.stats.elapsed_ns())
}

const STATS: &[File<Device>] = &[
    File {
        name: c"enabled",
        show: Some(|d, out| line(out, u64::from(d.stats.enabled()))),
        store: Some(|d, input| {
            d.stats.set_enabled(flag(input)?);
            Ok(())
        }),
    },
    File {
        name: c"reset",
        show: None,
        store: Some(|d, input| {
            if !flag(input)? {
                return Err(EINVAL);
            }
            d.stats.reset();
            Ok(())
        }),
    },
    File {
        name: c"window_secs",
        show: Some(|d, out| line(out, u64::from(d.stats.view().window_secs))),
        store: Some(|d, input| {
            let secs = u32::try_from(number(input)?).map_err(|_| EINVAL)?;
            d.stats.set_window_secs(secs)
        }),
    },
    value!(c"elapsed_ms", |d| d.stats.elapsed_ns() / 1_000_000),
    counter!(c"reads", Reads),
    counter!(c"writes", Writes),
    counter!(c"flushes", Flushes),
    counter!(c"discards", Discards),
    counter!(c"write_zeroes", WriteZeroes),
    counter!(c"read_bytes", ReadBytes),
    counter!(c"write_bytes", WriteBytes),
    counter!(c"remap_hits", RemapHits),
    counter!(c"main_read_errors", MainReadErrors),
    counter!(c"main_write_errors", MainWriteErrors),
    counter!(c"spare_errors", SpareErrors),
    counter!(c"errors_returned", ErrorsReturned),
    counter!(c"auto_remaps", AutoRemaps),
    counter!(c"manual_remaps", ManualRemaps),
    counter!(c"metadata_commits", MetaCommits),
    counter!(c"metadata_bytes", MetaBytes),
    since_reset!(c"metadata_commit_ns", |s| s.meta_commit_ns()),
    counter!(c"metadata_commit_max_ns", MetaMaxNs),
    counter!(c"map_calls", MapCalls),
    since_reset!(c"cpu_ns_per_io", |s| s.cpu_ns_per_io()),
    since_reset!(c"cpu_map_ns", |s| s.cpu_map_ns()),
    since_reset!(c"cpu_end_io_ns", |s| s.cpu_end_ns()),
    value!(c"read_iops", |d| rate(d, Slot::Reads)),
    value!(c"write_iops", |d| rate(d, Slot::Writes)),
    value!(c"read_bytes_per_sec", |d| rate(d, Slot::ReadBytes)),
    value!(c"write_bytes_per_sec", |d| rate(d, Slot::WriteBytes)),
    window!(c"window_read_iops", |f| f.read_iops),
    window!(c"window_write_iops", |f| f.write_iops),
    window!(c"window_read_bytes_per_sec", |f| f.read_bps),
    window!(c"window_write_bytes_per_sec", |f| f.write_bps),
    File {
        name: c"summary",
        show: Some(summary),
        store: None,
    },
];

const LATENCY: &[File<Device>] = &[
    latency!(c"read_mean_ns", Read, mean),
    latency!(c"read_p50_ns", Read, p50),
    latency!(c"read_p90_ns", Read, p90),
    latency!(c"read_p99_ns", Read, p99),
    latency!(c"read_p999_ns", Read, p999),
    latency!(c"read_max_ns", Read, max),
    latency!(c"write_mean_ns", Write, mean),
    latency!(c"write_p50_ns", Write, p50),
    latency!(c"write_p90_ns", Write, p90),
    latency!(c"write_p99_ns", Write, p99),
    latency!(c"write_p999_ns", Write, p999),
    latency!(c"write_max_ns", Write, max),
    File {
        name: c"read_histogram",
        show: Some(|d, out| histogram_lines(d, Dir::Read, out)),
        store: None,
    },
    File {
        name: c"write_histogram",
        show: Some(|d, out| histogram_lines(d, Dir::Write, out)),
        store: None,
    },
];

const BASELINE: &[File<Device>] = &[
    File {
        name: c"capture",
        show: None,
        store: Some(|d, input| {
            if !flag(input)? {
                return Err(EINVAL);
            }
            d.stats.capture()
        }),
    },
    File {
        name: c"threshold_pct",
        show: Some(|d, out| line(out, u64::from(d.stats.view().rule.threshold_pct))),
        store: Some(|d, input| {
            let pct = number(input)?;
            if pct > u64::from(MAX_THRESHOLD_PCT) {
                return Err(EINVAL);
            }
            // Fits: at most MAX_THRESHOLD_PCT.
            d.stats.set_rule(|r| r.threshold_pct = pct as u32);
            Ok(())
        }),
    },
    File {
        name: c"min_samples",
        show: Some(|d, out| line(out, d.stats.view().rule.min_samples)),
        store: Some(|d, input| {
            let n = number(input)?;
            if n == 0 {
                return Err(EINVAL);
            }
            d.stats.set_rule(|r| r.min_samples = n);
            Ok(())
        }),
    },
    value!(c"captured", |d| u64::from(
        d.stats.view().baseline.is_some()
    )),
    baseline!(c"read_mean_ns", |f| f.read.mean),
    baseline!(c"write_mean_ns", |f| f.write.mean),
    baseline!(c"read_samples", |f| f.read.count),
    baseline!(c"write_samples", |f| f.write.count),
    baseline!(c"read_iops", |f| f.read_iops),
    baseline!(c"write_iops", |f| f.write_iops),
    baseline!(c"cpu_ns_per_io", |f| f.cpu_ns_per_io),
    File {
        name: c"read_mean_change_pct",
        show: Some(|d, out| change(d, |f| f.read.mean, out)),
        store: None,
    },
    File {
        name: c"write_mean_change_pct",
        show: Some(|d, out| change(d, |f| f.write.mean, out)),
        store: None,
    },
    File {
        name: c"comparison",
        show: Some(comparison),
        store: None,
    },
    value!(c"regression", |d| u64::from(d.stats.view().regression)),
];

const REMAPS: &[File<Device>] = &[
    table!(c"remapped", |s| s.remapped()),
    table!(c"failing", |s| s.failing()),
    table!(c"spare_blocks", |s| s.data_blocks()),
    table!(c"spare_free", |s| s.spare_free()),
    table!(c"spare_retired", |s| s.spare_retired()),
    table!(c"exhausted", |s| u64::from(s.exhausted())),
    table!(c"auto", |s| s.counters().auto_remaps.load(Relaxed)),
    table!(c"manual", |s| s.counters().manual_remaps.load(Relaxed)),
    table!(c"frozen", |s| s.frozen()),
];

const METADATA: &[File<Device>] = &[
    table!(c"copies", |s| u64::from(s.copies())),
    table!(c"copies_valid", |s| u64::from(s.copies_valid())),
    table!(c"sequence", |s| s.seq()),
    table!(c"bytes_written", |s| s.bytes_written()),
    File {
        name: c"last_commit_age_ms",
        show: Some(|d, out| {
            match d.table().last_commit_age_ns() {
                Some(ns) => out.fmt(format_args!("{}\n", ns / 1_000_000)),
                None => out.fmt(format_args!("never\n")),
            }
            Ok(())
        }),
        store: None,
    },
];

/// A read-only file showing one number of the scanner.
macro_rules! scan {
    ($name:literal, |$s:ident| $e:expr) => {
        value!($name, |d| {
            let view = d.table();
            let $s = view.scan();
            $e
        })
    };
}

/// A settable file of the scanner; a bad value is refused with `EINVAL` and the old one
/// kept.
macro_rules! scan_setting {
    ($name:literal, $which:ident, |$v:ident| $e:expr) => {
        File {
            name: $name,
            show: Some(|d, out| {
                let $v = d.table().scan().settings();
                line(out, $e)
            }),
            store: Some(|d, input| {
                d.table()
                    .scan()
                    .set(Setting::$which, input)
                    .map_err(|_| EINVAL)
            }),
        }
    };
}

/// Shows `-` for `None`.
fn optional(out: &mut ShowBuf<'_>, v: Option<u64>) -> Result {
    match v {
        Some(v) => line(out, v),
        None => {
            out.fmt(format_args!("-\n"));
            Ok(())
        }
    }
}

const SCANNER: &[File<Device>] = &[
    File {
        name: c"control",
        show: None,
        store: Some(|d, input| {
            let cmd = parse_command(input).map_err(|_| EINVAL)?;
            d.table().scan().command(cmd).map_err(|_| EINVAL)
        }),
    },
    File {
        name: c"state",
        show: Some(|d, out| {
            out.fmt(format_args!("{}\n", d.table().scan().state().name()));
            Ok(())
        }),
        store: None,
    },
    scan!(c"passes", |s| s.passes.load(Relaxed)),
    scan!(c"position", |s| s.position.load(Relaxed)),
    scan!(c"blocks_scanned", |s| s.blocks_scanned.load(Relaxed)),
    scan!(c"unreadable", |s| s.unreadable.load(Relaxed)),
    scan!(c"slow", |s| s.slow.load(Relaxed)),
    scan!(c"relocated", |s| s.relocated.load(Relaxed)),
    File {
        name: c"rate_kib_s",
        show: Some(|d, out| line(out, d.table().scan().rate_kib_s().unwrap_or(0))),
        store: None,
    },
    File {
        name: c"eta_s",
        show: Some(|d, out| optional(out, d.table().scan().eta_s())),
        store: None,
    },
    scan_setting!(c"speed_min_kib_s", SpeedMin, |s| s.speed_min_kib_s),
    scan_setting!(c"speed_max_kib_s", SpeedMax, |s| s.speed_max_kib_s),
    scan_setting!(c"slow_threshold_us", SlowThreshold, |s| s.slow_threshold_us),
    scan_setting!(c"relocate_slow", RelocateSlow, |s| u64::from(
        s.relocate_slow
    )),
    scan_setting!(c"interval_hours", Interval, |s| s.interval_hours),
];

/// The stress engine's files (`stress/`): starting a run returns at once; the status and
/// results files say how it goes.
const STRESS: &[File<Device>] = &[
    File {
        name: c"stress_test_start",
        show: None,
        store: Some(|d, input| d.stress.start_line(input)),
    },
    File {
        name: c"stress_test_stop",
        show: None,
        store: Some(|d, input| {
            if !flag(input)? {
                return Err(EINVAL);
            }
            d.stress.stop_request()
        }),
    },
    File {
        name: c"stress_test_status",
        show: Some(|d, out| {
            let _ = d.stress.write_status(out);
            Ok(())
        }),
        store: None,
    },
    File {
        name: c"stress_test_results",
        show: Some(|d, out| {
            let _ = d.stress.write_results(out);
            Ok(())
        }),
        store: None,
    },
    File {
        name: c"quick_validation",
        show: None,
        store: Some(|d, input| {
            if !flag(input)? {
                return Err(EINVAL);
            }
            d.stress.quick_validation()
        }),
    },
    File {
        name: c"regression_test",
        show: Some(|d, out| {
            let _ = d.stress.write_regression(out);
            Ok(())
        }),
        store: Some(|d, input| match input {
            b"1" => d.stress.regression_test(d.stats.view().rule.threshold_pct),
            b"reset" => {
                d.stress.regression_reset();
                Ok(())
            }
            _ => Err(EINVAL),
        }),
    },
    File {
        name: c"memory_pressure_test",
        show: None,
        store: Some(|d, input| {
            let (mb, ms) = parse_pressure(input).ok_or(EINVAL)?;
            d.stress.memory_pressure(mb, ms)
        }),
    },
    File {
        name: c"comprehensive_report",
        show: Some(comprehensive_report),
        store: None,
    },
    File {
        name: c"allow_writes",
        show: Some(|d, out| line(out, u64::from(d.stress.allow_writes()))),
        store: Some(|d, input| {
            d.stress.set_allow_writes(flag(input)?);
            Ok(())
        }),
    },
];

/// `comprehensive_report`: the device's statistics, table and scanner, and the stress
/// engine's last runs, for a person to read.
fn comprehensive_report(d: &Device, out: &mut ShowBuf<'_>) -> Result {
    out.fmt(format_args!("== statistics ==\n"));
    summary(d, out)?;
    let t = d.table();
    out.fmt(format_args!(
        "== remap table ==\nremapped {} failing {} spare_free {} spare_retired {} frozen {}\n",
        t.remapped(),
        t.failing(),
        t.spare_free(),
        t.spare_retired(),
        t.frozen()
    ));
    let scan = t.scan();
    out.fmt(format_args!(
        "scanner: {} passes {} unreadable {} slow {} relocated {}\n== stress ==\n",
        scan.state().name(),
        scan.passes.load(Relaxed),
        scan.unreadable.load(Relaxed),
        scan.slow.load(Relaxed),
        scan.relocated.load(Relaxed)
    ));
    let _ = d.stress.write_report(out);
    Ok(())
}

impl Files for Device {
    const GROUPS: &'static [Group<Self>] = &[
        Group {
            name: Some(c"stats"),
            files: STATS,
        },
        Group {
            name: Some(c"latency"),
            files: LATENCY,
        },
        Group {
            name: Some(c"baseline"),
            files: BASELINE,
        },
        Group {
            name: Some(c"remaps"),
            files: REMAPS,
        },
        Group {
            name: Some(c"metadata"),
            files: METADATA,
        },
        Group {
            name: Some(c"scanner"),
            files: SCANNER,
        },
        Group {
            name: Some(c"stress"),
            files: STRESS,
        },
    ];
}

impl Files for Root {
    const GROUPS: &'static [Group<Self>] = &[Group {
        name: None,
        files: &[
            File {
                name: c"version",
                show: Some(|_, out| {
                    let [a, b, c] = crate::logic::args::TARGET_VERSION;
                    out.fmt(format_args!("{a}.{b}.{c}\n"));
                    Ok(())
                }),
                store: None,
            },
            File {
                name: c"devices",
                show: Some(|_, out| {
                    for e in REGISTRY::lock().devices.iter() {
                        out.fmt(format_args!("{}\n", e.name().to_str().unwrap_or("?")));
                    }
                    Ok(())
                }),
                store: None,
            },
            File {
                name: c"performance_stats",
                show: Some(performance_stats),
                store: None,
            },
            File {
                name: c"lookup_benchmark",
                show: Some(|_, out| crate::lookup_bench::show(out)),
                store: Some(|_, input| crate::lookup_bench::store(input)),
            },
        ],
    }];
}

/// `histogram`: one line per non-empty bucket, `<lowest_ns> <highest_ns> <count>`.
fn histogram_lines(d: &Device, dir: Dir, out: &mut ShowBuf<'_>) -> Result {
    let (s, _) = d.stats.since_reset()?;
    for (i, &n) in s.buckets(dir).iter().enumerate().filter(|(_, &n)| n != 0) {
        let (lo, hi) = histogram::bounds(i);
        out.fmt(format_args!("{lo} {hi} {n}\n"));
    }
    Ok(())
}

/// One number out of window figures.
type Figure = fn(&Figures) -> u64;

/// A change of the last window against the baseline in percent (`12.3`), or `n/a`.
fn change(d: &Device, figure: Figure, out: &mut ShowBuf<'_>) -> Result {
    let v = d.stats.view();
    match (v.baseline, v.last) {
        (Some(b), Some(l)) => write_change(out, figure(&b), figure(&l)),
        _ => out.fmt(format_args!("n/a")),
    }
    out.fmt(format_args!("\n"));
    Ok(())
}

fn write_change(out: &mut ShowBuf<'_>, base: u64, now: u64) {
    match change_permille(base, now) {
        Some(p) => {
            let _ = write_permille(out, p);
        }
        None => out.fmt(format_args!("n/a")),
    }
}

/// `comparison`: the baseline against the last window, one metric per line.
fn comparison(d: &Device, out: &mut ShowBuf<'_>) -> Result {
    let v = d.stats.view();
    let (Some(b), Some(l)) = (v.baseline, v.last) else {
        out.fmt(format_args!(
            "{}\n",
            if v.baseline.is_none() {
                "no baseline captured"
            } else {
                "no complete window since the last reset"
            }
        ));
        return Ok(());
    };
    out.fmt(format_args!("metric baseline current change_pct\n"));
    let rows: [(&str, Figure); 11] = [
        ("read_iops", |f| f.read_iops),
        ("write_iops", |f| f.write_iops),
        ("read_bytes_per_sec", |f| f.read_bps),
        ("write_bytes_per_sec", |f| f.write_bps),
        ("read_mean_ns", |f| f.read.mean),
        ("read_p50_ns", |f| f.read.p50),
        ("read_p99_ns", |f| f.read.p99),
        ("write_mean_ns", |f| f.write.mean),
        ("write_p50_ns", |f| f.write.p50),
        ("write_p99_ns", |f| f.write.p99),
        ("cpu_ns_per_io", |f| f.cpu_ns_per_io),
    ];
    for (name, f) in rows {
        out.fmt(format_args!("{name} {} {} ", f(&b), f(&l)));
        write_change(out, f(&b), f(&l));
        out.fmt(format_args!("\n"));
    }
    out.fmt(format_args!(
        "regression {} (threshold {}%, min_samples {})\n",
        u8::from(v.regression),
        v.rule.threshold_pct,
        v.rule.min_samples
    ));
    Ok(())
}

fn write_latency(out: &mut ShowBuf<'_>, name: &str, l: &Latency) {
    let us = |ns: u64| ns / 1000;
    out.fmt(format_args!(
        "{name} latency (us): mean {} p50 {} p90 {} p99 {} p99.9 {} max {}\n",
        us(l.mean),
        us(l.p50),
        us(l.p90),
        us(l.p99),
        us(l.p999),
        us(l.max)
    ));
}

/// `summary`: everything in `stats/` and `latency/` for a person to read.
fn summary(d: &Device, out: &mut ShowBuf<'_>) -> Result {
    let (s, elapsed) = d.stats.since_reset()?;
    let g = |slot| s.get(slot);
    let mib = |b: u64| b / (1024 * 1024);
    out.fmt(format_args!(
        "instrumentation: {}\nsince reset: {}.{:03} s\n",
        if d.stats.enabled() { "on" } else { "off" },
        elapsed / 1_000_000_000,
        elapsed / 1_000_000 % 1000
    ));
    out.fmt(format_args!(
        "reads: {} ({} IOPS, {} MiB)\nwrites: {} ({} IOPS, {} MiB)\n",
        g(Slot::Reads),
        per_second(g(Slot::Reads), elapsed),
        mib(g(Slot::ReadBytes)),
        g(Slot::Writes),
        per_second(g(Slot::Writes), elapsed),
        mib(g(Slot::WriteBytes))
    ));
    out.fmt(format_args!(
        "flushes: {}  discards: {}  write_zeroes: {}  remap_hits: {}\n",
        g(Slot::Flushes),
        g(Slot::Discards),
        g(Slot::WriteZeroes),
        g(Slot::RemapHits)
    ));
    out.fmt(format_args!(
        "errors: main read {}, main write {}, spare {}, returned {}\nremaps: auto {}, manual {}\n",
        g(Slot::MainReadErrors),
        g(Slot::MainWriteErrors),
        g(Slot::SpareErrors),
        g(Slot::ErrorsReturned),
        g(Slot::AutoRemaps),
        g(Slot::ManualRemaps)
    ));
    out.fmt(format_args!(
        "metadata: {} commits, {} bytes, commit mean {} us, max {} us\n",
        g(Slot::MetaCommits),
        g(Slot::MetaBytes),
        s.meta_commit_ns() / 1000,
        g(Slot::MetaMaxNs) / 1000
    ));
    write_latency(out, "read", &s.latency(Dir::Read));
    write_latency(out, "write", &s.latency(Dir::Write));
    out.fmt(format_args!(
        "cpu per I/O: {} ns (map {}, end_io {}; 1 in {} I/Os sampled)\n",
        s.cpu_ns_per_io(),
        s.cpu_map_ns(),
        s.cpu_end_ns(),
        CPU_SAMPLE_EVERY
    ));
    let v = d.stats.view();
    match v.last {
        Some(f) => out.fmt(format_args!(
            "last {} s window: {} read IOPS, {} write IOPS, read mean {} us, write mean {} us\n",
            v.window_secs,
            f.read_iops,
            f.write_iops,
            f.read.mean / 1000,
            f.write.mean / 1000
        )),
        None => out.fmt(format_args!(
            "last {} s window: none complete yet\n",
            v.window_secs
        )),
    }
    out.fmt(format_args!(
        "baseline: {}, regression {}\n",
        if v.baseline.is_some() {
            "captured"
        } else {
            "none"
        },
        u8::from(v.regression)
    ));
    Ok(())
}

/// `performance_stats`: one `key=value` line per device, then their total. The devices are
/// listed under the registry lock and read without it (a snapshot per device allocates and
/// sums every CPU's counters; target construction takes the same lock).
fn performance_stats(_: &Root, out: &mut ShowBuf<'_>) -> Result {
    let devices = {
        let reg = REGISTRY::lock();
        let mut v = KVec::with_capacity(reg.devices.len(), GFP_KERNEL)?;
        for e in reg.devices.iter() {
            v.push((e.name, e.dev.clone()), GFP_KERNEL)?;
        }
        v
    };
    let mut total = [0u64; 6];
    for (name, d) in devices.iter() {
        let (s, elapsed) = d.stats.since_reset()?;
        let w = d.stats.view().last.unwrap_or_default();
        let row = [
            s.get(Slot::Reads),
            s.get(Slot::Writes),
            s.get(Slot::ReadBytes),
            s.get(Slot::WriteBytes),
            w.read_iops,
            w.write_iops,
        ];
        for (t, v) in total.iter_mut().zip(row) {
            *t = t.wrapping_add(v);
        }
        let (r, wr) = (s.latency(Dir::Read), s.latency(Dir::Write));
        out.fmt(format_args!(
            "{} reads={} writes={} read_bytes={} write_bytes={} window_read_iops={} window_write_iops={} read_iops={} write_iops={} read_p99_ns={} write_p99_ns={} cpu_ns_per_io={} remapped={} regression={}\n",
            CStr::from_bytes_until_nul(name).unwrap_or(c"?").to_str().unwrap_or("?"),
            row[0], row[1], row[2], row[3], row[4], row[5],
            per_second(row[0], elapsed),
            per_second(row[1], elapsed),
            r.p99,
            wr.p99,
            s.cpu_ns_per_io(),
            d.table().remapped(),
            u8::from(d.stats.view().regression)
        ));
    }
    out.fmt(format_args!(
        "total devices={} reads={} writes={} read_bytes={} write_bytes={} window_read_iops={} window_write_iops={}\n",
        devices.len(),
        total[0], total[1], total[2], total[3], total[4], total[5]
    ));
    Ok(())
}
