// SPDX-License-Identifier: GPL-2.0

//! Random bytes from the kernel's generator (`get_random_bytes`); the `kernel` crate has
//! no wrapper for it.

use crate::rust::bindings;

/// Fills `buf` with random bytes (`get_random_bytes`), e.g. for a new set UUID.
pub(crate) fn random_bytes(buf: &mut [u8]) {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call.
    unsafe { bindings::get_random_bytes(buf.as_mut_ptr().cast(), buf.len()) };
}
