// SPDX-License-Identifier: GPL-2.0

//! Geometry of the spare region: remap blocks, metadata copies and spare data blocks.
//!
//! The spare region (`spare_start..spare_start + spare_len` sectors of the spare device) is
//! cut into remap blocks of `block_size` bytes. `copies` metadata areas of equal size are
//! placed far apart, copy `i` starting at block `floor(i * total / copies)`, so one media
//! defect cannot take several. Every other block is a spare data block. Spare data never
//! lands in a metadata area.

use super::args::SECTOR_SIZE;

/// Metadata copies kept unless the table line says otherwise.
pub const DEFAULT_METADATA_COPIES: u32 = 5;
/// Bytes of the metadata superblock at the start of every copy.
pub const SUPERBLOCK_BYTES: u64 = 4096;
/// Bytes one remap entry takes in a metadata table.
pub const ENTRY_BYTES: u64 = 16;
/// Alignment of every metadata area inside a copy (the largest logical block size).
pub const AREA_ALIGN: u64 = 4096;
/// Smallest journal.
pub const MIN_JOURNAL_BYTES: u64 = 16 * 1024;

/// Bytes of one checkpoint slot for a region of `total_blocks`: one entry per block.
pub const fn slot_bytes(total_blocks: u64) -> u64 {
    (total_blocks * ENTRY_BYTES).div_ceil(AREA_ALIGN) * AREA_ALIGN
}

/// Bytes of the journal for a region of `total_blocks`: an eighth of a slot (at least
/// [`MIN_JOURNAL_BYTES`]), so a checkpoint is written at most once per that many journal
/// bytes and its cost per commit stays bounded whatever the table size.
pub const fn journal_bytes(total_blocks: u64) -> u64 {
    let j = (total_blocks * 2).div_ceil(AREA_ALIGN) * AREA_ALIGN;
    if j < MIN_JOURNAL_BYTES {
        MIN_JOURNAL_BYTES
    } else {
        j
    }
}

/// Bytes of one metadata copy: superblock, two checkpoint slots, journal.
pub const fn copy_bytes(total_blocks: u64) -> u64 {
    SUPERBLOCK_BYTES + 2 * slot_bytes(total_blocks) + journal_bytes(total_blocks)
}

/// The layout of one spare region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpareLayout {
    spare_start: u64,
    block_shift: u32,
    total_blocks: u64,
    copies: u32,
    copy_blocks: u64,
}

/// Why a spare region cannot hold metadata and spare blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutError {
    /// The block size is not a power of two number of sectors.
    BlockSize,
    /// Too few copies (at least 2 keep a crash from losing the table).
    Copies,
    /// The metadata copies leave no spare data block.
    TooSmall,
}

impl SpareLayout {
    /// Lays out `spare_len` sectors from `spare_start` with `block_bytes` blocks and
    /// `copies` metadata copies.
    pub fn new(
        spare_start: u64,
        spare_len: u64,
        block_bytes: u32,
        copies: u32,
    ) -> Result<Self, LayoutError> {
        let block_sectors = u64::from(block_bytes) / SECTOR_SIZE;
        if block_sectors == 0 || !block_sectors.is_power_of_two() {
            return Err(LayoutError::BlockSize);
        }
        if copies < 2 {
            return Err(LayoutError::Copies);
        }
        let block_shift = block_sectors.trailing_zeros();
        let total_blocks = spare_len >> block_shift;
        let copy_blocks = Self::copy_blocks_for(total_blocks, u64::from(block_bytes));
        // Copies start floor(total / copies) blocks apart; each must fit in its stride
        // and at least one data block must remain.
        let stride = total_blocks / u64::from(copies);
        if stride < copy_blocks || total_blocks <= copy_blocks.saturating_mul(u64::from(copies)) {
            return Err(LayoutError::TooSmall);
        }
        Ok(Self {
            spare_start,
            block_shift,
            total_blocks,
            copies,
            copy_blocks,
        })
    }

    /// Blocks one metadata copy takes for a region of `total_blocks`: a superblock, two
    /// checkpoint slots with room for an entry per block (the one being rewritten and the
    /// one still valid), and a journal.
    fn copy_blocks_for(total_blocks: u64, block_bytes: u64) -> u64 {
        copy_bytes(total_blocks).div_ceil(block_bytes)
    }

    /// log2 of the sectors in a block.
    pub fn block_shift(&self) -> u32 {
        self.block_shift
    }

    /// Sectors in a block.
    pub fn block_sectors(&self) -> u64 {
        1 << self.block_shift
    }

    /// Blocks in the spare region (metadata and data).
    pub fn total_blocks(&self) -> u64 {
        self.total_blocks
    }

    /// Number of metadata copies.
    pub fn copies(&self) -> u32 {
        self.copies
    }

    /// Blocks in one metadata copy.
    pub fn copy_blocks(&self) -> u64 {
        self.copy_blocks
    }

    /// Spare data blocks: the blocks spare data can be written to.
    pub fn data_blocks(&self) -> u64 {
        self.total_blocks - self.copy_blocks * u64::from(self.copies)
    }

    /// First block of metadata copy `i` (`i < copies`): `floor(i * total / copies)`,
    /// computed without 128-bit arithmetic.
    pub fn copy_start(&self, i: u32) -> u64 {
        let n = u64::from(self.copies);
        let i = u64::from(i);
        i * (self.total_blocks / n) + i * (self.total_blocks % n) / n
    }

    /// Whether spare block `block` belongs to a metadata copy.
    pub fn is_metadata(&self, block: u64) -> bool {
        if block >= self.total_blocks {
            return false;
        }
        // The last copy starting at or before `block` is the only one that can hold it:
        // each copy ends before the next one starts. Start from the estimate
        // `block / stride` and correct it (copy starts are monotonic).
        let stride = self.total_blocks / u64::from(self.copies);
        let mut i = (block / stride).min(u64::from(self.copies) - 1) as u32;
        while i > 0 && self.copy_start(i) > block {
            i -= 1;
        }
        while i + 1 < self.copies && self.copy_start(i + 1) <= block {
            i += 1;
        }
        block - self.copy_start(i) < self.copy_blocks
    }

    /// First sector on the spare device of spare block `block`.
    pub fn block_sector(&self, block: u64) -> u64 {
        self.spare_start + (block << self.block_shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_region() {
        // 400 blocks of 4 KiB: each copy is 1 (sb) + 2 * 2 (slots of 400*16 = 6400 B,
        // rounded to 8 KiB) + 4 (16 KiB journal) = 9 blocks, 5 copies = 45 blocks.
        let l = SpareLayout::new(0, 400 * 8, 4096, 5).unwrap();
        assert_eq!(l.total_blocks(), 400);
        assert_eq!(l.copy_blocks(), 9);
        assert_eq!(l.data_blocks(), 400 - 45);
        let meta = (0..400).filter(|&b| l.is_metadata(b)).count() as u64;
        assert_eq!(meta, 45);
        assert_eq!(l.block_sector(3), 24);
    }

    #[test]
    fn copies_are_far_apart_and_disjoint() {
        let l = SpareLayout::new(2048, 1 << 24, 4096, 5).unwrap();
        for i in 0..5 {
            let start = l.copy_start(i);
            assert!(l.is_metadata(start));
            assert!(l.is_metadata(start + l.copy_blocks() - 1));
            assert!(!l.is_metadata(start + l.copy_blocks()));
            if i > 0 {
                assert!(start - l.copy_start(i - 1) >= l.total_blocks() / 5);
            }
        }
    }

    #[test]
    fn too_small_and_bad_arguments() {
        assert_eq!(SpareLayout::new(0, 8, 4096, 5), Err(LayoutError::TooSmall));
        // 5 copies of 7 blocks need a stride of 7: 35 blocks is too small, 36 is not.
        assert_eq!(
            SpareLayout::new(0, 35 * 8, 4096, 5),
            Err(LayoutError::TooSmall)
        );
        assert!(SpareLayout::new(0, 36 * 8, 4096, 5).is_ok());
        assert_eq!(
            SpareLayout::new(0, 1 << 20, 4096, 1),
            Err(LayoutError::Copies)
        );
        assert_eq!(
            SpareLayout::new(0, 1 << 20, 3000, 5),
            Err(LayoutError::BlockSize)
        );
    }

    #[test]
    fn capacity_for_a_million_blocks() {
        // 1,000,000 data blocks need a table of at least that many entries.
        let l = SpareLayout::new(0, 1_100_000 * 8, 4096, 5).unwrap();
        assert!(l.data_blocks() >= 1_000_000, "{}", l.data_blocks());
        assert!(slot_bytes(l.total_blocks()) / ENTRY_BYTES >= l.total_blocks());
        assert!(l.copy_blocks() * 4096 >= copy_bytes(l.total_blocks()));
    }

    proptest::proptest! {
        #[test]
        fn metadata_count_matches(total in 1u64..5000, copies in 2u32..8, shift in 0u32..8) {
            let bytes = 512u32 << shift;
            if let Ok(l) = SpareLayout::new(0, total << shift, bytes, copies) {
                let meta = (0..l.total_blocks()).filter(|&b| l.is_metadata(b)).count() as u64;
                proptest::prop_assert_eq!(meta, l.copy_blocks() * u64::from(copies));
                proptest::prop_assert!(l.data_blocks() >= 1);
            }
        }
    }
}
