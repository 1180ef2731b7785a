// SPDX-License-Identifier: GPL-2.0

//! `bench-report profile DIR`: where the instructions of each configuration go.
//!
//! Reads what `scripts/bench --profile` leaves in DIR: `profile.raw` (from the
//! `insn_profile` QEMU plugin: per phase, every translation block executed with its
//! instruction count and executions), `fio-order.txt` (the k-th fio run is phase 2k+1: the
//! guest syncs before and after every run), `raw/NAME.json` (the run's I/Os),
//! `System.map` (the kernel's symbols; the test kernel is not relocated) and
//! `modules.kallsyms` (the modules' symbols as loaded). Writes `profile.txt` (instructions
//! per I/O of every function above 0.5, per workload and configuration) and `profile.md`
//! (per workload: the total per configuration, and for every configuration the functions
//! whose cost differs most from dm-linear's).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::{fail, parse_fio, read};

/// Text symbols, sorted by address.
struct Symbols {
    addrs: Vec<u64>,
    names: Vec<String>,
}

impl Symbols {
    fn load(dir: &Path) -> Symbols {
        let mut syms: Vec<(u64, String)> = Vec::new();
        let mut add = |text: &str| {
            for line in text.lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 3 || !matches!(f[1], "T" | "t" | "W" | "w") {
                    continue;
                }
                let Ok(a) = u64::from_str_radix(f[0], 16) else {
                    continue;
                };
                let name = rustc_demangle::demangle(f[2]).to_string();
                // Without the hash suffix Rust names are readable and stable across builds.
                let name = match name.rfind("::h") {
                    Some(i) if name.len() - i == 19 => name[..i].to_string(),
                    _ => name,
                };
                let name = match f.get(3) {
                    Some(m) => format!("{name} {m}"),
                    None => name,
                };
                syms.push((a, name));
            }
        };
        add(&read(&dir.join("System.map")));
        if let Ok(m) = std::fs::read_to_string(dir.join("modules.kallsyms")) {
            add(&m);
        }
        syms.sort();
        Symbols {
            addrs: syms.iter().map(|s| s.0).collect(),
            names: syms.into_iter().map(|s| s.1).collect(),
        }
    }

    /// The function holding `addr` (the nearest symbol at or below it).
    fn index(&self, addr: u64) -> Option<usize> {
        if addr < 0xffff_8000_0000_0000 {
            return None;
        }
        self.addrs.partition_point(|&a| a <= addr).checked_sub(1)
    }

    fn name(&self, i: Option<usize>) -> &str {
        match i {
            None => "[user space]",
            Some(i) => &self.names[i],
        }
    }
}

/// Instructions per function (symbol index; None: user space) in each phase asked for.
fn read_phases(path: &Path, syms: &Symbols, wanted: &HashMap<usize, usize>) -> Vec<Counts> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
    let mut out: Vec<Counts> = vec![HashMap::new(); wanted.len()];
    let mut cur: Option<usize> = None;
    // Symbol lookups are cached per block address: blocks repeat in every phase.
    let mut cache: HashMap<u64, Option<usize>> = HashMap::new();
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("phase ") {
            let n: usize = n
                .trim()
                .parse()
                .unwrap_or_else(|_| fail(&format!("profile.raw: bad line {line:?}")));
            cur = wanted.get(&n).copied();
            continue;
        }
        let Some(slot) = cur else { continue };
        let mut f = line.split_whitespace();
        let (Some(a), Some(n), Some(c)) = (f.next(), f.next(), f.next()) else {
            fail(&format!("profile.raw: bad line {line:?}"));
        };
        let (Ok(a), Ok(n), Ok(c)) = (
            u64::from_str_radix(a, 16),
            n.parse::<u64>(),
            c.parse::<u64>(),
        ) else {
            fail(&format!("profile.raw: bad line {line:?}"));
        };
        let sym = *cache.entry(a).or_insert_with(|| syms.index(a));
        *out[slot].entry(sym).or_default() += n * c;
    }
    out
}

/// Instructions per function (symbol index; None: user space).
type Counts = HashMap<Option<usize>, u64>;

/// Per function instructions per I/O of one group of runs.
struct Cost {
    per_io: HashMap<Option<usize>, f64>,
    total: f64,
    ios: u64,
}

/// A workload and a configuration.
type Group = (String, String);

pub fn main(dir: &Path) {
    let syms = Symbols::load(dir);
    let order: Vec<String> = read(&dir.join("fio-order.txt"))
        .lines()
        .map(str::to_string)
        .collect();
    let group_of = groups_of_runs(dir);
    let wanted: HashMap<usize, usize> = order
        .iter()
        .enumerate()
        .map(|(k, _)| (2 * k + 1, k))
        .collect();
    let phases = read_phases(&dir.join("profile.raw"), &syms, &wanted);
    let (groups, sums) = sum_groups(dir, &order, &group_of, &phases);
    let costs = costs_per_io(sums);

    let mut txt = String::new();
    let mut md = String::new();
    let _ = writeln!(md, "# Where the instructions go\n");
    let _ = writeln!(
        md,
        "Guest instructions per I/O by function, counted by the insn_profile QEMU plugin over \
         each fio run (every round of a configuration summed), fio's own user-space work \
         included. Instruction counts are path length, not time: cache misses, TLB misses \
         and branch mispredictions do not show. `+` = more than dm-linear per I/O.\n"
    );
    let workloads: Vec<String> = groups.iter().fold(Vec::new(), |mut v, (w, _)| {
        if !v.contains(w) {
            v.push(w.clone());
        }
        v
    });
    for w in &workloads {
        let configs: Vec<&String> = groups
            .iter()
            .filter(|(gw, _)| gw == w)
            .map(|(_, c)| c)
            .collect();
        totals(&mut md, &mut txt, w, &configs, &costs, &syms);
        for c in &configs {
            against_reference(&mut md, w, c, &costs, &syms);
        }
    }
    for (name, text) in [("profile.md", md), ("profile.txt", txt)] {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| fail(&format!("{}: {e}", p.display())));
    }
    println!("wrote profile.md and profile.txt in {}", dir.display());
}

/// Run name -> (workload, configuration), from runs.txt and presence.txt.
fn groups_of_runs(dir: &Path) -> HashMap<String, Group> {
    let mut group_of: HashMap<String, Group> = HashMap::new();
    for line in read(&dir.join("runs.txt")).lines() {
        if let [_, w, c, name] = line.split_whitespace().collect::<Vec<_>>()[..] {
            group_of.insert(name.into(), (w.into(), c.into()));
        }
    }
    if let Ok(p) = std::fs::read_to_string(dir.join("presence.txt")) {
        for line in p.lines() {
            if let [n, c, name] = line.split_whitespace().collect::<Vec<_>>()[..] {
                group_of.insert(
                    name.into(),
                    (
                        "randread-4k-qd32 presence".into(),
                        format!("{c} + {n} others"),
                    ),
                );
            }
        }
    }
    group_of
}

/// The instructions per function and the I/Os of every group, summed over its runs (the
/// k-th run in `order` has `phases[k]`); also the groups in the order of their first run.
fn sum_groups(
    dir: &Path,
    order: &[String],
    group_of: &HashMap<String, Group>,
    phases: &[Counts],
) -> (Vec<Group>, HashMap<Group, (Counts, u64)>) {
    let mut groups: Vec<Group> = Vec::new();
    let mut sums: HashMap<Group, (Counts, u64)> = HashMap::new();
    for (k, name) in order.iter().enumerate() {
        let Some(g) = group_of.get(name) else {
            continue;
        };
        let ios = parse_fio(&dir.join("raw").join(format!("{name}.json"))).4;
        if !groups.contains(g) {
            groups.push(g.clone());
        }
        let e = sums.entry(g.clone()).or_default();
        for (s, n) in &phases[k] {
            *e.0.entry(*s).or_default() += n;
        }
        e.1 += ios;
    }
    (groups, sums)
}

/// Instructions per I/O of every group that did I/O.
fn costs_per_io(sums: HashMap<Group, (Counts, u64)>) -> HashMap<Group, Cost> {
    sums.into_iter()
        .filter(|(_, (_, ios))| *ios > 0)
        .map(|(g, (m, ios))| {
            let per_io: HashMap<Option<usize>, f64> = m
                .into_iter()
                .map(|(s, n)| (s, n as f64 / ios as f64))
                .collect();
            let total = per_io.values().sum();
            (g, Cost { per_io, total, ios })
        })
        .collect()
}

/// Workload `w`'s table of totals per configuration in `md`, and every function of 0.5
/// instructions per I/O or more per configuration in `txt`.
fn totals(
    md: &mut String,
    txt: &mut String,
    w: &str,
    configs: &[&String],
    costs: &HashMap<Group, Cost>,
    syms: &Symbols,
) {
    let _ = writeln!(md, "## {w}\n");
    let _ = writeln!(
        md,
        "| configuration | instructions per I/O | of which dm_remap | I/Os |"
    );
    let _ = writeln!(md, "| --- | ---: | ---: | ---: |");
    for c in configs {
        let Some(cost) = costs.get(&(w.to_string(), (*c).clone())) else {
            continue;
        };
        let module: f64 = cost
            .per_io
            .iter()
            .filter(|(s, _)| syms.name(**s).ends_with("[dm_remap]"))
            .map(|(_, v)| v)
            .sum::<f64>()
            // An empty sum is -0.0, which would print as "-0".
            + 0.0;
        let _ = writeln!(
            md,
            "| {c} | {:.0} | {module:.0} | {} |",
            cost.total, cost.ios
        );
        let mut fns: Vec<(&Option<usize>, &f64)> = cost.per_io.iter().collect();
        fns.sort_by(|a, b| b.1.total_cmp(a.1));
        for (s, v) in fns.iter().filter(|(_, v)| **v >= 0.5) {
            let _ = writeln!(txt, "{w}\t{c}\t{v:.1}\t{}", syms.name(**s));
        }
    }
    let _ = writeln!(md);
}

/// Configuration `c` of workload `w` against its reference, dm-linear (in the presence
/// runs, dm-linear with as many others): the total and the 15 functions that differ most.
/// Nothing for a reference itself, or when either did no I/O.
fn against_reference(
    md: &mut String,
    w: &str,
    c: &str,
    costs: &HashMap<Group, Cost>,
    syms: &Symbols,
) {
    let reference = if c.starts_with("p-remap") {
        c.replacen("p-remap", "p-linear", 1)
    } else {
        "linear".to_string()
    };
    if c == reference || c.starts_with("p-linear") {
        return;
    }
    let (Some(a), Some(b)) = (
        costs.get(&(w.to_string(), reference.clone())),
        costs.get(&(w.to_string(), c.to_string())),
    ) else {
        return;
    };
    let mut diff: Vec<(Option<usize>, f64, f64)> = a
        .per_io
        .keys()
        .chain(b.per_io.keys())
        .copied()
        .collect::<std::collections::HashSet<_>>()
        .into_iter()
        .map(|s| {
            let (x, y) = (
                a.per_io.get(&s).copied().unwrap_or(0.0),
                b.per_io.get(&s).copied().unwrap_or(0.0),
            );
            (s, x, y)
        })
        .collect();
    diff.sort_by(|p, q| (q.2 - q.1).abs().total_cmp(&(p.2 - p.1).abs()));
    let _ = writeln!(
        md,
        "**{c}** against {reference}: {:+.0} instructions per I/O ({:.0} against {:.0}); \
         the functions that differ most:\n",
        b.total - a.total,
        b.total,
        a.total
    );
    let _ = writeln!(md, "| function | {reference} | {c} | difference |");
    let _ = writeln!(md, "| --- | ---: | ---: | ---: |");
    for (s, x, y) in diff.iter().take(15) {
        let _ = writeln!(
            md,
            "| `{}` | {x:.1} | {y:.1} | {:+.1} |",
            syms.name(*s),
            y - x
        );
    }
    let _ = writeln!(md);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fio_json(ios: u64) -> String {
        format!(
            r#"{{"jobs":[{{"read":{{"total_ios":{ios},"iops":1000.0,"lat_ns":{{"mean":1000.0,"percentile":{{"50.000000":1000,"99.000000":2000}}}}}},"write":{{"total_ios":0}}}}]}}"#
        )
    }

    /// Two runs, one each of two configurations: blocks are attributed to the kernel
    /// function, the module function and user space they lie in, per I/O, in the phases
    /// the runs occupy (2k+1), and phases outside runs are ignored.
    #[test]
    fn attributes_blocks_to_functions_per_io() {
        let dir = std::env::temp_dir().join(format!("bench-report-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("raw")).unwrap();
        let w = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
        w(
            "System.map",
            "ffffffff81000000 T linear_map\nffffffff81000100 t ktime_get\nffffffff81000200 D data\n",
        );
        w(
            "modules.kallsyms",
            "ffffffffc0000000 t _RNvNtCs1_8dm_remap6target3map [dm_remap]\n",
        );
        w("fio-order.txt", "1-w-linear\n1-w-remap\n");
        w("runs.txt", "1 w linear 1-w-linear\n1 w remap 1-w-remap\n");
        w("raw/1-w-linear.json", &fio_json(10));
        w("raw/1-w-remap.json", &fio_json(20));
        w(
            "profile.raw",
            "phase 0\nffffffff81000000 5 1000\n\
             phase 1\nffffffff81000000 3 10\nffffffff81000104 2 10\n401000 7 10\n\
             phase 2\nffffffff81000000 9 99\n\
             phase 3\nffffffffc0000010 4 20\nffffffff81000100 2 40\n",
        );
        main(&dir);
        let txt = std::fs::read_to_string(dir.join("profile.txt")).unwrap();
        let lines: Vec<&str> = txt.lines().collect();
        assert!(lines.contains(&"w\tlinear\t7.0\t[user space]"), "{txt}");
        assert!(lines.contains(&"w\tlinear\t3.0\tlinear_map"), "{txt}");
        assert!(lines.contains(&"w\tlinear\t2.0\tktime_get"), "{txt}");
        assert!(
            lines.contains(&"w\tremap\t4.0\tdm_remap[3]::target::map [dm_remap]"),
            "{txt}"
        );
        assert!(lines.contains(&"w\tremap\t4.0\tktime_get"), "{txt}");
        assert_eq!(lines.len(), 5, "{txt}");
        let md = std::fs::read_to_string(dir.join("profile.md")).unwrap();
        assert!(md.contains("| linear | 12 | 0 | 10 |"), "{md}");
        assert!(md.contains("| remap | 8 | 4 | 20 |"), "{md}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
