// SPDX-License-Identifier: GPL-2.0

//! Userspace build of the pure-logic files (`cargo test`, fuzzing, benchmarks).
//!
//! The kernel module includes `mod.rs` directly; this root only makes the same files a
//! `no_std` library crate so their tests run on the host.

#![no_std]

#[cfg(test)]
extern crate std;

#[path = "mod.rs"]
mod logic;

pub use logic::*;

extern crate alloc as std_alloc;

/// The remap table as plain collections: main block -> spare block, and retired spare
/// blocks, with the scanner's cursor. What replaying metadata yields in userspace (the tool, tests); the module keeps
/// its table in a maple tree and an allocator instead, with the same rules.
#[derive(Default, Clone, PartialEq, Eq, Debug)]
pub struct Table {
    /// Main block -> spare block.
    pub remaps: std_alloc::collections::BTreeMap<u64, u64>,
    /// Retired spare blocks.
    pub retired: std_alloc::collections::BTreeSet<u64>,
    /// Spare block -> the main block it holds (the reverse of `remaps`).
    pub spares: std_alloc::collections::BTreeMap<u64, u64>,
    /// The scanner's cursor: the last one applied.
    pub scan: format::ScanCursor,
}

impl Table {
    /// Applies one change read from the metadata. A spare block is used by one main block
    /// at most and never after it is retired; retiring a retired block changes nothing; a
    /// scanner cursor replaces the one before.
    pub fn apply(&mut self, c: format::Change) -> Result<(), format::FormatError> {
        match c {
            format::Change::Remap { main, spare } => {
                if self.retired.contains(&spare)
                    || self.spares.get(&spare).is_some_and(|&m| m != main)
                {
                    return Err(format::FormatError::Entries);
                }
                if let Some(old) = self.remaps.insert(main, spare) {
                    self.spares.remove(&old);
                }
                self.spares.insert(spare, main);
            }
            format::Change::Unmap { main } => {
                if let Some(old) = self.remaps.remove(&main) {
                    self.spares.remove(&old);
                }
            }
            format::Change::Retire { spare } => {
                if self.spares.contains_key(&spare) {
                    return Err(format::FormatError::Entries);
                }
                self.retired.insert(spare);
            }
            format::Change::Scan(cursor) => self.scan = cursor,
        }
        Ok(())
    }
}

/// A remap table as a sorted slice of `(main block, Entry::to_raw())`, for userspace
/// tests and benchmarks of `route` (the kernel's table is a maple tree).
pub struct SortedTable<'a>(pub &'a [(u64, u64)]);

impl route::Lookup for SortedTable<'_> {
    fn first_in(&self, from: u64, last: u64) -> Option<(u64, route::Entry)> {
        let i = self.0.partition_point(|&(b, _)| b < from);
        self.0
            .get(i)
            .filter(|&&(b, _)| b <= last)
            .map(|&(b, raw)| (b, route::Entry::from_raw(raw)))
    }
}

/// The routing fast path must not allocate. Checked with a counting global allocator in
/// the test binary (the kernel build has no allocator in `logic` at all; this guards the
/// userspace users and documents the property).
#[cfg(test)]
mod no_alloc {
    use crate::route::{self, Access, Entry};
    use crate::SortedTable;
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;
    use std::vec::Vec;

    std::thread_local! {
        static ALLOCS: Cell<u64> = const { Cell::new(0) };
    }

    struct Counting;

    // SAFETY: Delegates to the system allocator; counting has no effect on the memory.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            ALLOCS.with(|c| c.set(c.get() + 1));
            // SAFETY: Same contract as ours.
            unsafe { System.alloc(l) }
        }

        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            // SAFETY: Same contract as ours.
            unsafe { System.dealloc(p, l) }
        }
    }

    #[global_allocator]
    static COUNTING: Counting = Counting;

    #[test]
    fn routing_does_not_allocate() {
        let entries: Vec<(u64, u64)> = (0..10_000u64)
            .map(|i| (i * 7, Entry::Remapped(i).to_raw()))
            .collect();
        let t = SortedTable(&entries);
        let before = ALLOCS.with(Cell::get);
        let mut spare = 0u64;
        for s in 0..100_000u64 {
            let access = if s % 2 == 0 {
                Access::Read
            } else {
                Access::Write
            };
            let r = route::route(s * 3, 1 + (s % 300) as u32, 3, access, &t);
            spare = spare.wrapping_add(u64::from(r.sectors));
        }
        assert!(spare > 0);
        assert_eq!(ALLOCS.with(Cell::get), before, "route() allocated");
    }
}
