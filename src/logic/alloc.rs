// SPDX-License-Identifier: GPL-2.0

//! The spare block allocator: which spare blocks are free, in use, retired or metadata.
//!
//! One bit per spare block (set = not free). Metadata blocks are set at creation and never
//! handed out. Allocation scans from a cursor that moves forward, so blocks are used in
//! order and a freed block is not reused at once. Retired blocks (a write to them failed)
//! stay set forever. The bitmap storage is supplied by the caller (`KVVec` in the kernel,
//! `Vec` in tests) so this file needs no allocator.

use super::layout::SpareLayout;
use core::ops::DerefMut;

/// Why a block cannot be marked in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocError {
    /// The block is outside the spare region.
    OutOfRange,
    /// The block is a metadata block.
    Metadata,
    /// The block is already in use (it would be handed out twice).
    InUse,
    /// The block is free (releasing a block that was not allocated).
    NotInUse,
}

/// Spare block allocator over caller-provided bitmap storage.
pub struct SpareAllocator<S> {
    bits: S,
    layout: SpareLayout,
    cursor: u64,
    used: u64,
    retired: u64,
}

/// Number of `u64` words the bitmap of `layout` needs.
pub fn bitmap_words(layout: &SpareLayout) -> usize {
    layout.total_blocks().div_ceil(64) as usize
}

impl<S: DerefMut<Target = [u64]>> SpareAllocator<S> {
    /// Creates an allocator with every data block free. `bits` must hold at least
    /// [`bitmap_words`] words; its contents are overwritten.
    pub fn new(bits: S, layout: SpareLayout) -> Option<Self> {
        if bits.len() < bitmap_words(&layout) {
            return None;
        }
        let mut a = Self {
            bits,
            layout,
            cursor: 0,
            used: 0,
            retired: 0,
        };
        a.reset();
        Some(a)
    }

    /// Frees every data block and forgets retired ones (before a table is loaded again).
    pub fn reset(&mut self) {
        self.bits.fill(0);
        self.cursor = 0;
        self.used = 0;
        self.retired = 0;
        for c in 0..self.layout.copies() {
            let start = self.layout.copy_start(c);
            for b in start..start + self.layout.copy_blocks() {
                self.set(b);
            }
        }
    }

    fn is_set(&self, b: u64) -> bool {
        self.bits[(b / 64) as usize] & (1 << (b % 64)) != 0
    }

    fn set(&mut self, b: u64) {
        self.bits[(b / 64) as usize] |= 1 << (b % 64);
    }

    fn clear(&mut self, b: u64) {
        self.bits[(b / 64) as usize] &= !(1 << (b % 64));
    }

    fn check_data_block(&self, b: u64) -> Result<(), AllocError> {
        if b >= self.layout.total_blocks() {
            Err(AllocError::OutOfRange)
        } else if self.layout.is_metadata(b) {
            Err(AllocError::Metadata)
        } else {
            Ok(())
        }
    }

    /// Spare data blocks in total.
    pub fn data_blocks(&self) -> u64 {
        self.layout.data_blocks()
    }

    /// Blocks in use (holding remapped data).
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Blocks retired after a failed write.
    pub fn retired(&self) -> u64 {
        self.retired
    }

    /// Blocks still free.
    pub fn free(&self) -> u64 {
        self.data_blocks() - self.used - self.retired
    }

    /// First clear bit in `from..to`.
    fn find_clear(&self, from: u64, to: u64) -> Option<u64> {
        let mut b = from;
        while b < to {
            // The word holding `b`, with the bits below `b` treated as set.
            let word = self.bits[(b / 64) as usize] | ((1u64 << (b % 64)) - 1);
            if word != u64::MAX {
                let found = b / 64 * 64 + u64::from((!word).trailing_zeros());
                return (found < to).then_some(found);
            }
            b = (b / 64 + 1) * 64;
        }
        None
    }

    /// Hands out a free data block, or `None` when the spare region is exhausted.
    pub fn alloc(&mut self) -> Option<u64> {
        if self.free() == 0 {
            return None;
        }
        let total = self.layout.total_blocks();
        let b = self
            .find_clear(self.cursor, total)
            .or_else(|| self.find_clear(0, self.cursor))?;
        self.set(b);
        self.used += 1;
        self.cursor = if b + 1 == total { 0 } else { b + 1 };
        Some(b)
    }

    /// Marks `b` in use, when rebuilding the allocator from an existing table.
    pub fn mark_used(&mut self, b: u64) -> Result<(), AllocError> {
        self.check_data_block(b)?;
        if self.is_set(b) {
            return Err(AllocError::InUse);
        }
        self.set(b);
        self.used += 1;
        Ok(())
    }

    /// Whether data block `b` is not free (in use or retired).
    pub fn is_taken(&self, b: u64) -> bool {
        self.check_data_block(b).is_ok() && self.is_set(b)
    }

    /// Marks `b` retired: a write to it failed; it is never handed out again. `b` must be
    /// in use (just allocated, or its data moved away) or free, and not retired already:
    /// the allocator does not tell retired blocks from used ones (one bit per block), so
    /// its owner keeps the list of retired blocks.
    pub fn retire(&mut self, b: u64) -> Result<(), AllocError> {
        self.check_data_block(b)?;
        if self.is_set(b) {
            self.used = self.used.checked_sub(1).ok_or(AllocError::NotInUse)?;
        }
        self.set(b);
        self.retired += 1;
        Ok(())
    }

    /// Returns block `b`, which was in use, to the free blocks.
    pub fn release(&mut self, b: u64) -> Result<(), AllocError> {
        self.check_data_block(b)?;
        if !self.is_set(b) || self.used == 0 {
            return Err(AllocError::NotInUse);
        }
        self.clear(b);
        self.used -= 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::vec;
    use std::vec::Vec;

    fn layout(blocks: u64) -> SpareLayout {
        SpareLayout::new(0, blocks * 8, 4096, 2).unwrap()
    }

    fn allocator(l: SpareLayout) -> SpareAllocator<Vec<u64>> {
        SpareAllocator::new(vec![u64::MAX; bitmap_words(&l)], l).unwrap()
    }

    #[test]
    fn hands_out_every_data_block_once_then_none() {
        let l = layout(300);
        let mut a = allocator(l);
        let mut seen = BTreeSet::new();
        while let Some(b) = a.alloc() {
            assert!(!l.is_metadata(b), "metadata block {b} handed out");
            assert!(seen.insert(b), "block {b} handed out twice");
        }
        assert_eq!(seen.len() as u64, l.data_blocks());
        assert_eq!(a.free(), 0);
    }

    #[test]
    fn release_retire_and_rebuild() {
        let l = layout(300);
        let mut a = allocator(l);
        let b = a.alloc().unwrap();
        assert_eq!(a.mark_used(b), Err(AllocError::InUse));
        a.release(b).unwrap();
        assert_eq!(a.release(b), Err(AllocError::NotInUse));
        let c = a.alloc().unwrap();
        assert_ne!(b, c, "a freed block is not reused at once");
        a.retire(c).unwrap();
        assert_eq!((a.used(), a.retired()), (0, 1));
        assert_eq!(a.mark_used(l.copy_start(1)), Err(AllocError::Metadata));
        assert_eq!(a.mark_used(300), Err(AllocError::OutOfRange));
        let mut r = allocator(l);
        r.mark_used(b).unwrap();
        assert_eq!(r.mark_used(b), Err(AllocError::InUse));
    }

    #[test]
    fn storage_too_small_is_refused() {
        let l = layout(300);
        assert!(SpareAllocator::new(vec![0u64; 1], l).is_none());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Alloc,
        Release(usize),
        Retire(usize),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            4 => Just(Op::Alloc),
            2 => any::<usize>().prop_map(Op::Release),
            1 => any::<usize>().prop_map(Op::Retire),
        ]
    }

    proptest::proptest! {
        /// Against a model: a set of used blocks and a set of retired blocks.
        #[test]
        fn matches_model(blocks in 60u64..700, ops in proptest::collection::vec(op(), 1..400)) {
            let l = layout(blocks);
            let mut a = allocator(l);
            let mut used: BTreeSet<u64> = BTreeSet::new();
            let mut retired: BTreeSet<u64> = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Alloc => match a.alloc() {
                        Some(b) => {
                            proptest::prop_assert!(!l.is_metadata(b));
                            proptest::prop_assert!(!used.contains(&b) && !retired.contains(&b));
                            used.insert(b);
                        }
                        None => proptest::prop_assert_eq!(
                            used.len() as u64 + retired.len() as u64, l.data_blocks()),
                    },
                    Op::Release(i) if !used.is_empty() => {
                        let b = *used.iter().nth(i % used.len()).unwrap();
                        a.release(b).unwrap();
                        used.remove(&b);
                    }
                    Op::Retire(i) if !used.is_empty() => {
                        let b = *used.iter().nth(i % used.len()).unwrap();
                        a.retire(b).unwrap();
                        used.remove(&b);
                        retired.insert(b);
                    }
                    _ => {}
                }
                proptest::prop_assert_eq!(a.used(), used.len() as u64);
                proptest::prop_assert_eq!(a.retired(), retired.len() as u64);
            }
        }
    }
}
