// SPDX-License-Identifier: GPL-2.0

//! Native benchmarks of the pure-logic code (`cargo bench -p dm-remap-logic`); see
//! docs/performance.md.
//!
//! Routing: `route::route` decides where the front of a bio goes from the remap table
//! through the `Lookup` trait. In the kernel that trait is the maple tree (RCU mode), which
//! does not exist in userspace, so the lookups here go through two stand-ins: a sorted
//! array with binary search and `std`'s `BTreeMap` (a B-tree, like the maple tree). What is
//! measured is the routing logic plus an ordered-index lookup at 10k, 100k and 1M entries,
//! for random blocks (cold caches at 1M: the table is 16 MiB) and for 16 blocks over and
//! over (`hit_cache_hot`); the maple tree's own cost shows in the VM benchmark
//! (scripts/bench).
//!
//! Metadata: encoding and decoding one journal record, CRC32C of a 4 KiB block (the
//! software table used by the tool; the kernel uses its own `crc32c`), and encoding a
//! 1,000,000-entry checkpoint.
//!
//! Histogram: recording one latency sample, and computing a percentile.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use dm_remap_logic::format::{self, crc32c_sw, crc32c_update_sw, Change};
use dm_remap_logic::route::{self, Access, Entry, Lookup};
use dm_remap_logic::SortedTable;
use std::collections::BTreeMap;
use std::ops::Bound;

struct Tree(BTreeMap<u64, u64>);

impl Lookup for Tree {
    fn first_in(&self, from: u64, last: u64) -> Option<(u64, Entry)> {
        self.0
            .range((Bound::Included(from), Bound::Included(last)))
            .next()
            .map(|(&b, &raw)| (b, Entry::from_raw(raw)))
    }
}

/// 8 sectors (4 KiB) per block.
const SHIFT: u32 = 3;
/// One block in `STRIDE` is remapped, as in the VM benchmark (1%).
const STRIDE: u64 = 100;

/// A cheap deterministic sequence of block numbers in `0..n` (xorshift).
fn blocks(n: u64, count: usize) -> Vec<u64> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        })
        .collect()
}

fn bench_route(c: &mut Criterion) {
    for entries in [10_000u64, 100_000, 1_000_000] {
        let pairs: Vec<(u64, u64)> = (0..entries)
            .map(|i| (i * STRIDE, Entry::Remapped(i).to_raw()))
            .collect();
        let sorted = SortedTable(&pairs);
        let tree = Tree(pairs.iter().copied().collect());
        // Hits: 4 KiB reads of remapped blocks; misses: of the blocks just after them;
        // spans: 128 KiB reads whose 17th block is remapped ("first remapped >= b").
        let picks = blocks(entries, 4096);
        let hits: Vec<u64> = picks.iter().map(|i| (i * STRIDE) << SHIFT).collect();
        let misses: Vec<u64> = picks.iter().map(|i| (i * STRIDE + 1) << SHIFT).collect();
        let spans: Vec<u64> = picks
            .iter()
            .filter(|&&i| i > 0)
            .map(|i| (i * STRIDE - 16) << SHIFT)
            .collect();
        // The same, cycling over 16 blocks only: everything the lookups touch stays in the
        // CPU caches, which separates the cost of the code from that of memory latency.
        let hot: Vec<u64> = hits.iter().take(16).copied().collect();
        let mut g = c.benchmark_group(format!("route/{entries}"));
        for (kind, sectors, at) in [
            ("hit", 8u32, &hits),
            ("miss", 8, &misses),
            ("first_at_or_after", 256, &spans),
            ("hit_cache_hot", 8, &hot),
        ] {
            g.bench_function(BenchmarkId::new("sorted", kind), |b| {
                let mut k = 0;
                b.iter(|| {
                    k = (k + 1) % at.len();
                    route::route(black_box(at[k]), sectors, SHIFT, Access::Read, &sorted)
                })
            });
            g.bench_function(BenchmarkId::new("btree", kind), |b| {
                let mut k = 0;
                b.iter(|| {
                    k = (k + 1) % at.len();
                    route::route(black_box(at[k]), sectors, SHIFT, Access::Read, &tree)
                })
            });
        }
        g.finish();
    }
}

fn bench_format(c: &mut Criterion) {
    let uuid = *b"benchmark-uuid!!";
    let changes = [Change::Remap {
        main: 12345,
        spare: 678,
    }];
    let crc = crc32c_update_sw;
    let mut rec = vec![0u8; format::record_len(changes.len(), 512)];
    let mut g = c.benchmark_group("metadata");
    g.bench_function("encode_record_1", |b| {
        b.iter(|| format::encode_record(&mut rec, 7, 3, &uuid, black_box(&changes), crc, 512))
    });
    let _ = format::encode_record(&mut rec, 7, 3, &uuid, &changes, crc, 512);
    g.bench_function("decode_record_1", |b| {
        b.iter(|| {
            format::decode_record(black_box(&rec), 7, 3, &uuid, crc, 512)
                .map(|r| r.changes().count())
        })
    });
    let block = vec![0xA5u8; 4096];
    g.bench_function("crc32c_sw_4k", |b| b.iter(|| crc32c_sw(black_box(&block))));
    let n = 1_000_000u64;
    let mut slot = vec![0u8; (n as usize * format::ENTRY).div_ceil(4096) * 4096];
    g.sample_size(10);
    g.bench_function("encode_checkpoint_1m", |b| {
        b.iter(|| {
            format::encode_checkpoint(
                &mut slot,
                (0..n).map(|i| (i * 2, i)),
                core::iter::empty(),
                n,
                crc,
            )
        })
    });
    g.finish();
}

fn bench_histogram(c: &mut Criterion) {
    use dm_remap_logic::histogram::Histogram;
    let values = blocks(10_000_000, 4096);
    let mut h = Histogram::new();
    let mut g = c.benchmark_group("histogram");
    g.bench_function("record", |b| {
        let mut k = 0;
        b.iter(|| {
            k = (k + 1) % values.len();
            h.record(black_box(values[k]));
        })
    });
    g.bench_function("p99", |b| b.iter(|| black_box(&h).quantile(990)));
    g.finish();
}

criterion_group!(benches, bench_route, bench_format, bench_histogram);
criterion_main!(benches);
