// SPDX-License-Identifier: GPL-2.0

//! The monotonic clock in nanoseconds, as a plain `u64`.
//!
//! A thin layer over the `kernel` crate's [`Monotonic`] clock source (`ktime_get()`). Its
//! `Instant` does not fit: the callers store times as `u64` (0 for "not timed", in atomics
//! and in pure-logic types shared with userspace) and `Instant` does not give its
//! nanoseconds to modules.

use kernel::time::{ClockSource, Monotonic};

/// Nanoseconds of `CLOCK_MONOTONIC`; comparable across CPUs. Any context but NMI.
#[inline]
pub(crate) fn now_ns() -> u64 {
    // `ktime_get()` is never negative (`ClockSource`'s safety requirement), so the cast is
    // lossless.
    Monotonic::ktime_get() as u64
}
