// SPDX-License-Identifier: GPL-2.0

//! Per-CPU arrays of `u64` slots from the kernel's per-CPU allocator.
//!
//! Writers change only the current CPU's copy with `this_cpu` operations (one instruction
//! on x86, safe against preemption and against interrupts on the same CPU, no atomics
//! shared between CPUs); readers add up every possible CPU's copy. The `kernel` crate has
//! no per-CPU allocator or `this_cpu` wrapper: the macros (`__alloc_percpu`, `this_cpu_*`,
//! `per_cpu_ptr`) are reached through C forwarders (rust/helpers/percpu.c).

use crate::rust::bindings;
use core::ptr::NonNull;
use kernel::prelude::*;

/// `N` counters per CPU, zeroed at allocation.
///
/// # Invariants
///
/// `ptr` is a per-CPU allocation of `N` `u64` slots (`__alloc_percpu`), freed only on drop.
pub(crate) struct PerCpuSlots<const N: usize> {
    ptr: NonNull<u64>,
}

// SAFETY: Per-CPU memory has no thread affinity: it may be freed (dropped) on any thread.
unsafe impl<const N: usize> Send for PerCpuSlots<N> {}
// SAFETY: The `&self` methods that write (`add`, `inc_return`, `max`) change only the
// current CPU's copy with this_cpu operations, which are atomic against preemption and
// interrupts on that CPU; the others read with single volatile loads (`for_each_cpu`) or
// store whole slots of other CPUs with single volatile stores (`set_all`, documented as
// losing racing updates). No access is a data race on a non-atomic value.
unsafe impl<const N: usize> Sync for PerCpuSlots<N> {}

impl<const N: usize> PerCpuSlots<N> {
    /// Allocates `N` zeroed slots for every possible CPU. Sleeps.
    pub(crate) fn new() -> Result<Self> {
        const SLOT: usize = core::mem::size_of::<u64>();
        // SAFETY: Any size and power-of-two alignment may be requested; a failure returns
        // NULL. `N * SLOT` cannot overflow for any `N` a caller could use (it is checked at
        // compile time).
        let p = unsafe { bindings::dmr_alloc_percpu(const { N * SLOT }, SLOT) }.cast::<u64>();
        // INVARIANT: A non-NULL `p` is a per-CPU allocation of `N` slots, freed only by
        // `drop`.
        Ok(Self {
            ptr: NonNull::new(p).ok_or(ENOMEM)?,
        })
    }

    /// Adds `v` to slot `i` of the current CPU. Any context.
    #[inline]
    pub(crate) fn add(&self, i: usize, v: u64) {
        if i < N {
            // SAFETY: `ptr` is a live per-CPU array of `N` slots (type invariant), `i < N`.
            unsafe { bindings::dmr_this_cpu_add_u64(self.ptr.as_ptr(), i, v) };
        }
    }

    /// Adds one to slot `i` of the current CPU and returns the new value. Any context.
    #[inline]
    pub(crate) fn inc_return(&self, i: usize) -> u64 {
        if i >= N {
            return 0;
        }
        // SAFETY: `ptr` is a live per-CPU array of `N` slots (type invariant), and `i < N`
        // was checked above.
        unsafe { bindings::dmr_this_cpu_inc_return_u64(self.ptr.as_ptr(), i) }
    }

    /// Raises slot `i` of the current CPU to `v` if it is lower. Any context.
    #[inline]
    pub(crate) fn max(&self, i: usize, v: u64) {
        if i >= N {
            return;
        }
        let p = self.ptr.as_ptr();
        // SAFETY: `ptr` is a live per-CPU array of `N` slots (type invariant), and `i < N`
        // was checked above.
        let mut old = unsafe { bindings::dmr_this_cpu_read_u64(p, i) };
        // `this_cpu_cmpxchg` is atomic against interrupts on its CPU: a retry follows only
        // an update by an interrupt, or a move of this task to another CPU between the two
        // calls (the cmpxchg then compares that CPU's slot, and the loop goes on with its
        // value). The loop ends when `v` is stored over a lower value or is not higher.
        while v > old {
            // SAFETY: `p` is a live per-CPU array of `N` slots (type invariant), and `i < N`
            // was checked at the top.
            let prev = unsafe { bindings::dmr_this_cpu_cmpxchg_u64(p, i, old, v) };
            if prev == old {
                break;
            }
            old = prev;
        }
    }

    /// Calls `f(cpu_slots)` for every possible CPU, where `cpu_slots` reads that CPU's
    /// slots (each read is a single volatile load: a consistent value of that slot, not
    /// a consistent set of slots).
    pub(crate) fn for_each_cpu(&self, mut f: impl FnMut(&CpuSlots<'_, N>)) {
        for cpu in possible_cpus() {
            // SAFETY: `cpu` is a possible CPU and `ptr` a live per-CPU allocation.
            let base = unsafe { bindings::dmr_per_cpu_ptr(self.ptr.as_ptr(), cpu) }.cast_const();
            f(&CpuSlots {
                base,
                _p: core::marker::PhantomData,
            });
        }
    }

    /// Stores `v` into slot `i` of every CPU. A store into another CPU's copy can be lost
    /// to an update that CPU makes at the same moment; only for values where that is
    /// harmless (restarting a maximum).
    pub(crate) fn set_all(&self, i: usize, v: u64) {
        if i >= N {
            return;
        }
        for cpu in possible_cpus() {
            // SAFETY: `cpu` is a possible CPU and `ptr` a live per-CPU allocation of `N`
            // slots, so `per_cpu_ptr` gives that CPU's `N` slots and `i < N` (checked above)
            // is one of them. The volatile store is `WRITE_ONCE`: the owning CPU updates
            // the slot with single this_cpu instructions, so it sees either value whole.
            unsafe {
                bindings::dmr_per_cpu_ptr(self.ptr.as_ptr(), cpu)
                    .add(i)
                    .write_volatile(v)
            };
        }
    }
}

impl<const N: usize> Drop for PerCpuSlots<N> {
    fn drop(&mut self) {
        // SAFETY: `ptr` is a per-CPU allocation (type invariant), freed once, here.
        unsafe { bindings::free_percpu(self.ptr.as_ptr().cast()) };
    }
}

/// The possible CPUs, in order (`for_each_possible_cpu`).
fn possible_cpus() -> impl Iterator<Item = u32> {
    let nr = kernel::cpu::nr_cpu_ids();
    let mut prev: c_int = -1;
    core::iter::from_fn(move || {
        // SAFETY: `prev` is -1 or the last CPU returned, which is below `nr_cpu_ids`: the
        // arguments `cpumask_next` accepts.
        let cpu = unsafe { bindings::dmr_cpumask_next_possible(prev) };
        if cpu >= nr {
            return None;
        }
        // `cpu < nr_cpu_ids`, which fits a C `int`.
        prev = cpu as c_int;
        Some(cpu)
    })
}

/// One CPU's copy of a [`PerCpuSlots`], for reading.
pub(crate) struct CpuSlots<'a, const N: usize> {
    base: *const u64,
    _p: core::marker::PhantomData<&'a PerCpuSlots<N>>,
}

impl<const N: usize> CpuSlots<'_, N> {
    /// Slot `i` (0 out of range).
    pub(crate) fn get(&self, i: usize) -> u64 {
        if i >= N {
            return 0;
        }
        // SAFETY: `base` points to this CPU's `N` slots, alive for `'a`; the owning CPU may
        // write it concurrently, hence a volatile (READ_ONCE) load of an aligned u64.
        unsafe { self.base.add(i).read_volatile() }
    }
}
