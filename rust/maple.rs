// SPDX-License-Identifier: GPL-2.0

//! A maple tree of integer values with lock-free readers.
//!
//! The `kernel` crate's `MapleTree` stores owned pointers and reads under the tree lock;
//! the I/O path needs reads that take no lock at all. This wrapper keeps the tree in RCU
//! mode (`MT_FLAGS_USE_RCU`) and stores plain integers as tagged values
//! (`xa_mk_value`), so a reader needs nothing but the RCU read lock `mtree_load` and
//! `mt_find` take internally, and no value ever needs freeing. Writers are serialised by
//! the tree's internal lock and may allocate.

use crate::rust::bindings;
use kernel::prelude::*;
use kernel::types::Opaque;

/// Largest value a [`ValueTree`] can store (`xa_mk_value` keeps one bit for the tag).
pub(crate) const MAX_VALUE: u64 = (1 << 62) - 1;

/// A map from `u64` keys to `u64` values (at most [`MAX_VALUE`]).
///
/// # Invariants
///
/// `tree` is an initialised maple tree in RCU mode whose entries are all tagged values.
#[repr(transparent)]
#[pin_data(PinnedDrop)]
pub(crate) struct ValueTree {
    #[pin]
    tree: Opaque<bindings::maple_tree>,
}

// SAFETY: A maple tree has no thread affinity, and its values are integers, not owned
// pointers: it may be destroyed (dropped) on any thread.
unsafe impl Send for ValueTree {}
// SAFETY: Every method takes `&self`: the writers (`insert`, `remove`, the RCU-mode switch)
// take the tree's internal spinlock, and the readers (`get`, `first_in`) are the maple
// tree's RCU readers, which run concurrently with writers because the tree is in RCU mode
// (type invariant; `exclusive` is `unsafe` for that reason).
unsafe impl Sync for ValueTree {}

fn encode(value: u64) -> *mut c_void {
    // `xa_mk_value`: the value shifted left with the low bit set.
    ((value << 1) | 1) as usize as *mut c_void
}

fn decode(entry: *mut c_void) -> Option<u64> {
    let raw = entry as usize as u64;
    // Only tagged values are ever stored (type invariant); NULL means no entry.
    (raw & 1 == 1).then_some(raw >> 1)
}

impl ValueTree {
    /// An empty tree.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // INVARIANT: `mt_init_flags(MT_FLAGS_USE_RCU)` makes an empty tree in RCU mode
            // (no entries, so none that is not a tagged value).
            // SAFETY: `slot` is valid for writes; `mt_init_flags` initialises it fully.
            tree <- Opaque::ffi_init(|slot| unsafe {
                bindings::dmr_mt_init_flags(slot, bindings::MT_FLAGS_USE_RCU)
            }),
        })
    }

    fn raw(&self) -> *mut bindings::maple_tree {
        self.tree.get()
    }

    /// The value stored for `key`. Lock-free; callable from any context.
    pub(crate) fn get(&self, key: u64) -> Option<u64> {
        // SAFETY: The tree is initialised (type invariant); `mtree_load` takes the RCU
        // read lock itself and the returned value is an integer, not a pointer.
        decode(unsafe { bindings::mtree_load(self.raw(), key as usize) })
    }

    /// The first entry with a key in `from..=last`. Lock-free; callable from any context.
    pub(crate) fn first_in(&self, from: u64, last: u64) -> Option<(u64, u64)> {
        if from > last {
            return None;
        }
        if from == last {
            // One key (a bio within one block, the common case): a point lookup walks down
            // to the slot without `mt_find`'s search for the next entry, 180 fewer
            // instructions per I/O with 100,000 entries (docs/performance.md).
            return self.get(from).map(|v| (from, v));
        }
        let mut index = from as usize;
        // SAFETY: The tree is initialised (type invariant); `mt_find` takes the RCU read
        // lock itself, `index` is a valid in/out pointer for the call, and the returned
        // value is an integer, not a pointer. `mt_find` sets `index` to one past the end of
        // the entry it found; all entries cover a single key, so that key is `index - 1`.
        let entry = unsafe { bindings::mt_find(self.raw(), &mut index, last as usize) };
        let value = decode(entry)?;
        Some(((index as u64).wrapping_sub(1), value))
    }

    /// Stores `value` for `key`, replacing what was there. May sleep (it allocates with
    /// `GFP_NOIO`: callers are on the I/O path of a block device).
    pub(crate) fn insert(&self, key: u64, value: u64) -> Result {
        if value > MAX_VALUE {
            return Err(EINVAL);
        }
        // SAFETY: The tree is initialised; the entry is a tagged value (type invariant).
        kernel::error::to_result(unsafe {
            bindings::mtree_store(
                self.raw(),
                key as usize,
                encode(value),
                bindings::DMR_GFP_NOIO,
            )
        })
    }

    /// Switches RCU mode off until the returned guard is dropped, for filling the tree in
    /// bulk: without it every store copies the leaf it changes and frees the old one
    /// through RCU (the maple tree's `wr_node_store`); with it, ascending keys are appended
    /// in place. A 1,000,000-entry table load spent ~3e9 instructions storing in RCU mode
    /// (docs/performance.md).
    ///
    /// # Safety
    ///
    /// Until the guard is dropped, nothing may read the tree without holding its lock:
    /// no [`Self::get`] or [`Self::first_in`] may run concurrently (writers are
    /// serialised by the tree's lock as always).
    pub(crate) unsafe fn exclusive(&self) -> Exclusive<'_> {
        // SAFETY: The tree is initialised; `mt_clear_in_rcu` takes the tree's lock to change
        // the flag. The caller guarantees that no lock-free reader runs until the guard
        // drops.
        unsafe { bindings::dmr_mt_clear_in_rcu(self.raw()) };
        Exclusive(self)
    }

    /// Removes the entry for `key` and returns its value.
    pub(crate) fn remove(&self, key: u64) -> Option<u64> {
        // SAFETY: The tree is initialised.
        decode(unsafe { bindings::mtree_erase(self.raw(), key as usize) })
    }
}

/// RCU mode switched off; see [`ValueTree::exclusive`]. Dropping it switches it back on.
pub(crate) struct Exclusive<'a>(&'a ValueTree);

impl Drop for Exclusive<'_> {
    fn drop(&mut self) {
        // SAFETY: The tree is initialised; switching RCU mode on (`mt_set_in_rcu` takes the
        // tree's lock) is always allowed, and makes lock-free readers safe again from here
        // on.
        unsafe { bindings::dmr_mt_set_in_rcu(self.0.raw()) };
    }
}

#[pinned_drop]
impl PinnedDrop for ValueTree {
    fn drop(self: Pin<&mut Self>) {
        // RCU mode is switched off first so that the nodes are freed at once instead of by
        // RCU callbacks walking a dead tree (that walk crashed on a 100,000-entry tree in
        // 7.3.4: `mte_dead_walk()` from `mt_free_walk()`).
        // SAFETY: The tree is initialised and nobody can read it any more (we are being
        // dropped, and readers borrow `self`), so leaving RCU mode is allowed and
        // `mtree_destroy` may free the nodes; values need no freeing.
        unsafe {
            bindings::dmr_mt_clear_in_rcu(self.raw());
            bindings::mtree_destroy(self.raw());
        }
    }
}
