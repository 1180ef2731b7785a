// SPDX-License-Identifier: GPL-2.0

//! A heap value read without a lock under RCU and replaced whole by writers.
//!
//! The `kernel` crate (7.3) has the RCU read guard (`kernel::sync::rcu::Guard`) and
//! `synchronize_rcu`, but no RCU-protected pointer: this is `rcu_dereference` and
//! `rcu_assign_pointer` with the free after a grace period, for a value that readers only
//! read through shared references (its own atomics are how writers change it in place).
//! The remap table's hash index (`src/index.rs`) is one: its slot array is replaced when it
//! grows.

use kernel::alloc::KVBox;
use kernel::sync::atomic::{Acquire, Atomic, Full};
use kernel::sync::rcu::{self, Guard};

/// An owned `T` that readers borrow for an RCU read section and writers replace.
///
/// # Invariants
///
/// `ptr` comes from `KVBox::into_raw` and is owned by this `RcuBox`: it stays valid until
/// it is swapped out by [`RcuBox::replace`], which frees it only after an RCU grace period
/// (so after every reader that loaded it has left its read section), or until drop.
pub(crate) struct RcuBox<T> {
    ptr: Atomic<*mut T>,
}

// SAFETY: An `RcuBox<T>` owns a `T` (it is dropped wherever the box or a replacement is), so
// it may move between threads when `T` may.
unsafe impl<T: Send> Send for RcuBox<T> {}
// SAFETY: Shared access hands out `&T` on any thread (`read`) and drops `T`s on the thread
// that replaces them, so `T` must be `Sync` and `Send`.
unsafe impl<T: Send + Sync> Sync for RcuBox<T> {}

impl<T> RcuBox<T> {
    /// Takes ownership of `value`.
    pub(crate) fn new(value: KVBox<T>) -> Self {
        // INVARIANT: The pointer comes from `KVBox::into_raw`, and this box owns it.
        Self {
            ptr: Atomic::new(KVBox::into_raw(value)),
        }
    }

    /// The current value, for as long as the read section `_guard` lasts. Lock-free; the
    /// caller must not sleep while it holds the guard.
    #[inline]
    pub(crate) fn read<'a>(&'a self, _guard: &'a Guard) -> &'a T {
        // The acquire load orders the reads of the value after those of the writer who
        // published it (`rcu_dereference`, conservatively).
        let p = self.ptr.load(Acquire);
        // SAFETY: `p` is valid (type invariant) and stays valid for `'a`: a `replace` that
        // swaps it out frees it only after a grace period, which waits for the read section
        // the caller's `Guard` holds; the `RcuBox` itself outlives `'a`. Only shared
        // references to the value are ever made while it is in the box.
        unsafe { &*p }
    }

    /// Puts `value` in place of the current value, which it frees once every reader that
    /// may still see it is done (`synchronize_rcu`). Sleeps.
    ///
    /// Like the `kernel` crate's `synchronize_rcu`, this is a safe function that must not
    /// be called in atomic context, which includes holding an RCU read guard: a
    /// `synchronize_rcu` inside the caller's own read section could return before that
    /// section ends (on one CPU at once), and a reference from [`Self::read`] under that
    /// guard would outlive the value. Types do not catch sleeping in atomic context (the
    /// kernel's convention; `klint` is meant to); `might_sleep` reports it on kernels
    /// built with `CONFIG_DEBUG_ATOMIC_SLEEP`, such as the test kernel. The one caller,
    /// `Index::rebuild`, holds no guard when it calls it.
    pub(crate) fn replace(&self, value: KVBox<T>) {
        kernel::task::might_sleep();
        // A full exchange publishes the new value after its initialisation
        // (`rcu_assign_pointer`'s release, and more); the old pointer goes to this call
        // alone, even with another `replace` at the same time.
        // INVARIANT: The new pointer comes from `KVBox::into_raw` and is owned by the box.
        let old = self.ptr.xchg(KVBox::into_raw(value), Full);
        rcu::synchronize_rcu();
        // SAFETY: `old` came from `KVBox::into_raw` (type invariant), no other `replace` or
        // `drop` got it (the exchange above took it out), and the grace period just waited
        // for every reader that could have loaded it.
        drop(unsafe { KVBox::from_raw(old) });
    }
}

impl<T> Drop for RcuBox<T> {
    fn drop(&mut self) {
        // SAFETY: The pointer came from `KVBox::into_raw` and is owned by the box (type
        // invariant); with `&mut self` nobody holds a reference from `read` any more (its
        // lifetime is bounded by a borrow of the box).
        drop(unsafe { KVBox::from_raw(self.ptr.load(Acquire)) });
    }
}
