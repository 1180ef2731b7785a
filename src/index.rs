// SPDX-License-Identifier: GPL-2.0

//! The remap table's hash index in kernel memory: the slot array of `logic/index.rs` as
//! atomics, read lock-free under RCU and replaced ([`RcuBox`]) when it is rebuilt.
//!
//! Changes are made by the table's writer (its lock held, the [`IndexCounts`] that
//! [`Index::new`] gave it in hand), so that the table can make a change visible in the
//! index and in the tree together or not at all: a new entry in two steps,
//! [`Index::reserve`] (may allocate, and fail, before anything is changed; returns the
//! slot) and [`Index::store`] (writes that slot; cannot fail); a removal in one,
//! [`Index::remove`].

use crate::logic::index::{
    self, must_grow, IndexShape, Place, Slots, SlotsMut, EMPTY_KEY, NO_VALUE,
};
use crate::rcu::RcuBox;
use crate::workqueue::cond_resched;
use kernel::alloc::{KVBox, KVVec};
use kernel::prelude::*;
use kernel::sync::atomic::{Acquire, Atomic, Relaxed, Release};
use kernel::sync::rcu;

/// Slots initialised or copied between two chances to reschedule (a rebuild of a large
/// array takes millions of slots; the copy holds the RCU read lock while it runs).
const SLOTS_PER_BATCH: usize = 1 << 14;

/// One slot: a key and its value (see `logic/index.rs` for the order of their stores).
struct Slot {
    key: Atomic<u64>,
    value: Atomic<u64>,
}

/// One slot array.
///
/// # Invariants
///
/// `slots.len() == shape.slots()`.
struct Array {
    shape: IndexShape,
    slots: KVVec<Slot>,
}

impl Array {
    /// An array of empty slots. Allocates (kvmalloc, with the caller's `GFP_NOIO` scope);
    /// may sleep.
    fn new(shape: IndexShape) -> Result<KVBox<Self>> {
        let n = shape.slots();
        let mut slots = KVVec::with_capacity(n, GFP_KERNEL)?;
        for i in 0..n {
            let slot = Slot {
                key: Atomic::new(EMPTY_KEY),
                value: Atomic::new(NO_VALUE),
            };
            slots.push_within_capacity(slot).map_err(|_| ENOMEM)?;
            if i % SLOTS_PER_BATCH == SLOTS_PER_BATCH - 1 {
                cond_resched();
            }
        }
        // INVARIANT: `n` slots were pushed.
        Ok(KVBox::new(Self { shape, slots }, GFP_KERNEL)?)
    }
}

impl Slots for Array {
    #[inline]
    fn shape(&self) -> IndexShape {
        self.shape
    }

    #[inline]
    fn key(&self, i: usize) -> u64 {
        // Slot numbers are masked to the array (type invariant): the default never shows,
        // and would end a probe.
        self.slots.get(i).map_or(EMPTY_KEY, |s| s.key.load(Acquire))
    }

    #[inline]
    fn value(&self, i: usize) -> u64 {
        self.slots
            .get(i)
            .map_or(NO_VALUE, |s| s.value.load(Relaxed))
    }
}

impl SlotsMut for Array {
    fn claim(&self, i: usize, key: u64, value: u64) {
        if let Some(s) = self.slots.get(i) {
            s.value.store(value, Relaxed);
            s.key.store(key, Release);
        }
    }

    fn set_value(&self, i: usize, value: u64) {
        if let Some(s) = self.slots.get(i) {
            s.value.store(value, Relaxed);
        }
    }
}

/// The writer's counts of the current array. Only [`Index::new`] makes them; the table
/// keeps them with its writer state, so holding `&mut IndexCounts` means holding the
/// writer lock.
pub(crate) struct IndexCounts {
    /// Slots holding a key (live or removed).
    used: u64,
    /// Keys with a value.
    live: u64,
}

/// The slot a key was given by [`Index::reserve`], for [`Index::store`].
#[must_use]
pub(crate) struct Reserved {
    place: Place,
    key: u64,
}

/// Main block -> `Entry::to_raw()`, for one-block lookups (see `logic/index.rs`).
pub(crate) struct Index {
    array: RcuBox<Array>,
}

impl Index {
    /// An empty index (the smallest array) and its writer's counts.
    pub(crate) fn new() -> Result<(Self, IndexCounts)> {
        let shape = IndexShape::for_live(0).ok_or(EINVAL)?;
        let index = Self {
            array: RcuBox::new(Array::new(shape)?),
        };
        Ok((index, IndexCounts { used: 0, live: 0 }))
    }

    /// The value stored for `key`, of hash `h` (`index::hash`). Lock-free; any context.
    #[inline(always)]
    pub(crate) fn get(&self, h: u64, key: u64) -> Option<u64> {
        let guard = rcu::read_lock();
        index::get(self.array.read(&guard), h, key)
    }

    /// Finds the slot that [`Self::store`] of `key` (hash `h`) will write: the key's own,
    /// or an empty one. For a new key that would make more than three quarters of the
    /// slots used, first rebuilds the array (allocating, then waiting for an RCU grace
    /// period before freeing the old one); without memory for that, the old array takes it
    /// up to seven eighths. Fails with `ENOMEM` past that, changing nothing readers can
    /// see. Sleeps.
    pub(crate) fn reserve(&self, c: &mut IndexCounts, h: u64, key: u64) -> Result<Reserved> {
        if key == EMPTY_KEY {
            return Err(EINVAL);
        }
        let (place, shape) = self.place(h, key);
        if must_grow(shape, place, c.used) {
            match self.rebuild(c) {
                Ok(()) => {
                    let (place, _) = self.place(h, key);
                    let place = place.ok_or(ENOMEM)?;
                    return Ok(Reserved { place, key });
                }
                // No memory for a bigger array: this one still has room.
                Err(e) if e == ENOMEM && c.used < shape.max_used() => {}
                Err(e) => return Err(e),
            }
        }
        let place = place.ok_or(ENOMEM)?;
        Ok(Reserved { place, key })
    }

    /// Stores `value` for the key of `slot`, with no other change to the index since it
    /// was reserved (the writer lock held throughout).
    pub(crate) fn store(&self, c: &mut IndexCounts, slot: Reserved, value: u64) {
        let guard = rcu::read_lock();
        let a = self.array.read(&guard);
        match slot.place {
            Place::Held(i) => {
                if a.value(i) == NO_VALUE {
                    c.live += 1;
                }
                a.set_value(i, value);
            }
            Place::Empty(i) => {
                a.claim(i, slot.key, value);
                c.used += 1;
                c.live += 1;
            }
        }
    }

    /// Removes the value of `key` (hash `h`); its slot keeps the key. A key that is not
    /// there is left alone.
    pub(crate) fn remove(&self, c: &mut IndexCounts, h: u64, key: u64) {
        let guard = rcu::read_lock();
        let a = self.array.read(&guard);
        if let Some(Place::Held(i)) = index::place(a, h, key) {
            if a.value(i) != NO_VALUE {
                c.live = c.live.saturating_sub(1);
            }
            a.set_value(i, NO_VALUE);
        }
    }

    /// Where `key` is in the current array, and the array's shape.
    fn place(&self, h: u64, key: u64) -> (Option<Place>, IndexShape) {
        let guard = rcu::read_lock();
        let a = self.array.read(&guard);
        (index::place(a, h, key), a.shape)
    }

    /// Replaces the array by one at most half full with the live entries. Sleeps.
    fn rebuild(&self, c: &mut IndexCounts) -> Result {
        let shape = IndexShape::for_live(c.live + 1).ok_or(ENOMEM)?;
        let new = Array::new(shape)?;
        let mut copied = 0u64;
        let mut from = 0usize;
        loop {
            // The array read is the same one every time: only this writer replaces it.
            let guard = rcu::read_lock();
            let old = self.array.read(&guard);
            let end = old.shape.slots().min(from.saturating_add(SLOTS_PER_BATCH));
            // `new` holds twice the live entries: the copy cannot run out of room.
            copied += index::copy_live(old, &*new, from..end).ok_or(EINVAL)?;
            let done = end == old.shape.slots();
            drop(guard);
            if done {
                break;
            }
            from = end;
            cond_resched();
        }
        c.used = copied;
        c.live = copied;
        self.array.replace(new);
        Ok(())
    }
}
