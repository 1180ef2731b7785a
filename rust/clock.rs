// SPDX-License-Identifier: GPL-2.0

//! The monotonic clock in nanoseconds (`ktime_get_ns`), as a plain `u64`: the `kernel`
//! crate's `Instant` does not give its nanoseconds to modules.

use crate::rust::bindings;

/// Nanoseconds of `CLOCK_MONOTONIC`; comparable across CPUs. Any context but NMI.
#[inline]
pub(crate) fn now_ns() -> u64 {
    // SAFETY: No preconditions.
    unsafe { bindings::dmr_now_ns() }
}
