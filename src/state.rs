// SPDX-License-Identifier: GPL-2.0

//! The remap table of one spare region, shared by every table instance that uses it.
//!
//! A table reload constructs the new target while the old one still serves I/O, and the
//! old one may remap blocks until it is suspended. Both must see one table, so the state is
//! keyed by its devices and spare region and kept in a registry (as dm-thin keeps its pool):
//! the constructor takes the existing state or makes one, the destructor drops its
//! reference. Persistence on the spare device comes with the metadata format.

use crate::clock::now_ns;
use crate::dm::{DmIo, IoBuffer};
use crate::logic::alloc::{bitmap_words, SpareAllocator};
use crate::logic::format::{self, Change, FormatError};
use crate::logic::layout::SpareLayout;
use crate::logic::route::{Entry, Lookup};
use crate::maple::ValueTree;
use crate::metadata::Metadata;
use crate::remap::Group;
use crate::srcu::Srcu;
use kernel::alloc::KVVec;
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};
use kernel::sync::{new_mutex, Arc, Mutex};

/// What identifies a spare region and the data it describes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct StateKey {
    pub(crate) main: u32,
    pub(crate) spare: u32,
    pub(crate) spare_start: u64,
    pub(crate) spare_len: u64,
    pub(crate) block_size: u32,
    pub(crate) copies: u32,
}

impl StateKey {
    fn overlaps(&self, other: &StateKey) -> bool {
        self.spare == other.spare
            && self.spare_start < other.spare_start + other.spare_len
            && other.spare_start < self.spare_start + self.spare_len
    }
}

/// Event counters; updated only on error and remap paths, so plain shared atomics.
pub(crate) struct Counters {
    pub(crate) read_errors: Atomic<u64>,
    pub(crate) write_errors: Atomic<u64>,
    pub(crate) spare_errors: Atomic<u64>,
    pub(crate) auto_remaps: Atomic<u64>,
    pub(crate) manual_remaps: Atomic<u64>,
}

impl Counters {
    fn new() -> Self {
        Self {
            read_errors: Atomic::new(0),
            write_errors: Atomic::new(0),
            spare_errors: Atomic::new(0),
            auto_remaps: Atomic::new(0),
            manual_remaps: Atomic::new(0),
        }
    }

    pub(crate) fn inc(counter: &Atomic<u64>) {
        counter.add(1, Relaxed);
    }
}

/// Table changes are made only with this held; it owns the allocator and the on-disk
/// metadata.
pub(crate) struct Writer {
    pub(crate) alloc: SpareAllocator<KVVec<u64>>,
    /// Retired spare blocks, in order (for checkpoints).
    pub(crate) retired: KVec<u64>,
    /// The table on the spare device; `None` until loaded.
    pub(crate) meta: Option<Metadata>,
    /// Moves staged by a worker, committed before the lock is released.
    pub(crate) group: Group,
}

/// The remap table of one spare region.
#[pin_data]
pub(crate) struct RemapState {
    pub(crate) key: StateKey,
    pub(crate) layout: SpareLayout,
    /// main block -> `Entry::to_raw()`; lock-free reads.
    #[pin]
    tree: ValueTree,
    /// Writes in flight hold a read section; moving a block waits for them.
    #[pin]
    pub(crate) srcu: Srcu,
    /// Entries of any kind: `map` skips the lookup while this is zero.
    entries: Atomic<u64>,
    remapped: Atomic<u64>,
    failing: Atomic<u64>,
    /// Set when a remap found no free spare block; cleared when one is freed.
    pub(crate) exhausted: Atomic<bool>,
    /// Mirrors of the metadata state for status (read without the writer lock).
    pub(crate) meta_seq: Atomic<u64>,
    pub(crate) meta_copies_valid: Atomic<u32>,
    pub(crate) meta_bytes: Atomic<u64>,
    /// When the last commit or checkpoint succeeded (monotonic ns; 0: never).
    last_commit_ns: Atomic<u64>,
    #[pin]
    pub(crate) writer: Mutex<Writer>,
    pub(crate) counters: Counters,
}

impl RemapState {
    fn new(key: StateKey, layout: SpareLayout) -> Result<Arc<Self>> {
        let words = bitmap_words(&layout);
        let mut bits = KVVec::with_capacity(words, GFP_KERNEL)?;
        bits.resize(words, 0u64, GFP_KERNEL)?;
        let alloc = SpareAllocator::new(bits, layout).ok_or(ENOMEM)?;
        let group = Group::new()?;
        Arc::pin_init(
            try_pin_init!(Self {
                key,
                layout,
                tree <- ValueTree::new(),
                srcu <- Srcu::new(),
                entries: Atomic::new(0),
                remapped: Atomic::new(0),
                failing: Atomic::new(0),
                exhausted: Atomic::new(false),
                meta_seq: Atomic::new(0),
                meta_copies_valid: Atomic::new(0),
                meta_bytes: Atomic::new(0),
                last_commit_ns: Atomic::new(0),
                writer <- new_mutex!(Writer {
                    alloc,
                    retired: KVec::new(),
                    meta: None,
                    group,
                }),
                counters: Counters::new(),
            }),
            GFP_KERNEL,
        )
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

    /// The entry of main block `block`. Lock-free.
    pub(crate) fn entry(&self, block: u64) -> Option<Entry> {
        self.tree.get(block).map(Entry::from_raw)
    }

    /// Sets (or with `None` removes) the entry of `block`. `_w` proves the writer lock
    /// is held, which keeps the counts consistent with the tree.
    pub(crate) fn set(&self, _w: &mut Writer, block: u64, new: Option<Entry>) -> Result {
        let old = self.entry(block);
        match new {
            Some(e) => self.tree.insert(block, e.to_raw())?,
            None => {
                self.tree.remove(block);
            }
        }
        Self::adjust(&self.entries, old.is_some(), new.is_some());
        let remapped = |e: Option<Entry>| matches!(e, Some(Entry::Remapped(_)));
        Self::adjust(&self.remapped, remapped(old), remapped(new));
        let failing = |e: Option<Entry>| e == Some(Entry::Failing);
        Self::adjust(&self.failing, failing(old), failing(new));
        Ok(())
    }
}

impl RemapState {
    /// Applies a change read from the metadata at load time. `blocks` is the number of main
    /// blocks of the target; anything out of range or contradictory is an error.
    pub(crate) fn apply_change(
        &self,
        w: &mut Writer,
        c: Change,
        blocks: u64,
    ) -> Result<(), FormatError> {
        match c {
            Change::Remap { main, spare } => {
                if main >= blocks {
                    return Err(FormatError::Entries);
                }
                if let Some(Entry::Remapped(old)) = self.entry(main) {
                    w.alloc.release(old).map_err(|_| FormatError::Entries)?;
                }
                w.alloc.mark_used(spare).map_err(|_| FormatError::Entries)?;
                self.set(w, main, Some(Entry::Remapped(spare)))
                    .map_err(|_| FormatError::Space)
            }
            Change::Unmap { main } => {
                if let Some(Entry::Remapped(old)) = self.entry(main) {
                    w.alloc.release(old).map_err(|_| FormatError::Entries)?;
                    self.set(w, main, None).map_err(|_| FormatError::Space)?;
                }
                Ok(())
            }
            Change::Retire { spare } => self.retire(w, spare).map_err(|_| FormatError::Entries),
        }
    }

    /// Retires spare block `spare` in the allocator and the retired list.
    pub(crate) fn retire(&self, w: &mut Writer, spare: u64) -> Result {
        w.alloc.retire(spare).map_err(|_| EINVAL)?;
        if let Err(i) = w.retired.binary_search(&spare) {
            w.retired.insert_within_capacity(i, spare).or_else(|_| {
                w.retired.reserve(1, GFP_KERNEL)?;
                w.retired
                    .insert_within_capacity(i, spare)
                    .map_err(|_| ENOMEM)
            })?;
        }
        Ok(())
    }

    /// Makes `changes` durable in the metadata (a journal record, after a checkpoint when
    /// the journal is full). Without metadata (not loaded yet) there is nothing to do.
    pub(crate) fn commit(
        &self,
        w: &mut Writer,
        spare: &crate::dm::DmDev,
        io: &DmIo,
        changes: &[Change],
    ) -> Result {
        let needs_checkpoint = match &w.meta {
            None => return Ok(()),
            Some(m) => !m.fits(changes.len()),
        };
        let r = if needs_checkpoint {
            self.checkpoint(w, spare, io)
        } else {
            Ok(())
        }
        .and_then(|()| match w.meta.as_mut() {
            Some(m) => m.append(spare, io, changes),
            None => Ok(()),
        });
        self.publish(w, r.is_ok());
        r
    }

    /// Writes the whole table as a checkpoint to every copy.
    pub(crate) fn checkpoint(&self, w: &mut Writer, spare: &crate::dm::DmDev, io: &DmIo) -> Result {
        let Some(m) = w.meta.as_ref() else {
            return Ok(());
        };
        let mut slot = IoBuffer::new(m.slot_bytes() as usize)?;
        let mut next = 0u64;
        let remaps = core::iter::from_fn(|| {
            while let Some((b, e)) = self.first_in(next, u64::MAX - 1) {
                next = b + 1;
                if let Some(s) = e.read_location() {
                    return Some((b, s));
                }
            }
            None
        });
        let (n, crc) = format::encode_checkpoint(
            slot.as_mut_slice(),
            remaps,
            w.retired.iter().copied(),
            crate::metadata::crc32c,
        )
        .map_err(|_| ENOSPC)?;
        let r = match w.meta.as_mut() {
            Some(m) => m.checkpoint(spare, io, &mut slot, n, crc),
            None => Ok(()),
        };
        self.publish(w, r.is_ok());
        r
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

impl Lookup for RemapState {
    fn first_in(&self, from: u64, last: u64) -> Option<(u64, Entry)> {
        self.tree
            .first_in(from, last)
            .map(|(b, raw)| (b, Entry::from_raw(raw)))
    }
}

/// Why a spare region cannot be used.
pub(crate) enum AcquireError {
    /// Overlaps a region another remap device uses differently.
    Conflict,
    /// Out of memory.
    NoMemory,
}

struct Registered {
    state: Arc<RemapState>,
    users: usize,
}

kernel::sync::global_lock! {
    // SAFETY: Initialised by `registry_init()` in the module initialiser before any target
    // can be constructed.
    unsafe(uninit) static REGISTRY: Mutex<KVec<Registered>> = KVec::new();
}

/// Initialises the registry; called once from the module initialiser.
pub(crate) fn registry_init() {
    // SAFETY: Called exactly once, before any other use of `REGISTRY`.
    unsafe { REGISTRY.init() };
}

/// A reference to a registered state, released when dropped.
pub(crate) struct StateRef(Arc<RemapState>);

impl StateRef {
    /// The state itself, for holders that must not count as its users (a sysfs file may
    /// outlive the target).
    pub(crate) fn arc(&self) -> Arc<RemapState> {
        self.0.clone()
    }
}

impl core::ops::Deref for StateRef {
    type Target = RemapState;

    fn deref(&self) -> &RemapState {
        &self.0
    }
}

/// The state for the spare region of `spare` described by `key`: the one already in use
/// (a table reload) or a new one.
/// Returns the state and whether it is new (its table must be loaded).
pub(crate) fn acquire(
    key: StateKey,
    layout: SpareLayout,
) -> Result<(StateRef, bool), AcquireError> {
    let mut reg = REGISTRY.lock();
    for r in reg.iter_mut() {
        if r.state.key == key {
            r.users += 1;
            return Ok((StateRef(r.state.clone()), false));
        }
        if r.state.key.overlaps(&key) {
            return Err(AcquireError::Conflict);
        }
    }
    let state = RemapState::new(key, layout).map_err(|_| AcquireError::NoMemory)?;
    reg.push(
        Registered {
            state: state.clone(),
            users: 1,
        },
        GFP_KERNEL,
    )
    .map_err(|_| AcquireError::NoMemory)?;
    Ok((StateRef(state), true))
}

impl Drop for StateRef {
    fn drop(&mut self) {
        let mut reg = REGISTRY.lock();
        if let Some(i) = reg.iter().position(|r| Arc::ptr_eq(&r.state, &self.0)) {
            reg[i].users -= 1;
            if reg[i].users == 0 {
                // The last user: drop the state (the table lives on the spare device once
                // metadata is persistent; until then it ends with its last table).
                let _ = reg.remove(i);
            }
        }
    }
}
