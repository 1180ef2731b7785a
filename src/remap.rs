// SPDX-License-Identifier: GPL-2.0

//! The slow path: retrying failed reads, remapping blocks whose writes fail, and the
//! messages that move blocks by hand. Everything here runs in process context (the
//! target's worker or the message ioctl) and may sleep.
//!
//! Moving a block (to a spare block, to another spare block, or back to main) follows one
//! protocol, under the writer lock:
//! 1. mark the block `Moving`: new writes to it go to the worker, reads still go where its
//!    data is;
//! 2. wait for every write sent before (`srcu.synchronize()`), so none can land behind the
//!    copy;
//! 3. assemble the block's data (what the triggering write brings, the rest read from
//!    where the block lives), write it to the destination (FUA);
//! 4. switch the entry; writes that waited are then replayed by the worker.

use crate::dm::{
    BioDetails, BlkStatus, DeferredBio, DmDev, IoBuffer, MessageError, ReqOp, ResultBuf,
};
use crate::logic::format::Change;
use crate::logic::message::{self, Message};
use crate::logic::route::Entry;
use crate::state::{Counters, Writer};
use crate::target::{Core, PerIo};
use core::fmt::Write;
use kernel::prelude::*;
use kernel::sync::atomic::{Full, Relaxed};

/// How the data of a block is assembled when it moves.
struct Move<'a> {
    /// The block's bytes; `valid` of them are already the newest data.
    buf: &'a mut IoBuffer,
    /// Byte range of `buf` that holds data to keep (from the write that triggered the move).
    valid: core::ops::Range<usize>,
}

impl Core {
    /// Runs the worker: handles every deferred bio, oldest first, until none is left.
    pub(crate) fn run_worker(&self) {
        loop {
            let mut any = false;
            for bio in self.deferred.take_all() {
                any = true;
                self.handle_deferred(bio);
            }
            if !any {
                break;
            }
        }
    }

    /// The device and first sector where the data of main block `block` is read from when
    /// its read location is `loc` (a spare block or the main device).
    fn location(&self, block: u64, loc: Option<u64>) -> (&DmDev, u64) {
        match loc {
            Some(s) => (&self.spare, self.layout().block_sector(s)),
            None => (&self.main, block << self.layout().block_shift()),
        }
    }

    /// Reads `buf[range]` of block `block` from `loc`, retrying as configured.
    fn read_block_part(
        &self,
        block: u64,
        loc: Option<u64>,
        buf: &mut IoBuffer,
        range: core::ops::Range<usize>,
    ) -> Result {
        if range.is_empty() {
            return Ok(());
        }
        let (dev, base) = self.location(block, loc);
        let sector = base + (range.start / 512) as u64;
        let mut r = Err(EIO);
        for _ in 0..=self.features.read_retries() {
            r = self.io.read(dev, sector, buf, range.start, range.len());
            if r.is_ok() {
                break;
            }
        }
        r
    }

    fn handle_deferred(&self, mut bio: DeferredBio<PerIo>) {
        let d = bio.io().details;
        let op = bio.bio().op();
        let block_bytes = self.block_bytes();
        let Ok(mut buf) = IoBuffer::new(block_bytes) else {
            bio.complete(&d, BlkStatus::IOERR);
            return;
        };
        let shift = self.layout().block_shift();
        let start = d.sector() - self.begin;
        let bytes = d.size() as usize;
        let mut ok = true;
        let mut done = 0;
        while done < bytes {
            let sector = start + (done / 512) as u64;
            let block = sector >> shift;
            let off = ((sector - (block << shift)) * 512) as usize;
            let len = (block_bytes - off).min(bytes - done);
            let r = match op {
                ReqOp::Read => self.read_piece(&mut bio, &d, block, off, done, len, &mut buf),
                // Discards are advisory: one that waited for a moving block is done.
                ReqOp::Discard => Ok(()),
                _ => self.write_piece(&mut bio, &d, op, block, off, done, len, &mut buf),
            };
            ok &= r.is_ok();
            done += len;
        }
        let status = if ok { BlkStatus::OK } else { BlkStatus::IOERR };
        bio.complete(&d, status);
    }

    /// Reads `len` bytes at `off` of block `block` into the bio at `done`, from wherever
    /// the block lives now, with retries. A block that cannot be read from the main device
    /// is marked failing; its data is never replaced by anything else.
    // The piece is described by five numbers; a struct for them would only be unpacked again.
    #[allow(clippy::too_many_arguments)]
    fn read_piece(
        &self,
        bio: &mut DeferredBio<PerIo>,
        d: &BioDetails,
        block: u64,
        off: usize,
        done: usize,
        len: usize,
        buf: &mut IoBuffer,
    ) -> Result {
        // The writer lock keeps the block where it is (and its spare block allocated)
        // while we read it.
        let mut w = self.state.writer.lock();
        let entry = self.state.entry(block);
        let loc = entry.and_then(Entry::read_location);
        if self
            .read_block_part(block, loc, buf, off..off + len)
            .is_ok()
        {
            return bio.copy_to(d, done as u32, &buf.as_slice()[off..off + len]);
        }
        Counters::inc(&self.state.counters.read_errors);
        if entry.is_none() {
            // Best effort: without memory for the mark the block is still not served.
            let _ = self.state.set(&mut w, block, Some(Entry::Failing));
        }
        Err(EIO)
    }

    /// Writes `len` bytes of the bio at `done` to block `block` at `off`, wherever it lives;
    /// if that fails (or the block is known to fail), moves the block to a new spare block
    /// with this data.
    // The piece is described by five numbers; a struct for them would only be unpacked again.
    #[allow(clippy::too_many_arguments)]
    fn write_piece(
        &self,
        bio: &mut DeferredBio<PerIo>,
        d: &BioDetails,
        op: ReqOp,
        block: u64,
        off: usize,
        done: usize,
        len: usize,
        buf: &mut IoBuffer,
    ) -> Result {
        let piece = &mut buf.as_mut_slice()[off..off + len];
        if op == ReqOp::WriteZeroes {
            piece.fill(0);
        } else {
            bio.copy_from(d, done as u32, piece)?;
        }
        let state = &self.state;
        let mut w = state.writer.lock();
        let entry = state.entry(block);
        let from = match entry {
            Some(Entry::Remapped(s)) => Some(s),
            None | Some(Entry::Failing) => None,
            // Only set with the writer lock held, which we hold.
            Some(Entry::Moving(_)) => return Err(EBUSY),
        };
        // A block known to fail is not trusted with the data: it moves straight away.
        if entry != Some(Entry::Failing) {
            let (dev, base) = self.location(block, from);
            let sector = base + (off / 512) as u64;
            if self.io.write(dev, sector, buf, off, len, false).is_ok() {
                return Ok(());
            }
            let c = &state.counters;
            Counters::inc(if from.is_some() {
                &c.spare_errors
            } else {
                &c.write_errors
            });
        }
        // When the move fails, a block whose main write failed is failing; one whose spare
        // block failed keeps it (its old data, as the write did not happen).
        let on_fail = from.map_or(Entry::Failing, Entry::Remapped);
        let mv = Move {
            buf,
            valid: off..off + len,
        };
        self.move_to_spare(&mut w, block, from, mv, on_fail)?;
        Counters::inc(&state.counters.auto_remaps);
        Ok(())
    }

    /// Moves block `block`, whose data is at `from`, to a newly allocated spare block.
    /// On failure the entry becomes `on_fail`.
    fn move_to_spare(
        &self,
        w: &mut Writer,
        block: u64,
        from: Option<u64>,
        mv: Move<'_>,
        on_fail: Entry,
    ) -> Result<u64> {
        let state = &self.state;
        state.set(w, block, Some(Entry::Moving(from)))?;
        state.srcu.synchronize();
        let block_bytes = self.block_bytes();
        let Move { buf, valid } = mv;
        let read = self
            .read_block_part(block, from, buf, 0..valid.start)
            .and_then(|()| self.read_block_part(block, from, buf, valid.end..block_bytes));
        if read.is_err() {
            Counters::inc(&state.counters.read_errors);
            let _ = state.set(w, block, Some(on_fail));
            return Err(EIO);
        }
        loop {
            let Some(s) = w.alloc.alloc() else {
                let _ = state.set(w, block, Some(on_fail));
                if !state.exhausted.xchg(true, Full) {
                    self.handle.raise_event();
                }
                return Err(ENOSPC);
            };
            let sector = self.layout().block_sector(s);
            if self
                .io
                .write(&self.spare, sector, buf, 0, block_bytes, true)
                .is_err()
            {
                Counters::inc(&state.counters.spare_errors);
                let _ = state.retire(w, s);
                let _ = state.commit(w, &self.spare, &self.io, &[Change::Retire { spare: s }]);
                continue;
            }
            // The data is durable in `s`; make the remap durable before anyone is told.
            let mut changes = [
                Change::Remap {
                    main: block,
                    spare: s,
                },
                Change::Retire { spare: 0 },
            ];
            let n = if let Some(old) = from {
                // A write to it failed: never use it again.
                let _ = state.retire(w, old);
                changes[1] = Change::Retire { spare: old };
                2
            } else {
                1
            };
            if let Err(e) = state.commit(w, &self.spare, &self.io, &changes[..n]) {
                // Some copies may hold the remap: never hand `s` out again.
                let _ = state.retire(w, s);
                let _ = state.set(w, block, Some(on_fail));
                return Err(e);
            }
            if let Err(e) = state.set(w, block, Some(Entry::Remapped(s))) {
                let _ = state.set(w, block, Some(on_fail));
                return Err(e);
            }
            return Ok(s);
        }
    }

    /// Handles `dmsetup message`.
    pub(crate) fn message(
        &self,
        argv: &[&CStr],
        out: &mut ResultBuf<'_>,
    ) -> Result<(), MessageError> {
        let mut words = KVec::with_capacity(argv.len(), GFP_KERNEL)
            .map_err(|_| MessageError::new(ENOMEM, c"out of memory"))?;
        for a in argv {
            words
                .push(a.to_bytes(), GFP_KERNEL)
                .map_err(|_| MessageError::new(ENOMEM, c"out of memory"))?;
        }
        let msg = message::parse_message(&words, self.blocks()).map_err(MessageError::invalid)?;
        // A full reply buffer makes device-mapper retry with a larger one.
        match msg {
            Message::Help => {
                let _ = out.write_str(message::HELP);
            }
            Message::Count => {
                let _ = write!(out, "{} {}", self.state.remapped(), self.state.failing());
            }
            Message::Query(b) => {
                let _ = self.write_entry(out, b, self.state.entry(b));
            }
            Message::List { start, count } => {
                let last = self.blocks().saturating_sub(1);
                let mut from = start;
                let mut n = 0u64;
                while count.is_none_or(|c| n < c) {
                    let Some((b, e)) =
                        crate::logic::route::Lookup::first_in(&*self.state, from, last)
                    else {
                        break;
                    };
                    if n > 0 && out.write_char('\n').is_err() {
                        break;
                    }
                    if self.write_entry(out, b, Some(e)).is_err() {
                        break;
                    }
                    n += 1;
                    from = b + 1;
                }
            }
            Message::ClearErrors => {
                let mut w = self.state.writer.lock();
                let last = self.blocks().saturating_sub(1);
                let mut from = 0;
                while let Some((b, e)) =
                    crate::logic::route::Lookup::first_in(&*self.state, from, last)
                {
                    if e == Entry::Failing {
                        let _ = self.state.set(&mut w, b, None);
                    }
                    from = b + 1;
                }
                let c = &self.state.counters;
                for counter in [&c.read_errors, &c.write_errors, &c.spare_errors] {
                    counter.store(0, Relaxed);
                }
            }
            Message::Remap(b) => {
                let s = self.manual_remap(b)?;
                let _ = write!(out, "{b} spare {s}");
            }
            Message::Unremap(b) => {
                self.manual_unremap(b)?;
                let _ = write!(out, "{b} main");
            }
        }
        Ok(())
    }

    fn write_entry(&self, out: &mut ResultBuf<'_>, b: u64, e: Option<Entry>) -> core::fmt::Result {
        match e {
            None => write!(out, "{b} main"),
            Some(Entry::Remapped(s)) => write!(out, "{b} spare {s}"),
            Some(Entry::Failing) => write!(out, "{b} failing"),
            Some(Entry::Moving(_)) => write!(out, "{b} moving"),
        }
    }

    /// `remap <block>`: copies the block's current data to a spare block, then remaps it.
    fn manual_remap(&self, block: u64) -> Result<u64, MessageError> {
        let state = &self.state;
        let mut w = state.writer.lock();
        let prev = state.entry(block);
        match prev {
            Some(Entry::Remapped(_)) => {
                return Err(MessageError::invalid(
                    c"remap: the block is already remapped",
                ))
            }
            Some(Entry::Moving(_)) => {
                return Err(MessageError::new(EBUSY, c"remap: the block is being moved"))
            }
            None | Some(Entry::Failing) => {}
        }
        let mut buf = IoBuffer::new(self.block_bytes())
            .map_err(|_| MessageError::new(ENOMEM, c"out of memory"))?;
        let mv = Move {
            buf: &mut buf,
            valid: 0..0,
        };
        // On failure the block goes back to what it was.
        let on_fail = prev.unwrap_or(Entry::Failing);
        let r = self.move_to_spare(&mut w, block, None, mv, on_fail);
        if r.is_err() && prev.is_none() {
            // `on_fail` could not express "no entry".
            let _ = state.set(&mut w, block, None);
        }
        match r {
            Ok(s) => {
                Counters::inc(&state.counters.manual_remaps);
                Ok(s)
            }
            Err(e) if e == ENOSPC => Err(MessageError::new(ENOSPC, c"remap: no free spare block")),
            Err(e) if e == EIO => Err(MessageError::new(
                EIO,
                c"remap: cannot read the block from the main device (a write to it remaps it)",
            )),
            Err(e) => Err(MessageError::new(
                e,
                c"remap: cannot update the remap table",
            )),
        }
    }

    /// `unremap <block>`: copies the block back to the main device and frees its spare block.
    fn manual_unremap(&self, block: u64) -> Result<(), MessageError> {
        let state = &self.state;
        let mut w = state.writer.lock();
        let Some(Entry::Remapped(s)) = state.entry(block) else {
            return Err(MessageError::invalid(c"unremap: the block is not remapped"));
        };
        let mut buf = IoBuffer::new(self.block_bytes())
            .map_err(|_| MessageError::new(ENOMEM, c"out of memory"))?;
        let fail = |w: &mut Writer, e: Error, reason: &'static CStr| {
            let _ = state.set(w, block, Some(Entry::Remapped(s)));
            MessageError::new(e, reason)
        };
        state
            .set(&mut w, block, Some(Entry::Moving(Some(s))))
            .map_err(|e| MessageError::new(e, c"unremap: cannot update the remap table"))?;
        state.srcu.synchronize();
        let block_bytes = self.block_bytes();
        if self
            .read_block_part(block, Some(s), &mut buf, 0..block_bytes)
            .is_err()
        {
            return Err(fail(&mut w, EIO, c"unremap: cannot read the spare block"));
        }
        let sector = block << self.layout().block_shift();
        if self
            .io
            .write(&self.main, sector, &mut buf, 0, block_bytes, true)
            .is_err()
        {
            return Err(fail(
                &mut w,
                EIO,
                c"unremap: the main device failed the write; the block stays remapped",
            ));
        }
        if let Err(e) = state.commit(
            &mut w,
            &self.spare,
            &self.io,
            &[Change::Unmap { main: block }],
        ) {
            return Err(fail(
                &mut w,
                e,
                c"unremap: cannot write the metadata; the block stays remapped",
            ));
        }
        let _ = state.set(&mut w, block, None);
        // Reads sent to the spare block before the switch must finish before it can be
        // handed out again.
        state.srcu.synchronize();
        let _ = w.alloc.release(s);
        state.exhausted.store(false, Relaxed);
        Ok(())
    }
}
