// SPDX-License-Identifier: GPL-2.0

//! `/sys/kernel/dm_remap/lookup_benchmark`: times the remap table's lookup and insert on a
//! private table (issue 15). Writing `<entries> <lookups>` builds a [`RemapTable`] of that
//! many entries with the code a remap uses ([`RemapTable::set`]) and looks blocks up with
//! the code `map::route` uses for a one-block read (the filter, [`RemapTable::filter`],
//! then the table's hash index, [`RemapTable::route`]); reading gives the last run's
//! `entries lookups ns_per_lookup ns_per_insert` (`0 0 0 0` before the first run).
//!
//! What is measured (docs/ABI/sysfs-kernel-dm_remap, docs/performance.md):
//!
//! - the table: a spare region of 4 KiB blocks with room for about `entries` blocks (a
//!   full region: its filter is sized for that many entries, as a device's is), five
//!   metadata copies; no device, no metadata I/O, nothing shared with any device;
//! - keys: `entries` distinct main blocks spread at random over 2^30 blocks (a 4 TiB
//!   device), inserted in a random order as `Remapped` entries, one [`RemapTable::set`]
//!   each, in RCU mode as on the I/O path; `ns_per_insert` is that loop's time per entry;
//! - lookups: `lookups - lookups / 2` blocks drawn at random from the entries (hits) and
//!   `lookups / 2` drawn at random from the blocks without one (misses), generated before
//!   the clock starts; the hits are timed in one loop and the misses in another, and
//!   `ns_per_lookup` is the two times' sum over `lookups`. Every hit must be routed to a
//!   spare block and every miss to the main device, or the run fails with `EIO`;
//! - the kernel log gets one line with the hits' and the misses' costs apart and those of
//!   the maple tree's walk alone (`mtree_load`, [`RemapTable::tree_entry`], no filter, no
//!   routing) for the same blocks, which one-block lookups used before the index.
//!
//! Under QEMU's icount the nanoseconds are guest instructions. One run at a time: a write
//! while one runs fails with `EBUSY`. The write returns when the run is over; everything
//! it allocated is freed by then. Nothing here touches a device's table or lock.

use crate::clock::now_ns;
use crate::kobject::ShowBuf;
use crate::logic::alloc::bitmap_words;
use crate::logic::args::parse_u64;
use crate::logic::filter::FilterShape;
use crate::logic::layout::{SpareLayout, DEFAULT_METADATA_COPIES};
use crate::logic::rng::Rng;
use crate::logic::route::{Access, Destination, Entry, Route};
use crate::pages::available_bytes;
use crate::random::random_bytes;
use crate::table::{Filtered, RemapTable};
use kernel::alloc::KVVec;
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Full, Release};

/// Most entries a run builds: 2^24. The largest filter (4 MiB) is filled with ones past
/// that many keys (`FilterShape::saturates_after`); the tree then takes about 850 MiB
/// (about 50 bytes per entry).
pub(crate) const MAX_ENTRIES: u64 = 1 << 24;
/// Most lookups a run makes: 2^24 (their blocks take 4 bytes each, 64 MiB).
pub(crate) const MAX_LOOKUPS: u64 = 1 << 24;
/// Bytes of memory an entry is allowed for in the check before a run ([`fits`]): the tree
/// took 48 MiB for 1,000,000 entries (about 50 bytes each), plus its nodes replaced in RCU
/// mode and not yet freed (64); the hash index, 16-byte slots at least a quarter full, up to
/// 64 bytes per entry, and while it is rebuilt the old array beside the new one (at most
/// three quarters full: 22 more).
const BYTES_PER_ENTRY: u64 = 64 + 64 + 22;
/// Block size of the private table (the default of a table line).
const BLOCK_BYTES: u32 = 4096;
/// Sectors per block, and its log2.
const BLOCK_SECTORS: u32 = BLOCK_BYTES / 512;
const BLOCK_SHIFT: u32 = BLOCK_SECTORS.trailing_zeros();
/// Keys are main blocks below 2^30: a 4 TiB device of 4 KiB blocks.
const KEY_BITS: u32 = 30;
const KEY_MASK: u64 = (1 << KEY_BITS) - 1;

/// What `lookup_benchmark` shows: the last run that succeeded.
#[derive(Clone, Copy)]
pub(crate) struct Figures {
    pub(crate) entries: u64,
    pub(crate) lookups: u64,
    pub(crate) ns_per_lookup: u64,
    pub(crate) ns_per_insert: u64,
}

crate::global::global_mutex! {
    /// The last run's figures (all 0 before the first).
    static LAST: Mutex<Figures> = Figures {
        entries: 0,
        lookups: 0,
        ns_per_lookup: 0,
        ns_per_insert: 0,
    };
}

/// Whether a run is going on (a second writer gets `EBUSY`).
static RUNNING: Atomic<bool> = Atomic::new(false);

/// Initialises the last result; called from the module initialiser.
pub(crate) fn init() {
    LAST::init();
}

/// `lookup_benchmark` read: `entries lookups ns_per_lookup ns_per_insert`.
pub(crate) fn show(out: &mut ShowBuf<'_>) -> Result {
    let f = *LAST::lock();
    out.fmt(format_args!(
        "{} {} {} {}\n",
        f.entries, f.lookups, f.ns_per_lookup, f.ns_per_insert
    ));
    Ok(())
}

/// `lookup_benchmark` write: parses `<entries> <lookups>` and runs. Bad input (not two
/// decimal numbers separated by one space, 0, above [`MAX_ENTRIES`] or [`MAX_LOOKUPS`]):
/// `EINVAL`; a run going on: `EBUSY`; no memory, or less than twice what the run needs
/// available ([`fits`]): `ENOMEM`. On any error the previous figures stay.
pub(crate) fn store(input: &[u8]) -> Result {
    let (entries, lookups) = parse(input)?;
    let _running = Running::claim()?;
    let figures = measure(entries, lookups)?;
    *LAST::lock() = figures;
    Ok(())
}

/// Parses `<entries> <lookups>` within the limits.
fn parse(input: &[u8]) -> Result<(u64, u64)> {
    let mut words = input.split(|&c| c == b' ');
    let (Some(e), Some(l), None) = (words.next(), words.next(), words.next()) else {
        return Err(EINVAL);
    };
    let entries = parse_u64(e).map_err(|_| EINVAL)?;
    let lookups = parse_u64(l).map_err(|_| EINVAL)?;
    if !(1..=MAX_ENTRIES).contains(&entries) || !(1..=MAX_LOOKUPS).contains(&lookups) {
        return Err(EINVAL);
    }
    Ok((entries, lookups))
}

/// The claim on [`RUNNING`], released when dropped.
struct Running;

impl Running {
    fn claim() -> Result<Self> {
        RUNNING
            .cmpxchg(false, true, Full)
            .map(|_| Self)
            .map_err(|_| EBUSY)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.store(false, Release);
    }
}

/// Distinct random main blocks: `key(i)` is a bijection of `0..2^30` (odd multiplications
/// and xor-shifts within 30 bits, with random constants), so `key(i)` for `i < entries`
/// are the entries and every `key(j)` for `j >= entries` is a block without one.
struct Keys {
    xor: u64,
    add: u64,
}

impl Keys {
    fn new(seed: u64) -> Self {
        Self {
            xor: seed & KEY_MASK,
            add: (seed >> KEY_BITS) & KEY_MASK,
        }
    }

    #[inline]
    fn key(&self, i: u64) -> u64 {
        let mut x = (i ^ self.xor) & KEY_MASK;
        x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15) & KEY_MASK;
        x ^= x >> 15;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9) & KEY_MASK;
        x ^= x >> 13;
        x.wrapping_add(self.add) & KEY_MASK
    }
}

/// The smallest layout of 4 KiB blocks (default metadata copies) with at least `entries`
/// spare data blocks.
fn layout_for(entries: u64) -> Result<SpareLayout> {
    let mut blocks = entries + entries / 16 + 256;
    loop {
        let layout = SpareLayout::new(
            0,
            blocks << BLOCK_SHIFT,
            BLOCK_BYTES,
            DEFAULT_METADATA_COPIES,
        )
        .map_err(|_| EINVAL)?;
        if layout.data_blocks() >= entries {
            return Ok(layout);
        }
        blocks += blocks / 32 + 64;
    }
}

/// Whether a run of `entries` entries and `lookups` lookups over `layout` needs at most half
/// the memory available. The tree's nodes are allocated with `GFP_NOIO`, which waits for
/// memory instead of failing: a run larger than memory would hang in the allocator (a run of
/// 7,000,000 entries in a 320 MiB VM had not ended after 15 minutes), so it is refused
/// before it starts.
fn fits(entries: u64, lookups: u64, layout: &SpareLayout) -> bool {
    let filter = FilterShape::for_entries(layout.data_blocks()).words() as u64 * 8;
    let bitmap = bitmap_words(layout) as u64 * 8;
    let need = entries
        .saturating_mul(BYTES_PER_ENTRY)
        .saturating_add(lookups * 4)
        .saturating_add(filter + bitmap);
    need <= available_bytes() / 2
}

/// `n` blocks `keys.key(from + below(span))`, as `u32` (keys are below 2^30).
fn draw(keys: &Keys, rng: &mut Rng, n: u64, from: u64, span: u64) -> Result<KVVec<u32>> {
    let len = usize::try_from(n).map_err(|_| EINVAL)?;
    let mut v = KVVec::with_capacity(len, GFP_KERNEL)?;
    for _ in 0..n {
        // Fits: `key` is masked to 30 bits.
        v.push(keys.key(from + rng.below(span)) as u32, GFP_KERNEL)?;
    }
    Ok(v)
}

/// Routes a read of main block `block` as `map::route` does for a one-block read: the
/// filter first ([`RemapTable::filter`]), then, if it may have an entry, the index
/// ([`RemapTable::route`]). (`map` enters its SRCU read section between the two.)
#[inline]
fn lookup(table: &RemapTable, block: u64) -> Route {
    let filtered = table.filter(block << BLOCK_SHIFT, BLOCK_SECTORS, BLOCK_SHIFT);
    if let Filtered::Clear = filtered {
        return Route {
            dest: Destination::Main,
            sectors: BLOCK_SECTORS,
        };
    }
    table.route(
        filtered,
        block << BLOCK_SHIFT,
        BLOCK_SECTORS,
        BLOCK_SHIFT,
        Access::Read,
    )
}

/// Looks up every block of `blocks` ([`lookup`]); returns the nanoseconds it took and how
/// many were routed to a spare block.
#[inline(never)]
fn time_lookups(table: &RemapTable, blocks: &[u32]) -> (u64, u64) {
    let mut spare = 0u64;
    let t0 = now_ns();
    for &b in blocks {
        let r = lookup(table, u64::from(b));
        spare += u64::from(matches!(r.dest, Destination::Spare { .. }));
    }
    (now_ns().saturating_sub(t0), spare)
}

/// The maple tree's walk alone for every block of `blocks` (no filter, no routing): the
/// nanoseconds it took and how many had an entry.
#[inline(never)]
fn time_walks(table: &RemapTable, blocks: &[u32]) -> (u64, u64) {
    let mut found = 0u64;
    let t0 = now_ns();
    for &b in blocks {
        found += u64::from(table.tree_entry(u64::from(b)).is_some());
    }
    (now_ns().saturating_sub(t0), found)
}

/// Builds the table and times it (see the module documentation). Everything is freed when
/// it returns.
fn measure(entries: u64, lookups: u64) -> Result<Figures> {
    let mut seed = [0u8; 16];
    random_bytes(&mut seed);
    let [a, b] = [&seed[..8], &seed[8..]].map(|s| {
        let mut w = [0u8; 8];
        w.copy_from_slice(s);
        u64::from_ne_bytes(w)
    });
    let layout = layout_for(entries)?;
    if !fits(entries, lookups, &layout) {
        return Err(ENOMEM);
    }
    let keys = Keys::new(a);
    let mut rng = Rng::new(b);
    let hits = lookups - lookups / 2;
    let misses = lookups / 2;
    let hit_blocks = draw(&keys, &mut rng, hits, 0, entries)?;
    let miss_blocks = draw(&keys, &mut rng, misses, entries, (1 << KEY_BITS) - entries)?;

    let table = RemapTable::new(layout, BLOCK_BYTES)?;
    let insert_ns = {
        // The private table's own writer lock. The keys are computed in the loop: a dozen
        // instructions beside an insert's thousands.
        let mut w = table.writer();
        let t0 = now_ns();
        for i in 0..entries {
            table.set(&mut w, keys.key(i), Some(Entry::Remapped(i)))?;
        }
        now_ns().saturating_sub(t0)
    };
    let (hit_ns, routed) = time_lookups(&table, &hit_blocks);
    let (miss_ns, misrouted) = time_lookups(&table, &miss_blocks);
    let (walk_hit_ns, walk_found) = time_walks(&table, &hit_blocks);
    let (walk_miss_ns, walk_wrong) = time_walks(&table, &miss_blocks);
    if routed != hits || misrouted != 0 || walk_found != hits || walk_wrong != 0 {
        pr_err!(
            "lookup_benchmark: wrong answers: {routed} and {walk_found} of {hits} hits found, {misrouted} and {walk_wrong} of {misses} misses\n"
        );
        return Err(EIO);
    }
    let per = |ns: u64, n: u64| ns.checked_div(n).unwrap_or(0);
    let f = Figures {
        entries,
        lookups,
        ns_per_lookup: per(hit_ns + miss_ns, lookups),
        ns_per_insert: per(insert_ns, entries),
    };
    pr_info!(
        "lookup_benchmark: {entries} entries, {lookups} lookups ({hits} hits, {misses} misses): {} ns per lookup (hit {}, miss {}; tree walk alone: hit {}, miss {}), {} ns per insert\n",
        f.ns_per_lookup,
        per(hit_ns, hits),
        per(miss_ns, misses),
        per(walk_hit_ns, hits),
        per(walk_miss_ns, misses),
        f.ns_per_insert
    );
    Ok(f)
}
