// SPDX-License-Identifier: GPL-2.0

//! The shape of the Bloom filter in front of the remap table.
//!
//! Nearly every I/O is to a block that is not remapped, and with a table of 100,000 entries
//! walking the tree to learn that costs ~370 instructions per I/O (docs/performance.md).
//! A Bloom filter answers most of those lookups with one word read: each main block that
//! has ever had an entry sets three bits of one 64-bit word (a "blocked" filter: one cache
//! line, one load per probe), chosen by a hash of the block number. A block whose three
//! bits are not all set has no entry; one whose bits are set may have one, and the tree is
//! asked.
//!
//! This file decides where a block's bits are ([`FilterShape::probe`]); the words
//! themselves live with the table (the kernel's atomics there, a plain array in the tests
//! here). The hash is the index's (`index.rs`): a lookup computes it once. Bits are only
//! ever set, never cleared: a removed entry leaves its bits behind (a false positive, which
//! costs an index probe or a tree walk and is never wrong); a filter that has taken far more
//! keys than it was sized for is filled with ones ([`FilterShape::saturates_after`]). False
//! positives: ~0.8% at 16 bits per entry, ~0.45% at 21 (100,000 entries, whose filter
//! rounds up to 2 Mbit; the test below measures it);
//! the rate rises slowly past the capacity the filter was sized for, and a filter with
//! every bit set is as good as none.

pub use super::index::hash;

/// Bits per expected entry (at least): three bits per key in 64-bit blocks, <= 0.8% false
/// positives.
pub const BITS_PER_ENTRY: u64 = 16;
/// Fewest words (512 bytes).
const MIN_WORD_SHIFT: u32 = 6;
/// Most words (4 MiB): sized for 2,097,152 entries, larger tables see more false positives.
pub const MAX_WORD_SHIFT: u32 = 19;
/// Longest run of blocks the filter is asked about one block at a time. A probe costs ~60
/// instructions (the function around it included), the tree's range search ~600 for a
/// 16-block bio: with 32, 128 KiB reads over a 100,000-entry table cost 44,771 instructions
/// per read, with 8 43,664 (icount). A longer range goes to the tree directly.
pub const MAX_SPAN: u64 = 8;

/// How many 64-bit words a filter has and where a key's bits are in them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterShape {
    /// The filter has `1 << word_shift` words.
    word_shift: u32,
    /// `64 - word_shift`: how far a hash is shifted right to index a word.
    index_shift: u32,
}

impl FilterShape {
    /// The shape for a table expected to hold up to `entries` entries: at least
    /// [`BITS_PER_ENTRY`] bits per entry, rounded up to a power of two, within 512 bytes
    /// and 4 MiB.
    pub fn for_entries(entries: u64) -> Self {
        let words = entries.saturating_mul(BITS_PER_ENTRY).div_ceil(64).max(1);
        let shift = (64 - (words - 1).leading_zeros()).clamp(MIN_WORD_SHIFT, MAX_WORD_SHIFT);
        Self {
            word_shift: shift,
            index_shift: 64 - shift,
        }
    }

    /// Number of 64-bit words.
    pub fn words(&self) -> usize {
        1 << self.word_shift
    }

    /// After how many keys the filter is filled with ones (it then answers "maybe" for
    /// every block, which is always correct, at the cost of one probe): at two bits per
    /// key, where nearly half its answers would be false positives anyway. A table reaches
    /// it only by many more distinct blocks than the filter was sized for (failing blocks
    /// beyond the spare's size, or remaps and unremaps of ever new blocks).
    pub fn saturates_after(&self) -> u64 {
        (self.words() as u64) * 64 / 2
    }

    /// The word that holds `key`'s bits, and the mask of its bits in that word.
    #[inline]
    pub fn probe(&self, key: u64) -> (usize, u64) {
        self.probe_hash(hash(key))
    }

    /// [`Self::probe`] for a key of hash `x` ([`hash`], which the table's index shares).
    #[inline]
    pub fn probe_hash(&self, x: u64) -> (usize, u64) {
        // The word from the top bits, the three bit positions from the bottom 18.
        // `index_shift` is within 45..=58 (type invariant), so the shift needs no check.
        let word = x.wrapping_shr(self.index_shift) as usize;
        let mask = (1 << (x & 63)) | (1 << ((x >> 6) & 63)) | (1 << ((x >> 12) & 63));
        (word, mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    struct Filter {
        shape: FilterShape,
        words: Vec<u64>,
    }

    impl Filter {
        fn new(entries: u64) -> Self {
            let shape = FilterShape::for_entries(entries);
            Self {
                shape,
                words: vec![0; shape.words()],
            }
        }
        fn add(&mut self, key: u64) {
            let (w, m) = self.shape.probe(key);
            self.words[w] |= m;
        }
        fn may_contain(&self, key: u64) -> bool {
            let (w, m) = self.shape.probe(key);
            self.words[w] & m == m
        }
    }

    /// A deterministic stream of pseudo-random keys (xorshift64*).
    fn keys(seed: u64) -> impl Iterator<Item = u64> {
        let mut s = seed | 1;
        core::iter::from_fn(move || {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            Some(s.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 20)
        })
    }

    #[test]
    fn sizes() {
        assert_eq!(FilterShape::for_entries(0).words(), 64);
        assert_eq!(FilterShape::for_entries(100).words(), 64);
        // 100,000 entries: 1.6 Mbit -> 25,000 words -> 32,768.
        assert_eq!(FilterShape::for_entries(100_000).words(), 32_768);
        assert_eq!(FilterShape::for_entries(1 << 20).words(), 1 << 18);
        // 16 bits per entry sized, saturated at 2: eight times the entries.
        assert_eq!(FilterShape::for_entries(1 << 20).saturates_after(), 8 << 20);
        assert_eq!(
            FilterShape::for_entries(u64::MAX).words(),
            1 << MAX_WORD_SHIFT
        );
    }

    #[test]
    fn probe_stays_in_range() {
        for n in [0, 1000, 100_000, 1 << 30] {
            let s = FilterShape::for_entries(n);
            for k in keys(n + 7).take(10_000).chain([0, 1, u64::MAX]) {
                let (w, m) = s.probe(k);
                assert!(w < s.words());
                assert!((1..=3).contains(&m.count_ones()));
            }
        }
    }

    /// No false negatives, and few false positives at capacity: random and clustered keys.
    #[test]
    fn no_false_negatives_few_false_positives() {
        let n = 100_000u64;
        let sets: [Vec<u64>; 3] = [
            keys(1).take(n as usize).collect(),
            (5_000_000..5_000_000 + n).collect(),
            (0..n).map(|i| i * 100).collect(),
        ];
        for set in sets {
            let mut f = Filter::new(n);
            for &k in &set {
                f.add(k);
            }
            assert!(set.iter().all(|&k| f.may_contain(k)));
            let mut sorted = set.clone();
            sorted.sort_unstable();
            let probes = keys(99)
                .map(|k| k % (n * 200))
                .filter(|k| sorted.binary_search(k).is_err())
                .take(200_000);
            let fp = probes.filter(|&k| f.may_contain(k)).count();
            // Measured 0.44-0.46%; fail well above.
            assert!(fp < 200_000 / 100, "false positives {fp} of 200000");
        }
    }
}
