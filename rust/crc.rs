// SPDX-License-Identifier: GPL-2.0

//! The kernel's CRC32C (`crc32c()` of `lib/crc/`) in the raw form the on-disk format code
//! takes (`logic::format::CrcFn`): no inversion at either end.

use crate::rust::bindings;

/// Continues CRC32C state `state` over `data` (the kernel's `crc32c(crc, p, len)`).
pub(crate) fn crc32c_update(state: u32, data: &[u8]) -> u32 {
    // SAFETY: `data` is valid for reads of `data.len()` bytes for the whole call.
    unsafe { bindings::crc32c(state, data.as_ptr().cast(), data.len()) }
}
