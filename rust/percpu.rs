// SPDX-License-Identifier: GPL-2.0

//! Per-CPU arrays of `u64` slots from the kernel's per-CPU allocator.
//!
//! Writers change only the current CPU's copy with `this_cpu` operations (one instruction
//! on x86, safe against preemption and against interrupts on the same CPU, no atomics
//! shared between CPUs); readers add up every possible CPU's copy. The `kernel` crate has
//! no per-CPU allocator wrapper; the `this_cpu` macros are C helpers.

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
            unsafe { bindings::dmr_percpu_add(self.ptr.as_ptr(), i, v) };
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
        unsafe { bindings::dmr_percpu_inc_return(self.ptr.as_ptr(), i) }
    }

    /// Raises slot `i` of the current CPU to `v` if it is lower. Any context.
    #[inline]
    pub(crate) fn max(&self, i: usize, v: u64) {
        if i < N {
            // SAFETY: `ptr` is a live per-CPU array of `N` slots (type invariant), and
            // `i < N` was checked just above.
            unsafe { bindings::dmr_percpu_max(self.ptr.as_ptr(), i, v) };
        }
    }

    /// Calls `f(cpu_slots)` for every possible CPU, where `cpu_slots` reads that CPU's
    /// slots (each read is a single volatile load: a consistent value of that slot, not
    /// a consistent set of slots).
    pub(crate) fn for_each_cpu(&self, mut f: impl FnMut(&CpuSlots<'_, N>)) {
        for cpu in possible_cpus() {
            // SAFETY: `cpu` is a possible CPU and `ptr` a live per-CPU allocation.
            let base = unsafe { bindings::dmr_percpu_cpu_ptr(self.ptr.as_ptr(), cpu) };
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
            // SAFETY: `cpu` is a possible CPU, `ptr` a live per-CPU allocation, `i < N`.
            unsafe { bindings::dmr_percpu_write(self.ptr.as_ptr(), cpu, i, v) };
        }
    }
}

impl<const N: usize> Drop for PerCpuSlots<N> {
    fn drop(&mut self) {
        // SAFETY: `ptr` is a per-CPU allocation (type invariant), freed once, here.
        unsafe { bindings::free_percpu(self.ptr.as_ptr().cast()) };
    }
}

/// The possible CPUs, in order.
fn possible_cpus() -> impl Iterator<Item = u32> {
    let mut cpu: c_int = -1;
    core::iter::from_fn(move || {
        // SAFETY: Any CPU number, or -1 to start, may be passed.
        cpu = unsafe { bindings::dmr_next_possible_cpu(cpu) };
        u32::try_from(cpu).ok()
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
