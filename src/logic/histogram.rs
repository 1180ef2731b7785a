// SPDX-License-Identifier: GPL-2.0

//! A log-linear latency histogram (the bucket scheme of HDR histograms): values below
//! `2^SUB_BITS` get a bucket each; above, every power of two is cut into `2^SUB_BITS`
//! equal sub-buckets. A bucket's width is at most `1/2^SUB_BITS` of its lower bound, so
//! reporting its midpoint is within half of that (3.2% with `SUB_BITS = 4`) of any value in
//! it. Recording is an index computation and one add: no allocation, no branches on data
//! beyond a compare, fit for a per-CPU array on the I/O path.
//!
//! Values are nanoseconds; anything at or above [`MAX_TRACKABLE`] (about 9 minutes) lands
//! in the last bucket.

/// Sub-buckets per power of two, as a power of two.
pub const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
/// Largest exponent tracked: values up to `2^(MAX_EXP + 1) - 1`.
const MAX_EXP: u32 = 39;
/// Values at or above this share the last bucket.
pub const MAX_TRACKABLE: u64 = 1 << (MAX_EXP + 1);
/// Number of buckets.
pub const BUCKETS: usize = ((MAX_EXP - SUB_BITS + 2) as usize) << SUB_BITS;

/// The bucket of `v`.
pub const fn index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let v = if v >= MAX_TRACKABLE {
        MAX_TRACKABLE - 1
    } else {
        v
    };
    let exp = 63 - v.leading_zeros();
    let shift = exp - SUB_BITS;
    (((shift + 1) as usize) << SUB_BITS) + ((v >> shift) - SUB) as usize
}

/// The values bucket `i` holds: `lo..=hi`.
pub const fn bounds(i: usize) -> (u64, u64) {
    if i < SUB as usize {
        return (i as u64, i as u64);
    }
    let shift = ((i >> SUB_BITS) - 1) as u32;
    let lo = (SUB + (i as u64 & (SUB - 1))) << shift;
    (lo, lo + (1 << shift) - 1)
}

/// A value representing bucket `i` in reports: its midpoint.
pub const fn representative(i: usize) -> u64 {
    let (lo, hi) = bounds(i);
    lo + (hi - lo) / 2
}

/// The value at quantile `permille / 1000` (for example 500 = p50, 999 = p99.9) of the
/// samples counted in `buckets`: the representative of the bucket holding the sample of
/// rank `ceil(count * permille / 1000)`. `None` without samples.
pub fn quantile(buckets: &[u64], permille: u32) -> Option<u64> {
    let count: u64 = buckets.iter().sum();
    if count == 0 {
        return None;
    }
    // Rank of the sample, 1-based, at least 1.
    let rank = (count.saturating_mul(u64::from(permille.min(1000))))
        .div_ceil(1000)
        .max(1);
    let mut seen = 0u64;
    for (i, &n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some(representative(i));
        }
    }
    None
}

/// Buckets plus the exact count, sum and maximum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    /// Samples per bucket.
    pub buckets: [u64; BUCKETS],
    /// Samples.
    pub count: u64,
    /// Sum of the samples (wrapping: divide by `count` for the mean).
    pub sum: u64,
    /// Largest sample.
    pub max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub const fn new() -> Self {
        Self {
            buckets: [0; BUCKETS],
            count: 0,
            sum: 0,
            max: 0,
        }
    }

    /// Records one sample.
    pub fn record(&mut self, v: u64) {
        self.buckets[index(v)] += 1;
        self.count += 1;
        self.sum = self.sum.wrapping_add(v);
        if v > self.max {
            self.max = v;
        }
    }

    /// Adds the samples of `other` (another CPU's, for example).
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.sum = self.sum.wrapping_add(other.sum);
        self.max = self.max.max(other.max);
    }

    /// The mean, rounded down; `None` without samples.
    pub fn mean(&self) -> Option<u64> {
        self.sum.checked_div(self.count)
    }

    /// See [`quantile`]; the maximum is exact, so p100 returns it.
    pub fn quantile(&self, permille: u32) -> Option<u64> {
        if permille >= 1000 {
            return (self.count > 0).then_some(self.max);
        }
        quantile(&self.buckets, permille).map(|q| q.min(self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn buckets_tile_the_range() {
        assert_eq!(index(0), 0);
        let mut next = 0u64;
        for i in 0..BUCKETS {
            let (lo, hi) = bounds(i);
            assert_eq!(
                lo,
                next,
                "bucket {i} starts where {} ended",
                i.wrapping_sub(1)
            );
            assert!(hi >= lo);
            assert_eq!(index(lo), i);
            assert_eq!(index(hi), i);
            // Width at most lo / 2^SUB_BITS (above the linear part).
            if lo >= SUB {
                assert!(hi - lo < lo >> SUB_BITS, "bucket {i} too wide");
            }
            next = hi + 1;
        }
        assert_eq!(next, MAX_TRACKABLE);
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    proptest! {
        #[test]
        fn index_is_monotonic_and_bounds_hold(a in any::<u64>(), b in any::<u64>()) {
            let (lo, hi) = (a.min(b), a.max(b));
            prop_assert!(index(lo) <= index(hi));
            let (blo, bhi) = bounds(index(a));
            if a < MAX_TRACKABLE {
                prop_assert!(blo <= a && a <= bhi);
            }
        }

        #[test]
        fn quantiles_are_within_the_bucket_error(
            mut samples in proptest::collection::vec(1u64..10_000_000_000, 1..2000),
            permille in prop::sample::select(vec![1u32, 100, 500, 900, 990, 999]),
        ) {
            let mut h = Histogram::new();
            let (mut a, mut b) = (Histogram::new(), Histogram::new());
            for (k, &s) in samples.iter().enumerate() {
                h.record(s);
                if k % 2 == 0 { a.record(s) } else { b.record(s) }
            }
            a.merge(&b);
            prop_assert_eq!(&a, &h);
            samples.sort_unstable();
            let rank = (samples.len() as u64 * u64::from(permille)).div_ceil(1000).max(1);
            let exact = samples[rank as usize - 1];
            let got = h.quantile(permille).unwrap();
            // Within half a bucket width: 1/2^(SUB_BITS+1) of the value, plus rounding.
            let err = got.abs_diff(exact);
            prop_assert!(err <= exact / (2 * SUB) + 1, "p{} exact {} got {}", permille, exact, got);
            prop_assert_eq!(h.quantile(1000), samples.last().copied());
            let sum: u64 = samples.iter().sum();
            prop_assert_eq!(h.mean(), Some(sum / samples.len() as u64));
        }
    }

    #[test]
    fn empty_has_no_quantiles() {
        let h = Histogram::new();
        assert_eq!(h.quantile(500), None);
        assert_eq!(h.mean(), None);
        let v: Vec<u64> = Vec::new();
        assert_eq!(quantile(&v, 500), None);
    }
}
