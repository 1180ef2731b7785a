// SPDX-License-Identifier: GPL-2.0

//! The remap table of one spare region in memory: the maple tree and the hash index
//! read lock-free by `map`, the lookup filter in front of them, the counts, and the writer
//! lock under which every change is made, committed to the metadata (`metadata.rs`,
//! [`RemapTable::commit`]) before it is used. The registry (`registry.rs`) shares one
//! table among the targets that use its region. The first constructor that finds the table
//! not loaded loads it ([`RemapTable::load`]).

use crate::clock::now_ns;
use crate::dm::{BlockBuffer, DmDev, DmIo, NoIo};
use crate::group::Group;
use crate::index::{Index, IndexCounts};
use crate::logic::alloc::{bitmap_words, SpareAllocator};
use crate::logic::filter::{hash, FilterShape, MAX_SPAN};
use crate::logic::format::{Change, FormatError, Identity, ScanCursor};
use crate::logic::layout::SpareLayout;
use crate::logic::route::{self, Access, Destination, Entry, Lookup, Route};
use crate::maple::ValueTree;
use crate::metadata::{LoadError, Metadata, TableSink, Written};
use crate::scan::Scan;
use crate::srcu::Srcu;
use kernel::alloc::KVVec;
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};
use kernel::sync::lock::{mutex::MutexBackend, Guard};
use kernel::sync::{new_mutex, Arc, Mutex};

/// Event counters; updated only on error and remap paths, so plain shared atomics.
pub(crate) struct Counters {
    pub(crate) read_errors: Atomic<u64>,
    pub(crate) write_errors: Atomic<u64>,
    pub(crate) spare_errors: Atomic<u64>,
    pub(crate) auto_remaps: Atomic<u64>,
    pub(crate) manual_remaps: Atomic<u64>,
    /// Table changes that failed for want of memory (a tree node, or a bigger hash index
    /// when it could not take one more block; `GFP_NOIO`): the only allocations of the I/O
    /// path (the worker's); the bio it was for fails.
    pub(crate) alloc_failures: Atomic<u64>,
}

impl Counters {
    fn new() -> Self {
        Self {
            read_errors: Atomic::new(0),
            write_errors: Atomic::new(0),
            spare_errors: Atomic::new(0),
            auto_remaps: Atomic::new(0),
            manual_remaps: Atomic::new(0),
            alloc_failures: Atomic::new(0),
        }
    }

    pub(crate) fn inc(counter: &Atomic<u64>) {
        counter.add(1, Relaxed);
    }
}

/// A block whose move could neither be committed nor undone on disk: its entry stays
/// `Moving` (reads go to where its data was, writes fail) until a checkpoint succeeds,
/// which records the undone state; then it takes `undo`.
#[derive(Clone, Copy)]
pub(crate) struct Frozen {
    pub(crate) block: u64,
    /// The entry after the undo (`None`: no entry).
    pub(crate) undo: Option<Entry>,
}

/// A block that may have an entry, as the filter said, with its hash for the index.
#[derive(Clone, Copy)]
pub(crate) struct Candidate {
    block: u64,
    hash: u64,
}

/// What the filter says of the blocks of a bio ([`RemapTable::filter`]).
#[derive(Clone, Copy)]
pub(crate) enum Filtered {
    /// None of them has an entry.
    Clear,
    /// One block (`first == last`), which may have one.
    Block(Candidate),
    /// Several blocks, of which some may have one (or too many blocks to ask about).
    Range,
}

/// Table changes are made only with this held; it owns the allocator and the on-disk
/// metadata.
pub(crate) struct Writer {
    pub(crate) alloc: SpareAllocator<KVVec<u64>>,
    /// Retired spare blocks, sorted (for checkpoints). kvmalloc memory: it may grow large
    /// on a failing spare device.
    retired: KVVec<u64>,
    /// The table on the spare device; `None` until loaded.
    meta: Option<Metadata>,
    /// Moves staged by a worker, committed before the lock is released.
    pub(crate) group: Group,
    /// Blocks waiting for a checkpoint to undo their move (see [`Frozen`]).
    frozen: KVec<Frozen>,
    /// One block of data for the worker and the messages (taken while in use).
    pub(crate) buf: Option<BlockBuffer>,
    /// Blocks added to the filter (entries stored for a block that had none).
    filter_keys: u64,
    /// The hash index's counts (see [`Index`]).
    index: IndexCounts,
}

impl Writer {
    /// Whether the table was loaded (a failed load leaves it not loaded).
    pub(crate) fn is_loaded(&self) -> bool {
        self.meta.is_some()
    }

    /// Whether blocks wait for a checkpoint to undo their move (see [`Frozen`]).
    pub(crate) fn has_frozen(&self) -> bool {
        !self.frozen.is_empty()
    }

    /// The background scanner's cursor on disk ([`Metadata::scan`]): that of the state
    /// loaded, then of the last commit of a [`Change::Scan`] that succeeded
    /// ([`RemapTable::commit`]). The default while the table is not loaded.
    pub(crate) fn scan(&self) -> ScanCursor {
        self.meta
            .as_ref()
            .map_or(ScanCursor::default(), Metadata::scan)
    }
}

/// The writer lock held, in a `GFP_NOIO` scope: a holder may wait for I/O to this device
/// (the worker does), so its allocations must not recurse into writeback.
pub(crate) struct WriterGuard<'a> {
    // Declared first: unlocked before the scope ends.
    guard: Guard<'a, Writer, MutexBackend>,
    _noio: NoIo,
    state: &'a RemapTable,
}

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        // What readers (sysfs, status) show of the allocator, published as the lock goes.
        let a = &self.guard.alloc;
        self.state.spare_free.store(a.free(), Relaxed);
        self.state.spare_retired.store(a.retired(), Relaxed);
    }
}

impl core::ops::Deref for WriterGuard<'_> {
    type Target = Writer;

    fn deref(&self) -> &Writer {
        &self.guard
    }
}

impl core::ops::DerefMut for WriterGuard<'_> {
    fn deref_mut(&mut self) -> &mut Writer {
        &mut self.guard
    }
}

/// The remap table of one spare region.
#[pin_data]
pub(crate) struct RemapTable {
    pub(crate) layout: SpareLayout,
    /// main block -> `Entry::to_raw()`; lock-free reads. Range lookups (a bio over several
    /// blocks, the writers' walks in block order).
    #[pin]
    tree: ValueTree,
    /// The same map as a hash index (`logic/index.rs`), for one-block lookups: a hit costs
    /// a hash and a slot or two instead of a walk down the tree. Every change is made to
    /// both, the tree first ([`RemapTable::set`]), before the writer lock is released.
    index: Index,
    /// Bloom filter over the blocks that have or had an entry (`logic/filter.rs`): a lookup
    /// of a block whose bits are not all set needs no index probe or tree walk. Bits are
    /// set (under the writer lock, so a plain load and store cannot lose another writer's
    /// bits) before the entry is stored, and never cleared. A reader in the SRCU section that misses
    /// the bits therefore sees the table as it was before that block's first entry, just
    /// as a tree walk that raced the store would; and one that starts after the writer's
    /// `synchronize_srcu` sees the bits as it would see the entry.
    filter: KVVec<Atomic<u64>>,
    filter_shape: FilterShape,
    /// I/O that a move must wait for holds a read section (see `map.rs`).
    #[pin]
    pub(crate) srcu: Srcu,
    /// Entries of any kind: `map` skips the lookup while this is zero.
    entries: Atomic<u64>,
    remapped: Atomic<u64>,
    failing: Atomic<u64>,
    /// Set when a remap found no free spare block; cleared when one is freed.
    pub(crate) exhausted: Atomic<bool>,
    /// Mirrors of the metadata state for status (read without the writer lock).
    meta_seq: Atomic<u64>,
    meta_copies_valid: Atomic<u32>,
    meta_bytes: Atomic<u64>,
    /// Blocks frozen after a failed commit (see [`Frozen`]).
    frozen: Atomic<u64>,
    /// The allocator's free and retired spare blocks, as of the last writer unlock.
    spare_free: Atomic<u64>,
    spare_retired: Atomic<u64>,
    /// When the last commit or checkpoint succeeded (monotonic ns; 0: never).
    last_commit_ns: Atomic<u64>,
    #[pin]
    writer: Mutex<Writer>,
    pub(crate) counters: Counters,
    /// The background scanner's state (`scan.rs`), kept across table reloads.
    #[pin]
    pub(crate) scan: Scan,
}

impl RemapTable {
    pub(crate) fn new(layout: SpareLayout, block_size: u32) -> Result<Arc<Self>> {
        let _noio = NoIo::enter();
        let words = bitmap_words(&layout);
        let mut bits = KVVec::with_capacity(words, GFP_KERNEL)?;
        bits.resize(words, 0u64, GFP_KERNEL)?;
        let alloc = SpareAllocator::new(bits, layout).ok_or(ENOMEM)?;
        let group = Group::new()?;
        let buf = BlockBuffer::new(block_size as usize)?;
        let (index, index_counts) = Index::new()?;
        // Sized for a table that fills the spare region; failing blocks can add more.
        let filter_shape = FilterShape::for_entries(layout.data_blocks());
        let mut filter = KVVec::with_capacity(filter_shape.words(), GFP_KERNEL)?;
        for _ in 0..filter_shape.words() {
            filter.push(Atomic::new(0), GFP_KERNEL)?;
        }
        Arc::pin_init(
            try_pin_init!(Self {
                layout,
                tree <- ValueTree::new(),
                index,
                filter,
                filter_shape,
                srcu <- Srcu::new(),
                entries: Atomic::new(0),
                remapped: Atomic::new(0),
                failing: Atomic::new(0),
                exhausted: Atomic::new(false),
                meta_seq: Atomic::new(0),
                meta_copies_valid: Atomic::new(0),
                meta_bytes: Atomic::new(0),
                frozen: Atomic::new(0),
                spare_free: Atomic::new(layout.data_blocks()),
                spare_retired: Atomic::new(0),
                last_commit_ns: Atomic::new(0),
                writer <- new_mutex!(Writer {
                    alloc,
                    retired: KVVec::new(),
                    meta: None,
                    group,
                    frozen: KVec::new(),
                    buf: Some(buf),
                    filter_keys: 0,
                    index: index_counts,
                }),
                counters: Counters::new(),
                scan <- Scan::new(block_size),
            }),
            GFP_KERNEL,
        )
    }

    /// Takes the writer lock (see [`WriterGuard`]).
    pub(crate) fn writer(&self) -> WriterGuard<'_> {
        let noio = NoIo::enter();
        WriterGuard {
            guard: self.writer.lock(),
            _noio: noio,
            state: self,
        }
    }

    /// Whether the table has no entry at all (the fast path's check).
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.load(Relaxed) == 0
    }

    /// Blocks remapped to the spare region.
    pub(crate) fn remapped(&self) -> u64 {
        self.remapped.load(Relaxed)
    }

    /// Blocks known to fail reads and not remapped yet.
    pub(crate) fn failing(&self) -> u64 {
        self.failing.load(Relaxed)
    }

    /// The entry of main block `block`: the filter, then the hash index. Lock-free.
    #[inline]
    pub(crate) fn entry(&self, block: u64) -> Option<Entry> {
        self.candidate(block).and_then(|c| self.indexed(c))
    }

    /// `block` with its hash if the filter says it may have an entry (`None`: it has none).
    #[inline(always)]
    fn candidate(&self, block: u64) -> Option<Candidate> {
        let hash = hash(block);
        let (i, mask) = self.filter_shape.probe_hash(hash);
        filter_word_has(&self.filter, i, mask).then_some(Candidate { block, hash })
    }

    /// The entry of a block the filter let through, from the index.
    #[inline(always)]
    fn indexed(&self, c: Candidate) -> Option<Entry> {
        self.index.get(c.hash, c.block).map(Entry::from_raw)
    }

    /// The entry of main block `block` as the tree has it (for `lookup_benchmark`'s
    /// comparison of the two). Lock-free.
    pub(crate) fn tree_entry(&self, block: u64) -> Option<Entry> {
        self.tree.get(block).map(Entry::from_raw)
    }

    /// What the filter says of the blocks of target-relative sectors `sector..sector +
    /// sectors` (`sectors > 0`; blocks of `1 << block_shift` sectors): whether none of
    /// them has an entry ([`Filtered::Clear`] is never wrong), and for one block its hash,
    /// which [`Self::route`] then gives the index. Lock-free. Like [`Self::none_in`], asked
    /// in the SRCU read section unless a [`Filtered::Clear`] read goes to the main device.
    #[inline(always)]
    pub(crate) fn filter(&self, sector: u64, sectors: u32, block_shift: u32) -> Filtered {
        // An empty table first, before any arithmetic: the path of a healthy disk.
        if self.is_empty() {
            return Filtered::Clear;
        }
        let first = sector >> block_shift;
        let last = (sector + u64::from(sectors) - 1) >> block_shift;
        if first == last {
            return self
                .candidate(first)
                .map_or(Filtered::Clear, Filtered::Block);
        }
        if self.none_in(first, last) {
            Filtered::Clear
        } else {
            Filtered::Range
        }
    }

    /// Routes the front of a bio over target-relative sectors `sector..sector + sectors`
    /// (blocks of `1 << block_shift` sectors) by the table (`logic::route`) and `filtered`,
    /// what [`Self::filter`] said of its blocks: one block is looked up in the index,
    /// several in the tree. Lock-free; made in the SRCU read section (`map.rs`).
    #[inline(always)]
    pub(crate) fn route(
        &self,
        filtered: Filtered,
        sector: u64,
        sectors: u32,
        block_shift: u32,
        access: Access,
    ) -> Route {
        match filtered {
            Filtered::Clear => Route {
                dest: Destination::Main,
                sectors,
            },
            Filtered::Block(c) => self.route_block(c, sector, sectors, block_shift, access),
            Filtered::Range => route::route(sector, sectors, block_shift, access, self),
        }
    }

    /// [`Self::route`] for one block. Inlined: a call here costs a hit more than the probe
    /// itself (186 instructions per hit instead of 121 in `lookup_benchmark`), and keeping
    /// it out of `map` did not shorten the path of an empty table either (icount A/B).
    #[inline(always)]
    fn route_block(
        &self,
        c: Candidate,
        sector: u64,
        sectors: u32,
        block_shift: u32,
        access: Access,
    ) -> Route {
        debug_assert_eq!(c.block, sector >> block_shift);
        route::route_block(
            sector,
            sectors,
            block_shift,
            access,
            c.block,
            self.indexed(c),
        )
    }

    /// Whether no block in `first..=last` has an entry. `false` may be wrong (a false
    /// positive of the filter, or a range longer than `MAX_SPAN` blocks); `true` is not.
    /// Lock-free. Callers check [`Self::is_empty`] first, which is cheaper. Like any
    /// lookup, one whose bio may go to the spare device or is a write must be made in the
    /// SRCU read section (see `filter`); a read that the answer sends to the main device
    /// needs none (`map::route`).
    #[inline]
    pub(crate) fn none_in(&self, first: u64, last: u64) -> bool {
        if first > last || last - first >= MAX_SPAN {
            return false;
        }
        // A loop rather than `(first..=last).any()`: an inclusive range's iterator costs
        // more on this path than the probes. The shape and the words' slice are copied
        // first: the atomic load is a call, after which fields would be loaded again.
        let (shape, words) = (self.filter_shape, &self.filter[..]);
        let mut block = first;
        loop {
            if filter_may_have(shape, words, block) {
                return false;
            }
            if block == last {
                return true;
            }
            block += 1;
        }
    }

    /// Sets `block`'s filter bits; `w` proves the writer lock is held (see `filter`).
    /// `new`: the block had no entry (only those are counted; the bits are set whatever
    /// `new` says, so a wrong `old` in the caller cannot hide an entry). Past
    /// [`FilterShape::saturates_after`] new blocks, sets every bit instead: still only
    /// setting bits, so concurrent readers stay right.
    fn filter_add(&self, w: &mut Writer, block: u64, new: bool) {
        w.filter_keys += u64::from(new);
        if w.filter_keys > self.filter_shape.saturates_after() {
            if new && w.filter_keys == self.filter_shape.saturates_after() + 1 {
                pr_info!("remap: lookup filter full, every lookup walks the table now\n");
                for word in self.filter.iter() {
                    word.store(u64::MAX, Relaxed);
                }
            }
            return;
        }
        let (i, mask) = self.filter_shape.probe(block);
        if let Some(word) = self.filter.get(i) {
            word.store(word.load(Relaxed) | mask, Relaxed);
        }
    }

    /// Sets (or with `None` removes) the entry of `block`. `w` proves the writer lock
    /// is held, which keeps the counts, the tree and the index consistent.
    pub(crate) fn set(&self, w: &mut Writer, block: u64, new: Option<Entry>) -> Result {
        self.replace(w, block, self.entry(block), new)
    }

    /// [`Self::set`] for a caller that knows the entry `block` has now (`old`): one tree
    /// walk instead of two.
    fn replace(
        &self,
        w: &mut Writer,
        block: u64,
        old: Option<Entry>,
        new: Option<Entry>,
    ) -> Result {
        let h = hash(block);
        let count_enomem = |e: &Error| {
            if *e == ENOMEM {
                Counters::inc(&self.counters.alloc_failures);
            }
        };
        match new {
            Some(e) => {
                // Before the entry can be seen (see `filter`).
                self.filter_add(w, block, old.is_none());
                // The two allocations that may fail come before the first change readers
                // can see: a failure leaves the entry as it was in both maps. The index
                // slot, found first, is written last and cannot fail then.
                let slot = self
                    .index
                    .reserve(&mut w.index, h, block)
                    .inspect_err(count_enomem)?;
                self.tree
                    .insert(block, e.to_raw())
                    .inspect_err(count_enomem)?;
                self.index.store(&mut w.index, slot, e.to_raw());
            }
            None => {
                self.tree.remove(block);
                // In RCU mode an erase copies a node; `mtree_erase` does not say when it
                // had no memory for it. The entry then stays in both maps.
                if old.is_some() && self.tree.get(block).is_some() {
                    let e = ENOMEM;
                    count_enomem(&e);
                    return Err(e);
                }
                self.index.remove(&mut w.index, h, block);
            }
        }
        Self::adjust(&self.entries, old.is_some(), new.is_some());
        let remapped = |e: Option<Entry>| matches!(e, Some(Entry::Remapped(_)));
        Self::adjust(&self.remapped, remapped(old), remapped(new));
        let failing = |e: Option<Entry>| e == Some(Entry::Failing);
        Self::adjust(&self.failing, failing(old), failing(new));
        Ok(())
    }

    /// Retires spare block `spare` in the allocator and the retired list (the list says
    /// which blocks are retired; the allocator only that they are taken). Retiring a
    /// retired block changes nothing.
    pub(crate) fn retire(&self, w: &mut Writer, spare: u64) -> Result {
        let Err(i) = w.retired.binary_search(&spare) else {
            return Ok(());
        };
        w.retired.reserve(1, GFP_KERNEL)?;
        w.alloc.retire(spare).map_err(|_| EINVAL)?;
        w.retired
            .insert_within_capacity(i, spare)
            .map_err(|_| ENOMEM)
    }

    /// Whether spare block `spare` is retired.
    fn is_retired(w: &Writer, spare: u64) -> bool {
        w.retired.binary_search(&spare).is_ok()
    }

    /// Forgets the whole table in memory (before loading it again).
    fn reset(&self, w: &mut Writer) {
        while let Some((b, _)) = self.first_in(0, u64::MAX - 1) {
            if self.set(w, b, None).is_err() {
                // Only for want of memory (`set`): the next load starts with what is left.
                pr_err!("remap: table reset left entries for want of memory\n");
                break;
            }
        }
        w.alloc.reset();
        w.retired.clear();
        w.frozen.clear();
        self.frozen.store(0, Relaxed);
        self.exhausted.store(false, Relaxed);
    }
}

/// What a constructor asks [`RemapTable::load`] for.
pub(crate) struct LoadRequest {
    /// What the table line and the devices say the metadata must describe.
    pub(crate) identity: Identity,
    /// Metadata I/O unit for a new format (the spare device's logical block size).
    pub(crate) io_unit: u32,
    /// Overwrite whatever the region holds (feature argument `format`).
    pub(crate) format: bool,
    /// Main blocks of the target.
    pub(crate) blocks: u64,
}

/// Applies a table being loaded to the state ([`RemapTable::load`]).
struct Loader<'a> {
    state: &'a RemapTable,
    w: &'a mut Writer,
    /// Main blocks of the target: entries beyond are refused.
    blocks: u64,
    /// No block from here up has an entry: a checkpoint lists its remaps in ascending
    /// order, so it is loaded without looking up what each block had (a table walk each,
    /// 17% of a load's instructions at 1,000,000 entries).
    free_from: u64,
}

impl TableSink for Loader<'_> {
    fn reset(&mut self) {
        self.state.reset(self.w);
        self.free_from = 0;
    }

    fn apply(&mut self, c: Change) -> Result<(), FormatError> {
        let (state, w, free_from) = (self.state, &mut *self.w, self.free_from);
        // What a block has in the table being loaded.
        let entry = |block: u64| {
            if block >= free_from {
                None
            } else {
                state.entry(block)
            }
        };
        match c {
            Change::Remap { main, spare } => {
                if main >= self.blocks {
                    return Err(FormatError::Entries);
                }
                let had = entry(main);
                if let Some(Entry::Remapped(old)) = had {
                    w.alloc.release(old).map_err(|_| FormatError::Entries)?;
                }
                w.alloc.mark_used(spare).map_err(|_| FormatError::Entries)?;
                state
                    .replace(w, main, had, Some(Entry::Remapped(spare)))
                    .map_err(|_| FormatError::Space)?;
                self.free_from = self.free_from.max(main + 1);
                Ok(())
            }
            Change::Unmap { main } => {
                let had = entry(main);
                if let Some(Entry::Remapped(old)) = had {
                    w.alloc.release(old).map_err(|_| FormatError::Entries)?;
                    state
                        .replace(w, main, had, None)
                        .map_err(|_| FormatError::Space)?;
                }
                Ok(())
            }
            // A block that still holds a remapped block cannot be retired.
            Change::Retire { spare } => {
                if !RemapTable::is_retired(w, spare) && w.alloc.is_taken(spare) {
                    return Err(FormatError::Entries);
                }
                state.retire(w, spare).map_err(|_| FormatError::Entries)
            }
            // Not part of the table: `Metadata` keeps the cursor of the copy it loads.
            Change::Scan(_) => Ok(()),
        }
    }
}

/// The table as a checkpoint must record it once `changes` are committed: remaps in
/// block order, then retired spare blocks in order. Entries of blocks being moved take
/// the location `changes` gives them, or else stay where their data is (`Moving(from)`);
/// spare blocks `changes` retire join the retired ones. Scanner cursors in `changes` are
/// not part of the table (the checkpoint's superblock records the last one).
struct NewState<'a> {
    state: &'a RemapTable,
    changes: &'a [Change],
    retired: &'a [u64],
    /// Next main block to look at; `None` once the remaps are done.
    next: Option<u64>,
    /// Next position in `retired`, and the last retired block produced.
    ri: usize,
    last_retired: Option<u64>,
}

impl<'a> NewState<'a> {
    fn new(state: &'a RemapTable, retired: &'a [u64], changes: &'a [Change]) -> Self {
        Self {
            state,
            changes,
            retired,
            next: Some(0),
            ri: 0,
            last_retired: None,
        }
    }

    /// Where `changes` put main block `block`, if they touch it: `Some(None)` for main.
    fn pending(&self, block: u64) -> Option<Option<u64>> {
        self.changes.iter().rev().find_map(|c| match *c {
            Change::Remap { main, spare } if main == block => Some(Some(spare)),
            Change::Unmap { main } if main == block => Some(None),
            _ => None,
        })
    }

    /// The smallest spare block `changes` retire that is above `after`.
    fn pending_retired_after(&self, after: Option<u64>) -> Option<u64> {
        self.changes
            .iter()
            .filter_map(|c| match *c {
                Change::Retire { spare } if after.is_none_or(|a| spare > a) => Some(spare),
                _ => None,
            })
            .min()
    }
}

impl Iterator for NewState<'_> {
    type Item = Change;

    fn next(&mut self) -> Option<Change> {
        while let Some(from) = self.next {
            let Some((b, e)) = self.state.first_in(from, u64::MAX - 1) else {
                self.next = None;
                break;
            };
            self.next = b.checked_add(1);
            let location = match e {
                Entry::Remapped(s) => Some(s),
                Entry::Failing => None,
                Entry::Moving(from) => self.pending(b).unwrap_or(from),
            };
            if let Some(spare) = location {
                return Some(Change::Remap { main: b, spare });
            }
        }
        while self
            .retired
            .get(self.ri)
            .is_some_and(|&r| self.last_retired.is_some_and(|l| r <= l))
        {
            self.ri += 1;
        }
        let listed = self.retired.get(self.ri).copied();
        let pending = self.pending_retired_after(self.last_retired);
        let spare = match (listed, pending) {
            (Some(a), Some(p)) => a.min(p),
            (a, p) => a.or(p)?,
        };
        self.last_retired = Some(spare);
        Some(Change::Retire { spare })
    }
}

impl RemapTable {
    /// Loads the table from the spare region (`format`: formats it instead; a blank
    /// region is formatted too) into this state, and rewrites the copies when they
    /// differ. Called with the writer lock held by the first constructor that finds the
    /// table not loaded; on failure the state stays empty and not loaded.
    pub(crate) fn load(
        &self,
        w: &mut Writer,
        spare: &DmDev,
        io: &DmIo,
        req: &LoadRequest,
    ) -> Result<(), LoadError> {
        // The tree is filled without RCU mode (appends go in place instead of copying the
        // leaf: 0.27e9 of the 4.5e9 instructions of a 1,000,000-entry load). Nothing
        // reads it lock-free meanwhile: a table that is not loaded (`meta` is `None`) is
        // used by no constructed target, since the constructor that loads it has not
        // finished and a table reload finds the state loaded; the device's sysfs files
        // appear after its constructor succeeds; and a constructor sharing the state waits
        // for the writer lock held here.
        let exclusive = if w.meta.is_none() {
            // The one `unsafe` outside `rust/` (see `src/dm_remap.rs`): the argument is a
            // protocol of this module's, which no type of `rust/` can check.
            #[allow(unsafe_code)]
            // SAFETY: As just said, no lock-free reader runs until `exclusive` is dropped,
            // which happens before this function returns.
            let guard = unsafe { self.tree.exclusive() };
            Some(guard)
        } else {
            None
        };
        let mut loader = Loader {
            state: self,
            w: &mut *w,
            blocks: req.blocks,
            free_from: 0,
        };
        loader.reset();
        let r = Metadata::load(
            spare,
            io,
            self.layout,
            req.identity,
            req.io_unit,
            req.format,
            &mut loader,
        );
        drop(exclusive);
        let meta = match r {
            Ok((meta, _formatted)) => meta,
            Err(e) => {
                self.reset(w);
                return Err(e);
            }
        };
        let repair = meta.needs_checkpoint();
        self.scan.restore(meta.scan());
        w.meta = Some(meta);
        self.publish(w, false);
        if repair && self.checkpoint(w, spare, io).is_err() {
            w.meta = None;
            self.reset(w);
            return Err(LoadError::Write);
        }
        Ok(())
    }

    /// Makes `changes` durable in the metadata ([`Metadata::commit`]: a journal record, or
    /// a checkpoint of the table with `changes` applied). After an error the changes may or
    /// may not be on disk: the caller must not use them, and must not let anything depend
    /// on them being undone either (see [`Frozen`]).
    ///
    /// The background scanner saves its cursor with `changes = [Change::Scan(cursor)]`
    /// (with the writer lock held, like any commit); [`Writer::scan`] returns it once the
    /// commit succeeded. A failed one leaves nothing to undo: the cursor on disk is the old
    /// one or the new one, and [`Writer::scan`] stays the old one.
    pub(crate) fn commit(
        &self,
        w: &mut Writer,
        spare: &DmDev,
        io: &DmIo,
        changes: &[Change],
    ) -> Result {
        self.write(w, spare, io, changes, true)
    }

    /// Writes the whole table as a checkpoint to every copy (after a load that found the
    /// copies different, a grown target, or to undo frozen moves).
    pub(crate) fn checkpoint(&self, w: &mut Writer, spare: &DmDev, io: &DmIo) -> Result {
        self.write(w, spare, io, &[], false)
    }

    /// The one way the table reaches the metadata. A journal record is allowed only when
    /// `may_append` and no block is frozen (a checkpoint must record those undone); when
    /// a checkpoint was written, frozen moves are undone (it recorded them undone).
    fn write(
        &self,
        w: &mut Writer,
        spare: &DmDev,
        io: &DmIo,
        changes: &[Change],
        may_append: bool,
    ) -> Result {
        let Writer {
            meta,
            retired,
            frozen,
            ..
        } = &mut *w;
        let Some(m) = meta.as_mut() else {
            // Not loaded (a constructor's load failed): nothing can be made durable.
            return Err(EIO);
        };
        let may_append = may_append && frozen.is_empty();
        let r = m.commit(spare, io, changes, may_append, || {
            NewState::new(self, retired, changes)
        });
        if matches!(r, Ok(Written::Checkpoint)) {
            let frozen = core::mem::take(&mut w.frozen);
            for f in frozen.iter() {
                let _ = self.set(w, f.block, f.undo);
            }
            w.frozen = frozen;
            w.frozen.clear();
            self.frozen.store(0, Relaxed);
        }
        self.publish(w, r.is_ok());
        r.map(|_| ())
    }

    /// Leaves `block` frozen (see [`Frozen`]) with `undo` as its entry once undone.
    pub(crate) fn freeze(&self, w: &mut Writer, block: u64, undo: Option<Entry>) {
        if w.frozen.push(Frozen { block, undo }, GFP_KERNEL).is_ok() {
            self.frozen.add(1, Relaxed);
        }
        // Without memory for the record the block stays `Moving` until the table is
        // loaded again: still never wrong, only unwritable.
    }

    /// Records a longer target: a checkpoint with the new identity. Called when a table
    /// with a longer target is resumed.
    pub(crate) fn grow(
        &self,
        w: &mut Writer,
        spare: &DmDev,
        io: &DmIo,
        target_len: u64,
        main_sectors: u64,
    ) -> Result {
        let Some(m) = w.meta.as_mut() else {
            return Err(EIO);
        };
        if m.identity().target_len >= target_len {
            return Ok(());
        }
        let id = Identity {
            target_len,
            main_sectors,
            ..*m.identity()
        };
        m.set_identity(id);
        self.checkpoint(w, spare, io)
    }

    /// The target length the metadata describes, once loaded.
    pub(crate) fn metadata_target_len(&self, w: &Writer) -> Option<u64> {
        w.meta.as_ref().map(|m| m.identity().target_len)
    }

    /// Copies the metadata state into the status atomics; `committed`: a commit or
    /// checkpoint just succeeded.
    pub(crate) fn publish(&self, w: &Writer, committed: bool) {
        if let Some(m) = &w.meta {
            self.meta_seq.store(m.seq(), Relaxed);
            self.meta_copies_valid.store(m.copies_valid(), Relaxed);
            self.meta_bytes.store(m.bytes_written(), Relaxed);
            if committed {
                self.last_commit_ns.store(now_ns().max(1), Relaxed);
            }
        }
    }

    /// Nanoseconds since the last successful commit or checkpoint; `None` if there was
    /// none since the table was loaded.
    pub(crate) fn last_commit_age_ns(&self) -> Option<u64> {
        match self.last_commit_ns.load(Relaxed) {
            0 => None,
            t => Some(now_ns().saturating_sub(t)),
        }
    }

    /// Counts one more or one fewer when a property went from `was` to `now`.
    fn adjust(counter: &Atomic<u64>, was: bool, now: bool) {
        match (was, now) {
            (false, true) => counter.add(1, Relaxed),
            // Adding 2^64 - 1 wraps to subtracting one.
            (true, false) => counter.add(u64::MAX, Relaxed),
            _ => {}
        }
    }
}

/// What readers outside the I/O path (sysfs) may see of a table: counts and mirrors read
/// without any lock. It cannot reach the writer lock, so a `cat` never waits behind a
/// worker batch that holds it across metadata I/O.
#[derive(Clone)]
pub(crate) struct TableView(Arc<RemapTable>);

impl TableView {
    /// A view of `table`.
    pub(crate) fn new(table: Arc<RemapTable>) -> Self {
        Self(table)
    }

    /// Blocks remapped to the spare region.
    pub(crate) fn remapped(&self) -> u64 {
        self.0.remapped()
    }

    /// The background scanner's state and settings.
    pub(crate) fn scan(&self) -> &Scan {
        &self.0.scan
    }

    /// Blocks known to fail reads and not remapped yet.
    pub(crate) fn failing(&self) -> u64 {
        self.0.failing()
    }

    /// Spare blocks for data.
    pub(crate) fn data_blocks(&self) -> u64 {
        self.0.layout.data_blocks()
    }

    /// Free spare blocks, as of the last writer unlock.
    pub(crate) fn spare_free(&self) -> u64 {
        self.0.spare_free.load(Relaxed)
    }

    /// Retired spare blocks, as of the last writer unlock.
    pub(crate) fn spare_retired(&self) -> u64 {
        self.0.spare_retired.load(Relaxed)
    }

    /// Whether a remap found no free spare block (and none was freed since).
    pub(crate) fn exhausted(&self) -> bool {
        self.0.exhausted.load(Relaxed)
    }

    /// The table's event counters.
    pub(crate) fn counters(&self) -> &Counters {
        &self.0.counters
    }

    /// Blocks frozen after a failed commit.
    pub(crate) fn frozen(&self) -> u64 {
        self.0.frozen.load(Relaxed)
    }

    /// Metadata copies.
    pub(crate) fn copies(&self) -> u32 {
        self.0.layout.copies()
    }

    /// Metadata copies holding the current state, as of the last commit.
    pub(crate) fn copies_valid(&self) -> u32 {
        self.0.meta_copies_valid.load(Relaxed)
    }

    /// The metadata's sequence number, as of the last commit.
    pub(crate) fn seq(&self) -> u64 {
        self.0.meta_seq.load(Relaxed)
    }

    /// Bytes of metadata written since the table was loaded.
    pub(crate) fn bytes_written(&self) -> u64 {
        self.0.meta_bytes.load(Relaxed)
    }

    /// See [`RemapTable::last_commit_age_ns`].
    pub(crate) fn last_commit_age_ns(&self) -> Option<u64> {
        self.0.last_commit_age_ns()
    }
}

/// Whether the filter `words` of shape `shape` say `block` may have an entry (all its bits
/// set); `false` means it has none.
#[inline]
fn filter_may_have(shape: FilterShape, words: &[Atomic<u64>], block: u64) -> bool {
    let (i, mask) = shape.probe(block);
    filter_word_has(words, i, mask)
}

/// Whether word `i` of the filter `words` has every bit of `mask` set.
#[inline]
fn filter_word_has(words: &[Atomic<u64>], i: usize, mask: u64) -> bool {
    words
        .get(i)
        .is_none_or(|word| word.load(Relaxed) & mask == mask)
}

impl Lookup for RemapTable {
    fn first_in(&self, from: u64, last: u64) -> Option<(u64, Entry)> {
        if from == last {
            // One block: the filter and the index.
            return self.entry(from).map(|e| (from, e));
        }
        // No filter for ranges here: `map` asks it before routing (`map.rs`), and the
        // worker's lookups are few.
        self.tree
            .first_in(from, last)
            .map(|(b, raw)| (b, Entry::from_raw(raw)))
    }
}
