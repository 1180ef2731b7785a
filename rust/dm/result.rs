// SPDX-License-Identifier: GPL-2.0

//! The text buffer of `status` and `message` replies.

use core::fmt;

/// A reply buffer supplied by device-mapper (`char *result, unsigned int maxlen`).
///
/// Writes through [`fmt::Write`] are truncated to fit and the buffer always stays
/// NUL-terminated, which is how device-mapper detects that userspace must retry with a
/// larger buffer (the same contract as the C `DMEMIT` macro).
pub(crate) struct ResultBuf<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> ResultBuf<'a> {
    /// # Safety
    ///
    /// `ptr` must be valid for writes of `maxlen` bytes for `'a` and not accessed by
    /// anyone else meanwhile.
    pub(crate) unsafe fn from_raw(ptr: *mut u8, maxlen: u32) -> Self {
        let buf: &'a mut [u8] = if ptr.is_null() || maxlen == 0 {
            &mut []
        } else {
            // SAFETY: Guaranteed by the caller.
            unsafe { core::slice::from_raw_parts_mut(ptr, maxlen as usize) }
        };
        if let Some(first) = buf.first_mut() {
            *first = 0;
        }
        Self { buf, len: 0 }
    }

    /// Whether nothing was written.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Write for ResultBuf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Keep one byte for the terminating NUL.
        let room = self.buf.len().saturating_sub(self.len + 1);
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        if let Some(end) = self.buf.get_mut(self.len) {
            *end = 0;
        }
        if n < s.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}
