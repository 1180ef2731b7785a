// SPDX-License-Identifier: GPL-2.0

//! The hash index of the remap table: where a one-block lookup finds a block's entry.
//!
//! The maple tree answers range questions (the first entry in a run of blocks), which a
//! bio over several blocks and the table's writers need; a one-block lookup in it walks
//! three or four levels of nodes, 330 to 460 instructions per hit with 10,000 to 1,000,000
//! entries (docs/performance.md). The index answers only "what is the entry of block
//! `b`", with one hash and, on average, one or two slot reads.
//!
//! It is an open-addressing table with linear probing: `1 << shift` slots of a key (main
//! block) and a value (`Entry::to_raw`, or [`NO_VALUE`]); a key lives in the first slot
//! from its home ([`IndexShape::home`]: `shift` bits of the hash) on that holds it or is
//! empty. Lock-free readers
//! run while one writer (the table's writer lock) changes it, under these rules, which this
//! file's functions and the kernel's slot array (`src/index.rs`) follow:
//!
//! - A slot's key goes from [`EMPTY_KEY`] to a block once, and never changes after that
//!   while the array is in use. Claiming a slot stores its value first, then its key (a
//!   release store); a reader loads the key (an acquire load) and then the value, so the
//!   value it reads belongs to that key: the one stored with it or a later one.
//! - Values change by single stores; removing an entry stores [`NO_VALUE`] and keeps the
//!   key in its slot (a "tombstone"), which the key takes again if it gets a new entry. So
//!   a probe never sees a slot emptied under it, and a key is in at most one slot.
//! - Before a new key makes more than [`IndexShape::grow_at`] slots (three quarters) hold
//!   a key, the writer builds a new array from the live entries ([`IndexShape::for_live`]:
//!   at most half full) and publishes it in place of the old one, which is freed after
//!   every reader that may still read it is done (an RCU grace period, `src/index.rs`). If
//!   there is no memory for it, the key goes into the old array all the same, up to
//!   [`IndexShape::max_used`] (seven eighths): a probe always ends at an empty slot.

/// The key of a slot that holds none. Main blocks never reach it (a block is at least
/// 512 bytes, so block numbers are below 2^55).
pub const EMPTY_KEY: u64 = u64::MAX;
/// The value of a key whose entry was removed. `Entry::to_raw` is below 2^61.
pub const NO_VALUE: u64 = u64::MAX;
/// Fewest slots: `1 << MIN_SHIFT` (1 KiB of 16-byte slots).
pub const MIN_SHIFT: u32 = 6;
/// Most slots: `1 << MAX_SHIFT` (1 GiB of 16-byte slots, for up to 33,554,432 live entries;
/// the kernel's `kvmalloc` refuses more than 2 GiB).
pub const MAX_SHIFT: u32 = 26;

/// The hash of a block (MurmurHash3's 64-bit finaliser: every output bit depends on every
/// input bit, so neighbouring blocks, which remaps cluster into, land far apart). The
/// lookup filter (`filter.rs`) uses the same hash, computed once per lookup.
#[inline]
pub fn hash(key: u64) -> u64 {
    let mut x = key;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// The size of one slot array.
///
/// # Invariants
///
/// `MIN_SHIFT <= shift <= MAX_SHIFT` and `home_shift == 64 - shift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexShape {
    /// The array has `1 << shift` slots; within `MIN_SHIFT..=MAX_SHIFT`.
    shift: u32,
    /// `64 - shift`: how far a hash is shifted right to give its home slot.
    home_shift: u32,
}

impl IndexShape {
    /// The smallest array for `live` entries that is at most half full (so that it takes
    /// at least `live / 2` new keys before it must be rebuilt), or `None` past
    /// [`MAX_SHIFT`].
    pub fn for_live(live: u64) -> Option<Self> {
        let want = live.checked_mul(2)?.max(1);
        let shift = (64 - (want - 1).leading_zeros()).max(MIN_SHIFT);
        // INVARIANT: `shift` is at least `MIN_SHIFT` and was just checked against
        // `MAX_SHIFT`.
        (shift <= MAX_SHIFT).then_some(Self {
            shift,
            home_shift: 64 - shift,
        })
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        1 << self.shift
    }

    /// Slots holding a key (live or removed) past which a new key rebuilds the array:
    /// three quarters. A probe then reads on average at most 2.5 slots for a present key
    /// and 8.5 for an absent one (which the lookup filter sends here rarely).
    pub fn grow_at(&self) -> u64 {
        (self.slots() as u64 / 4) * 3
    }

    /// Most slots that may hold a key: seven eighths, for when there is no memory to
    /// rebuild the array. At least one slot stays empty, where every probe ends.
    pub fn max_used(&self) -> u64 {
        (self.slots() as u64 / 8) * 7
    }

    /// The home slot of a key of hash `h`.
    #[inline]
    pub fn home(&self, h: u64) -> usize {
        // Not the top bits as they are: the lookup filter picks its word from those, and its
        // false positives would then start probing where present keys cluster. `home_shift`
        // is within 38..=58 (type invariant): no shift overflow to check.
        h.rotate_left(32).wrapping_shr(self.home_shift) as usize
    }

    /// Mask of a slot number.
    #[inline]
    pub fn mask(&self) -> usize {
        // `shift` is within 6..=26 (type invariant).
        1usize.wrapping_shl(self.shift).wrapping_sub(1)
    }
}

/// Whether a store of a key that a probe found at `place` (see [`place`]) must rebuild the
/// array first: the key has no slot yet and taking one would make more than
/// [`IndexShape::grow_at`] of the `used` slots hold a key (or no slot is empty at all).
pub fn must_grow(shape: IndexShape, place: Option<Place>, used: u64) -> bool {
    match place {
        Some(Place::Held(_)) => false,
        Some(Place::Empty(_)) => used >= shape.grow_at(),
        None => true,
    }
}

/// A slot array as the probes see it (the kernel's atomics, or a test's cells).
pub trait Slots {
    /// Its shape; `slots()` slots are readable.
    fn shape(&self) -> IndexShape;
    /// The key of slot `i` (an acquire load: see the module documentation).
    fn key(&self, i: usize) -> u64;
    /// The value of slot `i`.
    fn value(&self, i: usize) -> u64;
}

/// A slot array as its one writer changes it.
pub trait SlotsMut: Slots {
    /// Stores `value` in empty slot `i`, then `key` (a release store).
    fn claim(&self, i: usize, key: u64, value: u64);
    /// Stores `value` in slot `i`, whose key stays.
    fn set_value(&self, i: usize, value: u64);
}

/// Where a key is: the slot that holds it, or the empty slot it would take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The key is in this slot (with a value or [`NO_VALUE`]).
    Held(usize),
    /// The key is in no slot; this empty slot is the one it would take.
    Empty(usize),
}

/// Finds `key` (of hash `h`). `None` only if no slot holds it and none is empty, which the
/// writer never lets happen (at most [`IndexShape::max_used`] slots hold a key); the probe
/// is bounded all the same.
#[inline]
pub fn place(s: &impl Slots, h: u64, key: u64) -> Option<Place> {
    let shape = s.shape();
    let mask = shape.mask();
    let mut i = shape.home(h);
    // `mask + 1` probes at most: every slot once.
    let mut left = mask;
    loop {
        match s.key(i) {
            k if k == key => return Some(Place::Held(i)),
            EMPTY_KEY => return Some(Place::Empty(i)),
            _ if left == 0 => return None,
            _ => {
                i = i.wrapping_add(1) & mask;
                left -= 1;
            }
        }
    }
}

/// The value stored for `key` (of hash `h`): the lookup. Lock-free.
#[inline(always)]
pub fn get(s: &impl Slots, h: u64, key: u64) -> Option<u64> {
    match place(s, h, key)? {
        Place::Held(i) => Some(s.value(i)).filter(|&v| v != NO_VALUE),
        Place::Empty(_) => None,
    }
}

/// Copies the live entries of slots `range` of `from` into `to`, an array with room for
/// them (empty at first; the same keys are not copied twice). Returns how many it copied,
/// or `None` if `to` ran out of room (then `to` is incomplete and must not be used).
pub fn copy_live(
    from: &impl Slots,
    to: &impl SlotsMut,
    range: core::ops::Range<usize>,
) -> Option<u64> {
    let mut n = 0u64;
    for i in range {
        let (k, v) = (from.key(i), from.value(i));
        if k == EMPTY_KEY || v == NO_VALUE {
            continue;
        }
        match place(to, hash(k), k)? {
            Place::Empty(j) => to.claim(j, k, v),
            // Keys are in at most one slot of `from`.
            Place::Held(j) => to.set_value(j, v),
        }
        n += 1;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    /// A slot array of cells, with the writer's counts, rebuilt as the kernel's is.
    struct Index {
        shape: IndexShape,
        slots: Vec<(Cell<u64>, Cell<u64>)>,
        used: u64,
        live: u64,
    }

    impl Slots for Index {
        fn shape(&self) -> IndexShape {
            self.shape
        }
        fn key(&self, i: usize) -> u64 {
            self.slots[i].0.get()
        }
        fn value(&self, i: usize) -> u64 {
            self.slots[i].1.get()
        }
    }

    impl SlotsMut for Index {
        fn claim(&self, i: usize, key: u64, value: u64) {
            assert_eq!(self.slots[i].0.get(), EMPTY_KEY);
            self.slots[i].1.set(value);
            self.slots[i].0.set(key);
        }
        fn set_value(&self, i: usize, value: u64) {
            self.slots[i].1.set(value);
        }
    }

    impl Index {
        fn with_shape(shape: IndexShape) -> Self {
            Self {
                shape,
                slots: (0..shape.slots())
                    .map(|_| (Cell::new(EMPTY_KEY), Cell::new(NO_VALUE)))
                    .collect(),
                used: 0,
                live: 0,
            }
        }

        /// The kernel's `reserve` then `store`.
        fn set(&mut self, key: u64, value: Option<u64>) {
            let h = hash(key);
            if value.is_some() && must_grow(self.shape, place(self, h, key), self.used) {
                let new = Index::with_shape(IndexShape::for_live(self.live + 1).unwrap());
                // In two pieces, as the kernel copies (a few thousand slots at a time).
                let half = self.shape.slots() / 2;
                let n = copy_live(self, &new, 0..half).unwrap()
                    + copy_live(self, &new, half..self.shape.slots()).unwrap();
                assert_eq!(n, self.live);
                *self = Index {
                    used: n,
                    live: n,
                    ..new
                };
            }
            match (place(self, h, key).unwrap(), value) {
                (Place::Held(i), v) => {
                    let was = self.value(i) != NO_VALUE;
                    self.set_value(i, v.unwrap_or(NO_VALUE));
                    self.live = self.live + u64::from(v.is_some()) - u64::from(was);
                }
                (Place::Empty(i), Some(v)) => {
                    self.claim(i, key, v);
                    self.used += 1;
                    self.live += 1;
                }
                (Place::Empty(_), None) => {}
            }
            assert!(self.used <= self.shape.grow_at());
        }
    }

    #[test]
    fn shapes() {
        assert_eq!(IndexShape::for_live(0).unwrap().slots(), 64);
        assert_eq!(IndexShape::for_live(32).unwrap().slots(), 64);
        assert_eq!(IndexShape::for_live(33).unwrap().slots(), 128);
        assert_eq!(IndexShape::for_live(1_000_000).unwrap().slots(), 1 << 21);
        assert_eq!(IndexShape::for_live(1 << 20).unwrap().grow_at(), 3 << 19);
        assert_eq!(IndexShape::for_live(1 << 20).unwrap().max_used(), 7 << 18);
        assert_eq!(IndexShape::for_live(1 << 25).unwrap().slots(), 1 << 26);
        assert!(IndexShape::for_live((1 << 25) + 1).is_none());
        assert!(IndexShape::for_live(1 << 40).is_none());
        assert!(IndexShape::for_live(u64::MAX).is_none());
        for n in [0u64, 1, 31, 32, 33, 1000, 1 << 25] {
            let s = IndexShape::for_live(n).unwrap();
            assert!(n * 2 <= s.slots() as u64 && s.home(u64::MAX) == s.slots() - 1);
        }
    }

    #[test]
    fn grows_and_shrinks() {
        let mut x = Index::with_shape(IndexShape::for_live(0).unwrap());
        for k in 0..100_000u64 {
            x.set(k * 7, Some(k));
        }
        assert_eq!(x.live, 100_000);
        // 2^18 slots: 100,000 <= 3/4 of 2^18 after growing from 64 slots by doubling.
        assert_eq!(x.shape.slots(), 1 << 18);
        assert!((0..100_000u64).all(|k| get(&x, hash(k * 7), k * 7) == Some(k)));
        assert_eq!(get(&x, hash(1), 1), None);
        // Removals leave tombstones; new keys then rebuild into a smaller array.
        for k in 0..100_000u64 {
            x.set(k * 7, None);
        }
        assert_eq!(x.live, 0);
        for k in 0..200_000u64 {
            x.set(1 << 40 | k, Some(k));
            x.set(1 << 40 | k, None);
        }
        assert!(x.shape.slots() <= 1 << 18);
        assert_eq!(get(&x, hash(0), 0), None);
    }

    proptest::proptest! {
        /// Any sequence of stores and removals: every lookup answers as a map would, and
        /// a probe never runs out of slots.
        #[test]
        fn answers_as_a_map(ops in proptest::collection::vec((0u64..300, proptest::option::of(0u64..1 << 61)), 0..3000)) {
            let mut x = Index::with_shape(IndexShape::for_live(0).unwrap());
            let mut model = BTreeMap::new();
            for (k, v) in ops {
                x.set(k, v);
                match v {
                    Some(v) => model.insert(k, v),
                    None => model.remove(&k),
                };
                proptest::prop_assert_eq!(x.live, model.len() as u64);
            }
            for k in 0..300u64 {
                proptest::prop_assert_eq!(get(&x, hash(k), k), model.get(&k).copied());
            }
        }
    }
}
