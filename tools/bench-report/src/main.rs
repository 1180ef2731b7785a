// SPDX-License-Identifier: GPL-2.0

//! `bench-report DIR`: turns what `bench/guest.sh` wrote (DIR/setup.txt, DIR/runs.txt,
//! DIR/presence.txt, DIR/raw/NAME.json from fio and DIR/raw/NAME.cpu with /proc/stat ticks)
//! into DIR/results.json, DIR/results.md and DIR/ratio.svg. See docs/performance.md.
//! `bench-report profile DIR` attributes an instruction profile to functions (profile.rs).
//!
//! Per workload and configuration it reports the median and the spread (min..max over the
//! rounds) of IOPS, the median of the per-round p50 and p99 latencies, CPU time per I/O,
//! and the ratio of IOPS to dm-linear *in the same round*. Under icount (the default of
//! scripts/bench) guest time is guest instructions, so 1e9 / IOPS is the instructions per
//! I/O of the whole VM (fio included) and runs repeat to ~0.1%; on wall-clock TCG the
//! ratio in the same round cancels some of the drift between rounds, not most of it.
//!
//! setup.txt's `lookup_benchmark` lines (the table lookup alone, tests/vm/lookup_bench.sh)
//! become a table of their own and, under icount, the targets of [`LOOKUP_TARGETS`].

mod profile;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::exit;

/// The configuration every other one is compared with.
const BASELINE: &str = "linear";

/// Targets from the project's issues: (workload, configuration, reference configuration,
/// lowest ratio of their IOPS in the same round).
const TARGETS: &[(&str, &str, &str, f64)] = &[
    // Issue 12: an empty dm-remap device is at least as fast as dm-linear,
    ("randread-4k-qd32", "remap-empty", BASELINE, 1.00),
    ("randwrite-4k-qd32", "remap-empty", BASELINE, 1.00),
    // 100,000 remapped blocks (1% of I/Os hit one) cost at most 2%, 1,000,000 at most 3%,
    ("randread-4k-qd32", "remap-table", BASELINE, 0.98),
    ("randread-4k-qd32", "remap-large", BASELINE, 0.97),
    // instrumentation costs at most 1%,
    ("randread-4k-qd32", "remap-empty", INSTR_OFF, 0.99),
    // Issue 14: the background scanner at its default settings costs foreground random
    // reads at most 5%,
    ("randread-4k-qd32", "remap-scan", INSTR_ON, 0.95),
    // 128 KiB sequential reads lose at most 1% in every configuration.
    ("seqread-128k-qd8", "remap-empty", BASELINE, 0.99),
    ("seqread-128k-qd8", "remap-table", BASELINE, 0.99),
    ("seqread-128k-qd8", "remap-large", BASELINE, 0.99),
    ("seqread-128k-qd8", "remap-instr-off", BASELINE, 0.99),
];

/// Issue 12: loading a 1,000,000-entry table takes at most 1e9 instructions (one second of
/// guest time under icount).
const LARGE_LOAD_MAX_S: f64 = 1.0;

/// Issue 15: `lookup_benchmark` (half hits, half misses) costs at most this many
/// instructions per lookup at this many entries, under icount.
const LOOKUP_TARGETS: &[(u64, u64)] = &[(10_000, 100), (1_000_000, 200)];

/// The configuration without instrumentation (feature argument `no_stats`).
const INSTR_OFF: &str = "remap-instr-off";
/// The same target with instrumentation on.
const INSTR_ON: &str = "remap-empty";

/// One fio run.
struct Run {
    round: u32,
    workload: String,
    config: String,
    iops: f64,
    p50_us: f64,
    p99_us: f64,
    mean_us: f64,
    ios: u64,
    /// CPU time of the whole VM per I/O, if the tick counts were recorded.
    cpu_us_per_io: Option<f64>,
}

fn fail(msg: &str) -> ! {
    eprintln!("bench-report: {msg}");
    exit(1);
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())))
}

/// The fio job's numbers for the direction that did I/O.
fn parse_fio(path: &Path) -> (f64, f64, f64, f64, u64) {
    let v: Value = serde_json::from_str(&read(path))
        .unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
    let job = &v["jobs"][0];
    let dir = ["read", "write"]
        .iter()
        .map(|d| &job[*d])
        .find(|d| d["total_ios"].as_u64().unwrap_or(0) > 0)
        .unwrap_or_else(|| fail(&format!("{}: no I/O in the fio output", path.display())));
    let lat = &dir["lat_ns"];
    let pct = |p: &str| lat["percentile"][p].as_f64().unwrap_or(f64::NAN) / 1000.0;
    (
        dir["iops"].as_f64().unwrap_or(0.0),
        pct("50.000000"),
        pct("99.000000"),
        lat["mean"].as_f64().unwrap_or(f64::NAN) / 1000.0,
        dir["total_ios"].as_u64().unwrap_or(0),
    )
}

/// CPU microseconds per I/O from "busy0 total0 busy1 total1" (USER_HZ ticks, 100 per s).
fn parse_cpu(path: &Path, ios: u64) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let n: Vec<u64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    if n.len() != 4 || ios == 0 {
        return None;
    }
    Some(n[2].checked_sub(n[0])? as f64 * 10_000.0 / ios as f64)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// Summary of one configuration under one workload.
struct Summary {
    config: String,
    iops: (f64, f64, f64),
    ratio: Option<(f64, f64, f64)>,
    p50_us: f64,
    p99_us: f64,
    mean_us: f64,
    cpu_us_per_io: Option<f64>,
    rounds: Vec<Value>,
}

/// IOPS of `config` over IOPS of `reference` in the same round, for every round that ran
/// both: (median, min, max).
fn paired_ratio(
    runs: &[Run],
    workload: &str,
    config: &str,
    reference: &str,
) -> Option<(f64, f64, f64)> {
    let find = |c: &str, round: u32| {
        runs.iter()
            .find(|r| r.workload == workload && r.config == c && r.round == round)
    };
    let mut ratios: Vec<f64> = runs
        .iter()
        .filter(|r| r.workload == workload && r.config == config)
        .filter_map(|r| {
            let b = find(reference, r.round)?.iops;
            (b > 0.0).then(|| r.iops / b)
        })
        .collect();
    if ratios.is_empty() {
        return None;
    }
    let (lo, hi) = min_max(&ratios);
    Some((median(&mut ratios), lo, hi))
}

fn summarise(runs: &[Run], workload: &str, config: &str) -> Option<Summary> {
    let mine: Vec<&Run> = runs
        .iter()
        .filter(|r| r.workload == workload && r.config == config)
        .collect();
    if mine.is_empty() {
        return None;
    }
    let base = |round: u32| {
        runs.iter()
            .find(|r| r.workload == workload && r.config == BASELINE && r.round == round)
            .map(|r| r.iops)
    };
    let mut iops: Vec<f64> = mine.iter().map(|r| r.iops).collect();
    let (lo, hi) = min_max(&iops);
    let ratio = paired_ratio(runs, workload, config, BASELINE);
    let mut cpu: Vec<f64> = mine.iter().filter_map(|r| r.cpu_us_per_io).collect();
    let rounds = mine
        .iter()
        .map(|r| {
            json!({
                "round": r.round,
                "iops": r.iops,
                "ios": r.ios,
                "ratio_to_linear": base(r.round).map(|b| r.iops / b),
                "lat_p50_us": r.p50_us,
                "lat_p99_us": r.p99_us,
                "lat_mean_us": r.mean_us,
                "cpu_us_per_io": r.cpu_us_per_io,
            })
        })
        .collect();
    Some(Summary {
        config: config.to_string(),
        iops: (median(&mut iops), lo, hi),
        ratio,
        p50_us: median(&mut mine.iter().map(|r| r.p50_us).collect::<Vec<_>>()),
        p99_us: median(&mut mine.iter().map(|r| r.p99_us).collect::<Vec<_>>()),
        mean_us: median(&mut mine.iter().map(|r| r.mean_us).collect::<Vec<_>>()),
        cpu_us_per_io: (!cpu.is_empty()).then(|| median(&mut cpu)),
        rounds,
    })
}

/// DIR/ratio.svg: per workload a bar per configuration (other than the baseline) at its
/// median ratio to dm-linear, with a whisker from the lowest to the highest.
fn chart(path: &Path, workloads: &[String], table: &[(String, Vec<Summary>)]) {
    let root = SVGBackend::new(path, (1100, 520)).into_drawing_area();
    draw_chart(&root, workloads, table)
        .unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
}

/// The configurations charted: those of the first workload but the baseline.
fn chart_configs(table: &[(String, Vec<Summary>)]) -> Vec<&str> {
    table
        .first()
        .map(|(_, s)| {
            s.iter()
                .map(|s| s.config.as_str())
                .filter(|c| *c != BASELINE)
                .collect()
        })
        .unwrap_or_default()
}

/// The y range of the chart: every ratio, 1.0 and room above the bars for the legend.
fn chart_range(table: &[(String, Vec<Summary>)]) -> (f64, f64) {
    let all: Vec<f64> = table
        .iter()
        .flat_map(|(_, s)| s.iter())
        .filter_map(|s| s.ratio)
        .flat_map(|(m, lo, hi)| [m, lo, hi])
        .filter(|x| x.is_finite())
        .collect();
    let (lo, hi) = min_max(&all);
    let y0 = (lo - 0.05).min(0.85);
    // Room above the bars for the legend.
    let y1 = (hi + 0.05).max(1.1) + 0.25;
    (y0, y1)
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn draw_chart(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    workloads: &[String],
    table: &[(String, Vec<Summary>)],
) -> Result<(), Box<dyn std::error::Error>> {
    let configs = chart_configs(table);
    let (y0, y1) = chart_range(table);
    let n = workloads.len() as f64;
    root.fill(&WHITE)?;
    let mut c = ChartBuilder::on(root)
        .caption(
            "IOPS relative to dm-linear in the same round (median, bars: min..max)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5..n - 0.5, y0..y1)?;
    let names = workloads.to_vec();
    let label = move |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            names.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    c.configure_mesh()
        .disable_x_mesh()
        .y_max_light_lines(1)
        .x_labels(workloads.len() * 2 + 1)
        .x_label_formatter(&label)
        .y_desc("IOPS / dm-linear IOPS")
        .draw()?;
    c.draw_series(LineSeries::new(
        [(-0.5, 1.0), (n - 0.5, 1.0)],
        BLACK.stroke_width(1),
    ))?;
    draw_bars(&mut c, table, &configs, y0)?;
    c.configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()?;
    Ok(())
}

/// For each configuration, in its color: a bar per workload from `y0` to the median ratio
/// and a whisker over min..max; one legend entry.
fn draw_bars(
    c: &mut Chart<'_, '_>,
    table: &[(String, Vec<Summary>)],
    configs: &[&str],
    y0: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let k = configs.len().max(1) as f64;
    for (j, config) in configs.iter().enumerate() {
        let color = Palette99::pick(j).to_rgba();
        let mut bars = Vec::new();
        let mut whiskers = Vec::new();
        for (i, (_, sums)) in table.iter().enumerate() {
            let Some((m, rlo, rhi)) = sums
                .iter()
                .find(|s| s.config == *config)
                .and_then(|s| s.ratio)
            else {
                continue;
            };
            let x0 = i as f64 - 0.4 + j as f64 * 0.8 / k;
            let x1 = x0 + 0.8 / k * 0.9;
            bars.push(Rectangle::new([(x0, y0), (x1, m)], color.filled()));
            let xm = (x0 + x1) / 2.0;
            whiskers.push(PathElement::new(
                vec![(xm, rlo), (xm, rhi)],
                BLACK.stroke_width(2),
            ));
        }
        c.draw_series(bars)?
            .label(*config)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        c.draw_series(whiskers)?;
    }
    Ok(())
}

fn fmt_opt(v: Option<f64>, prec: usize) -> String {
    v.filter(|x| x.is_finite())
        .map_or("-".to_string(), |x| format!("{x:.prec$}"))
}

/// One `lookup_benchmark` run: setup.txt's `lookup_benchmark ENTRIES LOOKUPS NS_PER_LOOKUP
/// NS_PER_INSERT hit=H miss=M walk_hit=WH walk_miss=WM` (the costs from the kernel log, if
/// bench/guest.sh found them).
#[derive(Debug, Clone, PartialEq)]
struct LookupRun {
    entries: u64,
    lookups: u64,
    per_lookup: u64,
    per_insert: u64,
    hit: Option<u64>,
    miss: Option<u64>,
    walk_hit: Option<u64>,
    walk_miss: Option<u64>,
}

impl LookupRun {
    /// Parses the value of one `lookup_benchmark` line of setup.txt.
    fn parse(v: &str) -> Option<Self> {
        let mut words = v.split_whitespace();
        let mut n = || words.next()?.parse::<u64>().ok();
        let (entries, lookups, per_lookup, per_insert) = (n()?, n()?, n()?, n()?);
        let named = |key: &str| {
            v.split_whitespace()
                .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
        };
        Some(Self {
            entries,
            lookups,
            per_lookup,
            per_insert,
            hit: named("hit"),
            miss: named("miss"),
            walk_hit: named("walk_hit"),
            walk_miss: named("walk_miss"),
        })
    }

    fn json(&self) -> Value {
        json!({"entries": self.entries, "lookups": self.lookups,
               "ns_per_lookup": self.per_lookup, "ns_per_insert": self.per_insert,
               "ns_per_hit": self.hit, "ns_per_miss": self.miss,
               "ns_per_tree_walk_hit": self.walk_hit, "ns_per_tree_walk_miss": self.walk_miss})
    }
}

/// The `lookup_benchmark` runs of setup.txt (one value or a list of them).
fn lookup_runs(setup: &Map<String, Value>) -> Vec<LookupRun> {
    match setup.get("lookup_benchmark") {
        Some(Value::String(v)) => LookupRun::parse(v).into_iter().collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| LookupRun::parse(v.as_str()?))
            .collect(),
        _ => Vec::new(),
    }
}

/// The [`LOOKUP_TARGETS`] whose size ran, judged only under icount (where nanoseconds are
/// instructions).
fn lookup_targets(runs: &[LookupRun], icount: bool) -> Vec<Value> {
    if !icount {
        return Vec::new();
    }
    LOOKUP_TARGETS
        .iter()
        .filter_map(|&(entries, max)| {
            let r = runs.iter().find(|r| r.entries == entries)?;
            Some(json!({"entries": entries, "max_instructions": max,
                        "instructions": r.per_lookup, "met": r.per_lookup <= max}))
        })
        .collect()
}

/// The report of one benchmark directory, as it is written out.
struct Report {
    /// setup.txt: key -> value, or a list of values for a repeated key.
    setup: Map<String, Value>,
    runs: Vec<Run>,
    /// Workloads in the order of their first run.
    workloads: Vec<String>,
    /// Per workload, a summary per configuration in the order setup.txt lists them.
    table: Vec<(String, Vec<Summary>)>,
    /// Each target of [`TARGETS`] that ran, then each presence run.
    targets: Vec<Value>,
    /// presence.txt: (other devices, dm-remap IOPS, dm-linear IOPS).
    presence: Vec<(u32, f64, f64)>,
    /// Per workload: IOPS with instrumentation over IOPS without, in the same round.
    overhead: Vec<(String, (f64, f64, f64))>,
    icount: bool,
    /// Seconds the large table took to load.
    large_load: Option<f64>,
    /// `lookup_benchmark` runs, in the order they ran.
    lookups: Vec<LookupRun>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = match &args[..] {
        [_, dir] => PathBuf::from(dir),
        [_, cmd, dir] if cmd == "profile" => {
            profile::main(Path::new(dir));
            return;
        }
        _ => {
            eprintln!("usage: bench-report DIR | bench-report profile DIR");
            exit(2);
        }
    };
    let r = read_report(&dir);
    write_json(&dir, &r);
    let md_path = dir.join("results.md");
    std::fs::write(&md_path, markdown(&r))
        .unwrap_or_else(|e| fail(&format!("{}: {e}", md_path.display())));
    chart(&dir.join("ratio.svg"), &r.workloads, &r.table);
    println!(
        "{} runs; wrote results.json, results.md and ratio.svg in {}",
        r.runs.len(),
        dir.display()
    );
}

/// Reads and summarises everything in `dir`.
fn read_report(dir: &Path) -> Report {
    let setup = read_setup(dir);
    let (runs, workloads, mut configs) = read_runs(dir);
    // Report the configurations in the order the setup lists them (runs are shuffled).
    if let Some(order) = setup.get("configs").and_then(Value::as_str) {
        let pos = |c: &String| order.split_whitespace().position(|o| o == c);
        configs.sort_by_key(|c| pos(c).unwrap_or(usize::MAX));
    }
    let table: Vec<(String, Vec<Summary>)> = workloads
        .iter()
        .map(|w| {
            let sums = configs
                .iter()
                .filter_map(|c| summarise(&runs, w, c))
                .collect();
            (w.clone(), sums)
        })
        .collect();
    let mut targets: Vec<Value> = TARGETS
        .iter()
        .filter_map(|&(w, c, reference, min)| {
            paired_ratio(&runs, w, c, reference).map(|(r, lo, hi)| {
                json!({"workload": w, "config": c, "reference": reference, "min_ratio": min,
                       "ratio": r, "ratio_min": lo, "ratio_max": hi, "met": r >= min})
            })
        })
        .collect();
    let presence = read_presence(dir);
    for &(n, remap, linear) in &presence {
        let r = remap / linear;
        targets.push(json!({"workload": "randread-4k-qd32",
            "config": format!("remap-empty with {n} other dm-remap devices"),
            "reference": "linear", "min_ratio": 1.0, "ratio": r, "ratio_min": r,
            "ratio_max": r, "met": r >= 1.0}));
    }
    let icount = setup.get("icount").and_then(Value::as_str) == Some("1");
    let large_load = setup
        .get("large_load_s")
        .and_then(Value::as_str)
        .and_then(|v| v.parse::<f64>().ok());
    // The instrumentation's cost: instrumented over not instrumented, every workload.
    let overhead: Vec<(String, (f64, f64, f64))> = workloads
        .iter()
        .filter_map(|w| paired_ratio(&runs, w, INSTR_ON, INSTR_OFF).map(|r| (w.clone(), r)))
        .collect();
    let lookups = lookup_runs(&setup);
    Report {
        setup,
        runs,
        workloads,
        table,
        targets,
        presence,
        overhead,
        icount,
        large_load,
        lookups,
    }
}

/// setup.txt: one "key value" per line.
fn read_setup(dir: &Path) -> Map<String, Value> {
    let mut setup = Map::new();
    for line in read(&dir.join("setup.txt")).lines() {
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        let v = v.trim().to_string();
        // Repeated keys (one line per table, per status) collect into a list.
        match setup.get_mut(k) {
            Some(Value::Array(a)) => a.push(Value::String(v)),
            Some(old) => *old = Value::Array(vec![old.take(), Value::String(v)]),
            None => {
                setup.insert(k.to_string(), Value::String(v));
            }
        }
    }
    setup
}

/// runs.txt ("round workload configuration name" per line) with each run's fio and CPU
/// results; also the workloads and configurations in the order of their first run.
fn read_runs(dir: &Path) -> (Vec<Run>, Vec<String>, Vec<String>) {
    let mut runs = Vec::new();
    let mut workloads: Vec<String> = Vec::new();
    let mut configs: Vec<String> = Vec::new();
    for line in read(&dir.join("runs.txt")).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [round, workload, config, name] = f[..] else {
            fail(&format!("runs.txt: bad line {line:?}"));
        };
        let (iops, p50_us, p99_us, mean_us, ios) =
            parse_fio(&dir.join("raw").join(format!("{name}.json")));
        let cpu_us_per_io = parse_cpu(&dir.join("raw").join(format!("{name}.cpu")), ios);
        if !workloads.iter().any(|w| w == workload) {
            workloads.push(workload.to_string());
        }
        if !configs.iter().any(|c| c == config) {
            configs.push(config.to_string());
        }
        runs.push(Run {
            round: round
                .parse()
                .unwrap_or_else(|_| fail(&format!("runs.txt: bad round in {line:?}"))),
            workload: workload.to_string(),
            config: config.to_string(),
            iops,
            p50_us,
            p99_us,
            mean_us,
            ios,
            cpu_us_per_io,
        });
    }
    if runs.is_empty() {
        fail("runs.txt lists no run");
    }
    (runs, workloads, configs)
}

/// Presence: one empty dm-remap device and one dm-linear device with 0-4 other dm-remap
/// devices present (one run each: under icount a run repeats to ~0.1%). From presence.txt
/// ("others configuration name" per line), if there is one: (others, dm-remap IOPS,
/// dm-linear IOPS) for every count that has both.
fn read_presence(dir: &Path) -> Vec<(u32, f64, f64)> {
    let Ok(text) = std::fs::read_to_string(dir.join("presence.txt")) else {
        return Vec::new();
    };
    let mut by_n: Vec<(u32, Option<f64>, Option<f64>)> = Vec::new();
    for line in text.lines() {
        let [n, c, name] = line.split_whitespace().collect::<Vec<_>>()[..] else {
            fail(&format!("presence.txt: bad line {line:?}"));
        };
        let n: u32 = n
            .parse()
            .unwrap_or_else(|_| fail(&format!("presence.txt: bad line {line:?}")));
        let iops = parse_fio(&dir.join("raw").join(format!("{name}.json"))).0;
        let i = match by_n.iter().position(|e| e.0 == n) {
            Some(i) => i,
            None => {
                by_n.push((n, None, None));
                by_n.len() - 1
            }
        };
        match c {
            "p-remap" => by_n[i].1 = Some(iops),
            "p-linear" => by_n[i].2 = Some(iops),
            _ => fail(&format!("presence.txt: unknown configuration {c}")),
        }
    }
    by_n.into_iter()
        .filter_map(|(n, r, l)| Some((n, r?, l?)))
        .collect()
}

/// The load time target, measured only under icount.
fn load_target(r: &Report) -> Option<Value> {
    r.large_load.filter(|_| r.icount).map(
        |s| json!({"large_load_s": s, "max_s": LARGE_LOAD_MAX_S, "met": s <= LARGE_LOAD_MAX_S}),
    )
}

/// DIR/results.json.
fn write_json(dir: &Path, r: &Report) {
    let mut by_workload = Map::new();
    for (w, sums) in &r.table {
        let mut m = Map::new();
        for s in sums {
            m.insert(
                s.config.clone(),
                json!({
                    "iops_median": s.iops.0, "iops_min": s.iops.1, "iops_max": s.iops.2,
                    "ratio_to_linear_median": s.ratio.map(|r| r.0),
                    "ratio_to_linear_min": s.ratio.map(|r| r.1),
                    "ratio_to_linear_max": s.ratio.map(|r| r.2),
                    "lat_p50_us_median": s.p50_us, "lat_p99_us_median": s.p99_us,
                    "lat_mean_us_median": s.mean_us,
                    "cpu_us_per_io_median": s.cpu_us_per_io,
                    "rounds": s.rounds,
                }),
            );
        }
        by_workload.insert(w.clone(), Value::Object(m));
    }
    let overhead_json: Map<String, Value> = r
        .overhead
        .iter()
        .map(|(w, (m, lo, hi))| {
            (
                w.clone(),
                json!({"ratio_median": m, "ratio_min": lo, "ratio_max": hi}),
            )
        })
        .collect();
    let presence_json: Vec<Value> = r
        .presence
        .iter()
        .map(|(n, r, l)| json!({"others": n, "remap_iops": r, "linear_iops": l, "ratio": r / l}))
        .collect();
    let out = json!({"setup": r.setup, "results": by_workload, "targets": r.targets,
                     "instrumentation_ratio": overhead_json, "presence": presence_json,
                     "large_load_target": load_target(r),
                     "lookup_benchmark": r.lookups.iter().map(LookupRun::json).collect::<Vec<_>>(),
                     "lookup_targets": lookup_targets(&r.lookups, r.icount)});
    let json_path = dir.join("results.json");
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&out).unwrap_or_default() + "\n",
    )
    .unwrap_or_else(|e| fail(&format!("{}: {e}", json_path.display())));
}

/// The text of DIR/results.md.
fn markdown(r: &Report) -> String {
    let mut md = String::new();
    md_setup(&mut md, r);
    md_workloads(&mut md, r);
    md_instrumentation(&mut md, r);
    md_presence(&mut md, r);
    md_lookup(&mut md, r);
    md_targets(&mut md, r);
    md
}

/// The title and how the numbers were measured.
fn md_setup(md: &mut String, r: &Report) {
    let get = |k: &str| r.setup.get(k).and_then(Value::as_str).unwrap_or("?");
    let _ = writeln!(md, "# dm-remap benchmark results\n");
    let (clock, unit) = if r.icount {
        (
            "QEMU TCG with instruction counting (icount): guest time advances 1 ns per guest \
             instruction",
            " (1e9 instructions)",
        )
    } else {
        ("QEMU TCG on wall-clock time", "")
    };
    let _ = writeln!(
        md,
        "Kernel {}, {} vCPUs, {clock}; fio {}; {} rounds of {} s per run. remap-table has {} \
         remapped blocks, one in {} of the blocks fio uses; its table loaded in {} s{unit}.",
        get("kernel"),
        get("cpus"),
        get("fio"),
        get("rounds"),
        get("runtime_s"),
        get("entries"),
        get("stride"),
        get("table_load_s"),
    );
    if let Some(l) = r.large_load {
        let _ = writeln!(
            md,
            "remap-large has {} remapped blocks, one in {}; its table loaded in {l} s{unit}.",
            get("large_entries"),
            get("stride"),
        );
    }
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "Ratio = IOPS / dm-linear IOPS in the same round (median, min-max over rounds). \
         Latency = fio's submission-to-completion latency, median over rounds of each \
         round's p50 and p99. CPU = busy time of the whole VM per I/O (all vCPUs, fio included).{}\n",
        if r.icount {
            " Instructions per I/O = 1e9 / IOPS: every instruction the VM executed during the \
             run (fio's, the kernel's, the target's) per I/O, exact when the vCPU never idles \
             (CPU = 1e6 / IOPS µs). It measures path length, not cache misses."
        } else {
            ""
        }
    );
}

/// One table per workload, a row per configuration.
fn md_workloads(md: &mut String, r: &Report) {
    for (w, sums) in &r.table {
        let _ = writeln!(md, "## {w}\n");
        let _ = writeln!(
            md,
            "| configuration | IOPS (median) | IOPS min-max | instructions/I/O | ratio to dm-linear | p50 µs | p99 µs | CPU µs/I/O |"
        );
        let _ = writeln!(
            md,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for s in sums {
            let ratio = s.ratio.map_or("-".to_string(), |(m, lo, hi)| {
                format!("{m:.4} ({lo:.4}-{hi:.4})")
            });
            let instr = if r.icount && s.iops.0 > 0.0 {
                format!("{:.0}", 1e9 / s.iops.0)
            } else {
                "-".to_string()
            };
            let _ = writeln!(
                md,
                "| {} | {:.0} | {:.0}-{:.0} | {instr} | {} | {} | {} | {} |",
                s.config,
                s.iops.0,
                s.iops.1,
                s.iops.2,
                ratio,
                fmt_opt(Some(s.p50_us), 1),
                fmt_opt(Some(s.p99_us), 1),
                fmt_opt(s.cpu_us_per_io, 2),
            );
        }
        let _ = writeln!(md);
    }
}

/// The instrumentation's cost per workload, if both configurations ran.
fn md_instrumentation(md: &mut String, r: &Report) {
    if r.overhead.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Instrumentation\n");
    let _ = writeln!(
        md,
        "IOPS of {INSTR_ON} (instrumentation on) / IOPS of {INSTR_OFF} (feature argument \
         no_stats) in the same round: 1.0 means no cost.\n"
    );
    let _ = writeln!(md, "| workload | ratio (median) | min-max |");
    let _ = writeln!(md, "| --- | ---: | ---: |");
    for (w, (m, lo, hi)) in &r.overhead {
        let _ = writeln!(md, "| {w} | {m:.3} | {lo:.3}-{hi:.3} |");
    }
    let _ = writeln!(md);
}

/// The presence runs, if any.
fn md_presence(md: &mut String, r: &Report) {
    if r.presence.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Other devices present\n");
    let _ = writeln!(
        md,
        "randread-4k-qd32 on one empty dm-remap device and one dm-linear device, with the \
         benchmark's other devices removed and 0-4 other empty dm-remap devices created \
         (one run each).\n"
    );
    let _ = writeln!(
        md,
        "| other dm-remap devices | dm-remap IOPS | dm-linear IOPS | ratio |"
    );
    let _ = writeln!(md, "| ---: | ---: | ---: | ---: |");
    for (n, r, l) in &r.presence {
        let _ = writeln!(md, "| {n} | {r:.0} | {l:.0} | {:.4} |", r / l);
    }
    let _ = writeln!(md);
}

/// The `lookup_benchmark` runs, if any.
fn md_lookup(md: &mut String, r: &Report) {
    if r.lookups.is_empty() {
        return;
    }
    let unit = if r.icount { "instructions" } else { "ns" };
    let _ = writeln!(md, "## Table lookup (lookup_benchmark)\n");
    let _ = writeln!(
        md,
        "/sys/kernel/dm_remap/lookup_benchmark on a private table: the filter, then the \
         hash index, as `map` routes a one-block read; half the lookups hit an entry, half \
         miss. Per lookup = both halves' time over all lookups; tree walk alone = the maple \
         tree's `mtree_load` (what one-block lookups used before the index) without the \
         filter, for the same blocks. In {unit}.\n"
    );
    let _ = writeln!(
        md,
        "| entries | lookups | per lookup | hit | miss | tree walk alone: hit / miss | per insert |"
    );
    let _ = writeln!(md, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    for l in &r.lookups {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} / {} | {} |",
            l.entries,
            l.lookups,
            l.per_lookup,
            opt(l.hit),
            opt(l.miss),
            opt(l.walk_hit),
            opt(l.walk_miss),
            l.per_insert
        );
    }
    let _ = writeln!(md);
}

/// Every target and whether it was met.
fn md_targets(md: &mut String, r: &Report) {
    let _ = writeln!(md, "## Targets\n");
    let _ = writeln!(
        md,
        "| workload | configuration | relative to | target | measured (median, min-max) | met |"
    );
    let _ = writeln!(md, "| --- | --- | --- | ---: | ---: | --- |");
    for t in &r.targets {
        let _ = writeln!(
            md,
            "| {} | {} | {} | >= {} | {:.3} ({:.3}-{:.3}) | {} |",
            t["workload"].as_str().unwrap_or(""),
            t["config"].as_str().unwrap_or(""),
            t["reference"].as_str().unwrap_or(""),
            t["min_ratio"],
            t["ratio"].as_f64().unwrap_or(f64::NAN),
            t["ratio_min"].as_f64().unwrap_or(f64::NAN),
            t["ratio_max"].as_f64().unwrap_or(f64::NAN),
            if t["met"].as_bool() == Some(true) {
                "yes"
            } else {
                "no"
            },
        );
    }
    if let Some(t) = &load_target(r) {
        let _ = writeln!(
            md,
            "| load of remap-large's table | | | <= {LARGE_LOAD_MAX_S} s (1e9 instructions) | {} s | {} |",
            t["large_load_s"],
            if t["met"].as_bool() == Some(true) { "yes" } else { "no" },
        );
    }
    for t in lookup_targets(&r.lookups, r.icount) {
        let _ = writeln!(
            md,
            "| lookup_benchmark, {} entries | | | <= {} instructions per lookup | {} | {} |",
            t["entries"],
            t["max_instructions"],
            t["instructions"],
            if t["met"].as_bool() == Some(true) {
                "yes"
            } else {
                "no"
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "10000 1000000 259 3512 hit=470 miss=48 walk_hit=327 walk_miss=309";

    #[test]
    fn lookup_line() {
        let r = LookupRun::parse(LINE).expect("parses");
        assert_eq!(
            r,
            LookupRun {
                entries: 10_000,
                lookups: 1_000_000,
                per_lookup: 259,
                per_insert: 3512,
                hit: Some(470),
                miss: Some(48),
                walk_hit: Some(327),
                walk_miss: Some(309),
            }
        );
        // Without the kernel log's costs, the line alone.
        let r = LookupRun::parse("1000 10 5 6").expect("parses");
        assert_eq!((r.per_lookup, r.hit, r.walk_miss), (5, None, None));
        assert_eq!(LookupRun::parse("1000 10 5"), None);
        assert_eq!(LookupRun::parse("x 10 5 6"), None);
    }

    #[test]
    fn lookup_goals() {
        let mut setup = Map::new();
        setup.insert(
            "lookup_benchmark".into(),
            json!([LINE, "100000 1000000 150 3700", "1000000 1000000 200 3952"]),
        );
        let runs = lookup_runs(&setup);
        assert_eq!(runs.len(), 3);
        let t = lookup_targets(&runs, true);
        // 100,000 entries has no goal; 10,000 is missed (259 > 100), 1,000,000 met (= 200).
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0]["entries"].as_u64(), t[0]["met"].as_bool()),
            (Some(10_000), Some(false))
        );
        assert_eq!(
            (t[1]["entries"].as_u64(), t[1]["met"].as_bool()),
            (Some(1_000_000), Some(true))
        );
        // Not judged on wall-clock time, and nothing without runs.
        assert!(lookup_targets(&runs, false).is_empty());
        assert!(lookup_targets(&[], true).is_empty());
        // One run is one value, not a list.
        let mut one = Map::new();
        one.insert("lookup_benchmark".into(), json!(LINE));
        assert_eq!(lookup_runs(&one).len(), 1);
    }
}
