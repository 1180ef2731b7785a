// SPDX-License-Identifier: GPL-2.0

//! The slow path: retrying failed reads, remapping blocks whose writes fail, and the
//! messages that move blocks by hand. Everything here runs in process context (the
//! target's worker or the message ioctl) and may sleep.
//!
//! Moving a block (to a spare block, to another spare block, or back to main) follows one
//! protocol, under the writer lock:
//! 1. mark the block `Moving`: new writes to it go to the worker, reads still go where its
//!    data is;
//! 2. wait for every I/O that looked the block up before (`srcu.synchronize()`: `map`
//!    enters the read section before its lookup), so none can land behind the copy;
//! 3. assemble the block's data (what the triggering write brings, the rest read from
//!    where the block lives), write it to the destination (FUA);
//! 4. record the remap in the metadata (a journal record or a checkpoint, FUA), then
//!    switch the entry; writes that waited are then replayed by the worker.
//!
//! The worker takes every deferred bio at once and holds the writer lock for the batch.
//! Moves it makes for them are staged ([`Group`]): their data is durable in the new spare
//! blocks, their entries stay `Moving` and the bios wait. At the end of the batch (or
//! earlier, when the group is full or a bio touches a staged block) one journal record
//! commits them all, the entries switch and the bios complete: concurrent remaps cost one
//! metadata write, not one each. A commit that fails leaves its blocks frozen
//! (`state::Frozen`) until a checkpoint records them undone.
//!
//! Only medium errors (`BlkStatus::is_medium_error`) make a block failing or move it;
//! any other status (a lost path, an offline device, a timeout) fails the piece with that
//! status and changes nothing.

use crate::clock::now_ns;
use crate::dm::{
    rw_block, BioDetails, BlkStatus, BlockBuffer, DataOp, DeferredBio, DeferredList, DmDev,
    MessageError, ReqOp, ResultBuf,
};
use crate::group::{Staged, GROUP_ROUNDS};
use crate::logic::format::Change;
use crate::logic::message::{self, Message};
use crate::logic::route::Entry;
use crate::logic::stats::Slot;
use crate::per_io::PerIo;
use crate::state::{Counters, Writer};
use crate::target::Core;
use core::fmt::Write;
use core::ops::Range;
use kernel::prelude::*;
use kernel::sync::atomic::{Full, Relaxed};

/// How the data of a block is assembled when it moves.
struct Move<'a> {
    /// The block's bytes; `valid` of them are already the newest data.
    buf: &'a mut BlockBuffer,
    /// Byte range of `buf` that holds data to keep (from the write that triggered the move).
    valid: Range<usize>,
}

/// A piece of a bio that lies in one block.
#[derive(Clone, Copy)]
struct Piece {
    /// Main block.
    block: u64,
    /// Byte offset of the piece in the block.
    off: usize,
    /// Byte offset of the piece in the bio's data.
    done: usize,
    /// Bytes.
    len: usize,
}

impl Piece {
    /// The piece's bytes within its block.
    fn range(&self) -> Range<usize> {
        self.off..self.off + self.len
    }
}

/// Events counted both in the table's counters (`dmsetup status`, kept with the table
/// across reloads) and in the device's statistics (sysfs, reset with `stats/reset`).
#[derive(Clone, Copy)]
enum Event {
    MainReadError,
    MainWriteError,
    SpareError,
    AutoRemap,
    ManualRemap,
}

/// The first failure of a bio's pieces is the one it completes with.
fn first_error(status: &mut BlkStatus, e: BlkStatus) {
    if status.is_ok() {
        *status = e;
    }
}

impl Core {
    /// Counts `e`.
    fn count(&self, e: Event) {
        let c = &self.state.counters;
        let (counter, slot) = match e {
            Event::MainReadError => (&c.read_errors, Slot::MainReadErrors),
            Event::MainWriteError => (&c.write_errors, Slot::MainWriteErrors),
            Event::SpareError => (&c.spare_errors, Slot::SpareErrors),
            Event::AutoRemap => (&c.auto_remaps, Slot::AutoRemaps),
            Event::ManualRemap => (&c.manual_remaps, Slot::ManualRemaps),
        };
        Counters::inc(counter);
        self.dev.stats.count(slot);
    }

    /// Commits `changes` to the metadata, timed and counted in the device's statistics.
    fn commit(&self, w: &mut Writer, changes: &[Change]) -> Result {
        let state = &self.state;
        let (start, bytes) = (now_ns(), state.meta_bytes.load(Relaxed));
        let r = state.commit(w, &self.spare, &self.io, changes);
        if r.is_ok() {
            let written = state.meta_bytes.load(Relaxed).wrapping_sub(bytes);
            self.dev
                .stats
                .commit_done(now_ns().saturating_sub(start), written);
        }
        r
    }

    /// Runs the worker: handles every deferred bio, oldest first, until none is left.
    pub(crate) fn run_worker(&self) {
        loop {
            let mut batch = self.deferred.take_all();
            if batch.is_empty() {
                break;
            }
            let mut w = self.state.writer();
            // Present whenever the writer lock is free; only its holder takes it.
            let Some(mut buf) = w.buf.take() else {
                drop(batch);
                continue;
            };
            // Frozen blocks thaw with the first checkpoint that succeeds; try one now, as
            // writes to them may be waiting. With the spare still failing it stops at its
            // first piece.
            if !w.frozen.is_empty() {
                let _ = self.state.checkpoint(&mut w, &self.spare, &self.io);
            }
            let mut rounds = 1;
            loop {
                for bio in batch {
                    self.handle_deferred(&mut w, bio, &mut buf);
                }
                // Bios that failed while this batch was handled join its group, for a few
                // rounds, so a burst of failing writes shares commits.
                if w.group.moves.is_empty() || rounds == GROUP_ROUNDS {
                    break;
                }
                batch = self.deferred.take_all();
                if batch.is_empty() {
                    break;
                }
                rounds += 1;
            }
            let _ = self.commit_group(&mut w);
            w.buf = Some(buf);
        }
    }

    /// Commits the staged moves in one journal record (or a checkpoint), switches their
    /// entries and completes the bios that waited for them. On failure the moves' spare
    /// blocks are retired (some copies may hold the remap), their blocks stay frozen until
    /// a checkpoint records them undone, and the bios fail.
    fn commit_group(&self, w: &mut Writer) -> Result {
        if w.group.is_empty() {
            return Ok(());
        }
        let state = &self.state;
        // Taken out of the group while the commit needs the whole writer state; put back
        // (emptied, keeping their capacity) below.
        let mut changes = core::mem::take(&mut w.group.changes);
        let mut moves = core::mem::take(&mut w.group.moves);
        let mut r = if changes.is_empty() {
            Ok(())
        } else {
            self.commit(w, &changes)
        };
        for m in moves.iter() {
            if r.is_ok() {
                if let Err(e) = state.set(w, m.block, Some(Entry::Remapped(m.spare))) {
                    // Committed, but not recordable in memory: undo it on disk too.
                    r = Err(e);
                } else {
                    if let Some(old) = m.retire {
                        let _ = state.retire(w, old);
                    }
                    self.count(if m.auto {
                        Event::AutoRemap
                    } else {
                        Event::ManualRemap
                    });
                    continue;
                }
            }
            let _ = state.retire(w, m.spare);
            state.freeze(w, m.block, m.undo);
        }
        changes.clear();
        moves.clear();
        w.group.changes = changes;
        w.group.moves = moves;
        let held = core::mem::replace(&mut w.group.held, DeferredList::new());
        for mut bio in held {
            let io = *bio.io();
            let status = match r {
                Ok(()) => io.pieces_status,
                Err(_) => BlkStatus::IOERR,
            };
            bio.complete(&io.details, status);
        }
        r
    }

    /// The device and first sector where the data of main block `block` is read from when
    /// its read location is `loc` (a spare block or the main device).
    fn location(&self, block: u64, loc: Option<u64>) -> (&DmDev, u64) {
        match loc {
            Some(s) => (&self.spare, self.layout().block_sector(s)),
            None => (&self.main, block << self.layout().block_shift()),
        }
    }

    /// Reads `buf[range]` of block `block` from `loc`, retrying medium errors as
    /// configured.
    fn read_block_part(
        &self,
        block: u64,
        loc: Option<u64>,
        buf: &mut BlockBuffer,
        range: Range<usize>,
    ) -> Result<(), BlkStatus> {
        if range.is_empty() {
            return Ok(());
        }
        let (dev, base) = self.location(block, loc);
        let sector = base + (range.start / 512) as u64;
        let mut r = Err(BlkStatus::IOERR);
        for _ in 0..=self.features.read_retries() {
            r = rw_block(dev, sector, buf, range.clone(), DataOp::Read);
            match r {
                Err(s) if s.is_medium_error() => {}
                _ => break,
            }
        }
        r
    }

    fn handle_deferred(&self, w: &mut Writer, mut bio: DeferredBio<PerIo>, buf: &mut BlockBuffer) {
        let io = *bio.io();
        let d = io.details;
        let op = bio.bio().op();
        let block_bytes = self.block_bytes();
        let shift = self.layout().block_shift();
        let start = d.sector() - self.begin;
        let bytes = d.size() as usize;
        let mut status = BlkStatus::OK;
        // Whether a move for this bio is staged in the current group.
        let mut staged = false;
        let mut done = 0;
        while done < bytes {
            let sector = start + (done / 512) as u64;
            let block = sector >> shift;
            let off = ((sector - (block << shift)) * 512) as usize;
            let len = (block_bytes - off).min(bytes - done);
            // A staged block must be committed before it is read or written again.
            if w.group.stages(block) || w.group.is_full() {
                let r = self.commit_group(w);
                if staged {
                    if r.is_err() {
                        first_error(&mut status, BlkStatus::IOERR);
                    }
                    staged = false;
                }
            }
            let piece = Piece {
                block,
                off,
                done,
                len,
            };
            let r = match op {
                ReqOp::Read => self.read_piece(w, &mut bio, &d, piece, buf),
                // Discards are advisory: one that waited for a moving block is done.
                ReqOp::Discard => Ok(false),
                _ => self.write_piece(w, &mut bio, &io, op, piece, buf),
            };
            match r {
                Ok(s) => staged |= s,
                Err(e) => first_error(&mut status, e),
            }
            done += len;
        }
        if staged {
            bio.io().pieces_status = status;
            w.group.held.push_front(bio);
        } else {
            bio.complete(&d, status);
        }
    }

    /// Reads the piece into the bio from wherever the block lives now, with retries. A
    /// block that cannot be read from the main device because of a medium error is marked
    /// failing; its data is never replaced by anything else. Returns `false` (nothing
    /// staged).
    ///
    /// The writer lock (`w`) keeps the block where it is, and its spare block allocated,
    /// while it is read.
    fn read_piece(
        &self,
        w: &mut Writer,
        bio: &mut DeferredBio<PerIo>,
        d: &BioDetails,
        p: Piece,
        buf: &mut BlockBuffer,
    ) -> Result<bool, BlkStatus> {
        let (block, range) = (p.block, p.range());
        let entry = self.state.entry(block);
        let loc = entry.and_then(Entry::read_location);
        match self.read_block_part(block, loc, buf, range.clone()) {
            Ok(()) => {
                bio.copy_to(d, p.done as u32, &buf.as_slice()[range])
                    .map_err(|_| BlkStatus::IOERR)?;
                Ok(false)
            }
            Err(s) if !s.is_medium_error() => Err(s),
            Err(s) => {
                self.count(Event::MainReadError);
                if entry.is_none() {
                    // Best effort: without memory for the mark the block is still not served.
                    let _ = self.state.set(w, block, Some(Entry::Failing));
                }
                Err(s)
            }
        }
    }

    /// Writes the piece of the bio to its block, wherever the block lives (with the bio's
    /// FUA); if that fails with a medium error (or the block is known to fail), stages a
    /// move of the block to a new spare block with this data. Returns whether a move was
    /// staged (the bio must wait for the group's commit).
    fn write_piece(
        &self,
        w: &mut Writer,
        bio: &mut DeferredBio<PerIo>,
        io: &PerIo,
        op: ReqOp,
        p: Piece,
        buf: &mut BlockBuffer,
    ) -> Result<bool, BlkStatus> {
        let Piece { block, off, .. } = p;
        let piece = &mut buf.as_mut_slice()[p.range()];
        if op == ReqOp::WriteZeroes {
            piece.fill(0);
        } else {
            bio.copy_from(&io.details, p.done as u32, piece)
                .map_err(|_| BlkStatus::IOERR)?;
        }
        let state = &self.state;
        let entry = state.entry(block);
        let from = match entry {
            Some(Entry::Remapped(s)) => Some(s),
            None | Some(Entry::Failing) => None,
            // Staged moves are committed before their block is touched again (see
            // `handle_deferred`), so this is a frozen block: not writable until thawed.
            Some(Entry::Moving(_)) => return Err(BlkStatus::IOERR),
        };
        // A block known to fail is not trusted with the data: it moves straight away.
        if entry != Some(Entry::Failing) {
            let (dev, base) = self.location(block, from);
            let sector = base + (off / 512) as u64;
            let op = DataOp::Write { fua: io.fua };
            match rw_block(dev, sector, buf, p.range(), op) {
                Ok(()) => return Ok(false),
                Err(s) if !s.is_medium_error() => return Err(s),
                Err(_) => self.count(if from.is_some() {
                    Event::SpareError
                } else {
                    Event::MainWriteError
                }),
            }
        }
        // When the move fails, a block whose main write failed is failing; one whose spare
        // block failed keeps it (its old data, as the write did not happen).
        let undo = Some(from.map_or(Entry::Failing, Entry::Remapped));
        let mv = Move {
            buf,
            valid: p.range(),
        };
        match self.stage_move(w, block, from, mv, undo, true) {
            Ok(_) => Ok(true),
            // Documented as EIO: the write failed; status says why (`exhausted`).
            Err(BlkStatus::NOSPC) => Err(BlkStatus::IOERR),
            Err(e) => Err(e),
        }
    }

    /// Moves block `block`, whose data is at `from`, to a newly allocated spare block and
    /// stages the move in the group; [`Core::commit_group`] makes it durable and switches
    /// the entry. If the move fails before it is staged the entry becomes `undo` (or
    /// `Failing`, when the block's main data turned out unreadable); `NOSPC` says that no
    /// spare block was free. The group must have room (not [`Group::is_full`]).
    fn stage_move(
        &self,
        w: &mut Writer,
        block: u64,
        from: Option<u64>,
        mv: Move<'_>,
        undo: Option<Entry>,
        auto: bool,
    ) -> Result<u64, BlkStatus> {
        let state = &self.state;
        let prior = state.entry(block);
        state
            .set(w, block, Some(Entry::Moving(from)))
            .map_err(|_| BlkStatus::RESOURCE)?;
        state.srcu.synchronize();
        let block_bytes = self.block_bytes();
        let Move { buf, valid } = mv;
        let read = self
            .read_block_part(block, from, buf, 0..valid.start)
            .and_then(|()| self.read_block_part(block, from, buf, valid.end..block_bytes));
        if let Err(s) = read {
            let after = if !s.is_medium_error() {
                prior
            } else if from.is_none() {
                self.count(Event::MainReadError);
                Some(Entry::Failing)
            } else {
                self.count(Event::SpareError);
                undo
            };
            let _ = state.set(w, block, after);
            return Err(s);
        }
        let spare = loop {
            let Some(s) = w.alloc.alloc() else {
                let _ = state.set(w, block, undo);
                if !state.exhausted.xchg(true, Full) {
                    self.handle.raise_event();
                }
                return Err(BlkStatus::NOSPC);
            };
            let sector = self.layout().block_sector(s);
            let op = DataOp::Write { fua: true };
            match rw_block(&self.spare, sector, buf, 0..block_bytes, op) {
                Ok(()) => break s,
                Err(e) if e.is_medium_error() => {
                    self.count(Event::SpareError);
                    let _ = state.retire(w, s);
                    // Recorded with the group while there is room beyond this move's own
                    // two changes; otherwise the next checkpoint records it (until then,
                    // after a crash, the block could be handed out again and would fail
                    // again).
                    w.group.record(Change::Retire { spare: s }, 2);
                }
                // The spare device itself is unreachable: do not burn its blocks.
                Err(e) => {
                    let _ = w.alloc.release(s);
                    let _ = state.set(w, block, prior);
                    return Err(e);
                }
            }
        };
        // The data is durable in `spare`; the remap is made durable with the group before
        // anyone is told.
        w.group.record(Change::Remap { main: block, spare }, 0);
        if let Some(old) = from {
            // A write to it failed: never use it again (once the move is committed).
            w.group.record(Change::Retire { spare: old }, 0);
        }
        w.group.stage(Staged {
            block,
            spare,
            retire: from,
            undo,
            auto,
        });
        Ok(spare)
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
                let mut w = self.state.writer();
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
        let mut w = state.writer();
        let prev = state.entry(block);
        match prev {
            Some(Entry::Remapped(_)) => {
                return Err(MessageError::invalid(
                    c"remap: the block is already remapped",
                ))
            }
            Some(Entry::Moving(_)) => {
                return Err(MessageError::new(
                    EBUSY,
                    c"remap: the block is being moved or is frozen after a failed metadata write",
                ))
            }
            None | Some(Entry::Failing) => {}
        }
        let Some(mut buf) = w.buf.take() else {
            return Err(MessageError::new(EBUSY, c"remap: busy"));
        };
        let mv = Move {
            buf: &mut buf,
            valid: 0..0,
        };
        let staged = self.stage_move(&mut w, block, None, mv, prev, false);
        w.buf = Some(buf);
        let s = staged.map_err(|e| {
            if e == BlkStatus::NOSPC {
                MessageError::new(ENOSPC, c"remap: no free spare block")
            } else if e.is_medium_error() {
                MessageError::new(
                    EIO,
                    c"remap: cannot read the block (a write to it remaps it)",
                )
            } else {
                MessageError::new(
                    Error::from_errno(e.to_errno()),
                    c"remap: a device failed (not a medium error); nothing changed",
                )
            }
        })?;
        self.commit_group(&mut w).map_err(|e| {
            MessageError::new(
                e,
                c"remap: cannot write the metadata; the block is frozen (reads work, writes fail) until it can be",
            )
        })?;
        Ok(s)
    }

    /// `unremap <block>`: copies the block back to the main device and frees its spare block.
    fn manual_unremap(&self, block: u64) -> Result<(), MessageError> {
        let state = &self.state;
        let mut w = state.writer();
        let Some(Entry::Remapped(s)) = state.entry(block) else {
            return Err(MessageError::invalid(c"unremap: the block is not remapped"));
        };
        let Some(mut buf) = w.buf.take() else {
            return Err(MessageError::new(EBUSY, c"unremap: busy"));
        };
        let r = self.unremap_copy(&mut w, block, s, &mut buf);
        w.buf = Some(buf);
        r?;
        if let Err(e) = self.commit(&mut w, &[Change::Unmap { main: block }]) {
            state.freeze(&mut w, block, Some(Entry::Remapped(s)));
            return Err(MessageError::new(
                e,
                c"unremap: cannot write the metadata; the block is frozen (reads work, writes fail) until it can be",
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

    /// The first steps of `unremap`: marks the block moving, waits for the I/O that looked
    /// it up, copies spare block `s` back to main (FUA). On failure the block stays
    /// remapped.
    fn unremap_copy(
        &self,
        w: &mut Writer,
        block: u64,
        s: u64,
        buf: &mut BlockBuffer,
    ) -> Result<(), MessageError> {
        let state = &self.state;
        let fail = |w: &mut Writer, e: BlkStatus, reason: &'static CStr| {
            let _ = state.set(w, block, Some(Entry::Remapped(s)));
            MessageError::new(Error::from_errno(e.to_errno()), reason)
        };
        state
            .set(w, block, Some(Entry::Moving(Some(s))))
            .map_err(|e| MessageError::new(e, c"unremap: cannot update the remap table"))?;
        state.srcu.synchronize();
        let all = 0..self.block_bytes();
        if let Err(e) = self.read_block_part(block, Some(s), buf, all.clone()) {
            return Err(fail(w, e, c"unremap: cannot read the spare block"));
        }
        let sector = block << self.layout().block_shift();
        let op = DataOp::Write { fua: true };
        if let Err(e) = rw_block(&self.main, sector, buf, all, op) {
            return Err(fail(
                w,
                e,
                c"unremap: the main device failed the write; the block stays remapped",
            ));
        }
        Ok(())
    }
}
