// SPDX-License-Identifier: GPL-2.0

//! Memory held on purpose, a page at a time, for the stress engine's memory pressure test,
//! and how much memory is available.
//!
//! Not the `kernel` crate's `Page`: its allocation flags cannot say `__GFP_NORETRY`, and an
//! allocation without it may call the OOM killer, which a test must never do; this takes
//! what the page allocator gives without reclaiming hard, and counts what it refused.

use crate::rust::bindings;
use core::ptr::NonNull;
use kernel::alloc::KVVec;
use kernel::prelude::*;

/// Pages taken from the page allocator, freed on drop.
///
/// # Invariants
///
/// Every entry of `pages` is an order-0 page from `alloc_pages` that only `drop` frees.
pub(crate) struct PageHold {
    pages: KVVec<NonNull<bindings::page>>,
}

// SAFETY: Pages have no thread affinity; they may be freed on any thread.
unsafe impl Send for PageHold {}
// SAFETY: `PageHold` has no `&self` methods that touch the pages.
unsafe impl Sync for PageHold {}

/// Bytes the kernel estimates can be allocated without swapping (`si_mem_available`, the
/// `MemAvailable` of `/proc/meminfo`): for a caller about to take much memory, such as
/// `lookup_benchmark` before it inserts very many entries (`ValueTree::insert` allocates with
/// `GFP_NOIO`, which waits and retries rather than fails when memory runs out).
pub(crate) fn available_bytes() -> u64 {
    // SAFETY: `si_mem_available` takes no arguments and only reads the memory counters and
    // the zones' watermarks (no lock, no sleep, no memory of ours).
    let pages = unsafe { bindings::si_mem_available() };
    u64::try_from(pages)
        .unwrap_or(0)
        .saturating_mul(kernel::page::PAGE_SIZE as u64)
}

impl PageHold {
    /// Takes up to `count` pages (`GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN`), and never
    /// more than the memory available less an eighth of RAM (so that other allocations
    /// do not end in the OOM killer either), stopping at the first refusal. Returns the
    /// hold and whether it got less than `count` (0 or 1).
    pub(crate) fn take(count: usize) -> Result<(Self, u64)> {
        // SAFETY: Reads a memory counter; no preconditions.
        let total = unsafe { bindings::dmr_totalram_pages() };
        let page = kernel::page::PAGE_SIZE as u64;
        let limit = (available_bytes() / page).saturating_sub(total as u64 / 8);
        let want = count.min(usize::try_from(limit).unwrap_or(usize::MAX));
        let mut pages = KVVec::with_capacity(want, GFP_KERNEL)?;
        let mut failed = u64::from(want < count);
        for _ in 0..want {
            // SAFETY: Allocating a page has no preconditions in process context.
            let page = unsafe { bindings::dmr_alloc_page_noretry() };
            let Some(page) = NonNull::new(page) else {
                failed = 1;
                break;
            };
            // INVARIANT: a page from `alloc_pages`, freed only in `drop`. Capacity for
            // `want` entries was reserved above.
            if pages.push_within_capacity(page).is_err() {
                // SAFETY: The page was just allocated and is not stored anywhere.
                unsafe { bindings::__free_pages(page.as_ptr(), 0) };
                break;
            }
        }
        Ok((Self { pages }, failed))
    }

    /// Pages held.
    pub(crate) fn len(&self) -> usize {
        self.pages.len()
    }
}

impl Drop for PageHold {
    fn drop(&mut self) {
        for page in self.pages.iter() {
            // SAFETY: Each entry is an order-0 page this hold allocated and frees once
            // (type invariant).
            unsafe { bindings::__free_pages(page.as_ptr(), 0) };
        }
    }
}
