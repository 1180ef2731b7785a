// SPDX-License-Identifier: GPL-2.0

//! The target's worker: where failed I/O and writes to moving blocks go. It retries reads,
//! rewrites writes, and turns a write that fails with a medium error into a move of its
//! block to a spare block (`moves.rs`). It runs in process context and may sleep.
//!
//! The worker takes every deferred bio at once and holds the writer lock for the batch.
//! The moves it makes for them are staged in one group, committed at the end of the batch
//! (or earlier, when the group is full or a bio touches a staged block), and the bios that
//! caused them complete after that commit.

use crate::dm::{rw_block, BioDetails, BlkStatus, BlockBuffer, DataOp, DeferredBio, ReqOp};
use crate::group::GROUP_ROUNDS;
use crate::instance::{Core, Event};
use crate::logic::route::Entry;
use crate::moves::{self, Move};
use crate::per_io::PerIo;
use crate::table::Writer;
use core::ops::Range;
use kernel::block::SECTOR_SHIFT;
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::workqueue::WorkItem;

impl WorkItem for Core {
    type Pointer = Arc<Core>;

    fn run(this: Arc<Core>) {
        run(&this);
    }
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

/// The first failure of a bio's pieces is the one it completes with.
fn first_error(status: &mut BlkStatus, e: BlkStatus) {
    if status.is_ok() {
        *status = e;
    }
}

/// Runs the worker: handles every deferred bio, oldest first, until none is left.
fn run(core: &Core) {
    loop {
        let mut batch = core.deferred.take_all();
        if batch.is_empty() {
            break;
        }
        let mut w = core.table.writer();
        // Present whenever the writer lock is free; only its holder takes it.
        let Some(mut buf) = w.buf.take() else {
            drop(batch);
            continue;
        };
        // Frozen blocks thaw with the first checkpoint that succeeds; try one now, as
        // writes to them may be waiting. With the spare still failing it stops at its
        // first piece.
        if w.has_frozen() {
            let _ = core.table.checkpoint(&mut w, &core.spare, &core.io);
        }
        let mut rounds = 1;
        loop {
            for bio in batch {
                handle(core, &mut w, bio, &mut buf);
            }
            // Bios that failed while this batch was handled join its group, for a few
            // rounds, so a burst of failing writes shares commits.
            if w.group.moves.is_empty() || rounds == GROUP_ROUNDS {
                break;
            }
            batch = core.deferred.take_all();
            if batch.is_empty() {
                break;
            }
            rounds += 1;
        }
        let _ = moves::commit_group(core, &mut w);
        w.buf = Some(buf);
    }
}

/// Handles one deferred bio, piece by piece (one piece per block): completes it, or holds
/// it in the group when a move was staged for it.
fn handle(core: &Core, w: &mut Writer, mut bio: DeferredBio<PerIo>, buf: &mut BlockBuffer) {
    let io = *bio.io();
    let d = io.details;
    let op = bio.bio().op();
    let block_bytes = core.block_bytes();
    let shift = core.layout().block_shift();
    let start = d.sector() - core.begin;
    let bytes = d.size() as usize;
    let mut status = BlkStatus::OK;
    // Whether a move for this bio is staged in the current group.
    let mut staged = false;
    let mut done = 0;
    while done < bytes {
        let sector = start + (done >> SECTOR_SHIFT) as u64;
        let block = sector >> shift;
        let off = ((sector - (block << shift)) << SECTOR_SHIFT) as usize;
        let len = (block_bytes - off).min(bytes - done);
        // A staged block must be committed before it is read or written again.
        if w.group.stages(block) || w.group.is_full() {
            let r = moves::commit_group(core, w);
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
            ReqOp::Read => read_piece(core, w, &mut bio, &d, piece, buf),
            // Discards are advisory: one that waited for a moving block is done.
            ReqOp::Discard => Ok(false),
            _ => write_piece(core, w, &mut bio, &io, op, piece, buf),
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
    core: &Core,
    w: &mut Writer,
    bio: &mut DeferredBio<PerIo>,
    d: &BioDetails,
    p: Piece,
    buf: &mut BlockBuffer,
) -> Result<bool, BlkStatus> {
    let (block, range) = (p.block, p.range());
    let entry = core.table.entry(block);
    let loc = entry.and_then(Entry::read_location);
    match core.read_block_part(block, loc, buf, range.clone()) {
        Ok(()) => {
            bio.copy_to(d, p.done as u32, &buf.as_slice()[range])
                .map_err(|_| BlkStatus::IOERR)?;
            Ok(false)
        }
        Err(s) if !s.is_medium_error() => Err(s),
        Err(s) => {
            core.count(Event::MainReadError);
            if entry.is_none() {
                // Best effort: without memory for the mark the block is still not served.
                let _ = core.table.set(w, block, Some(Entry::Failing));
            }
            Err(s)
        }
    }
}

/// Writes the piece of the bio to its block, wherever the block lives (with the bio's
/// FUA); if that fails with a medium error (or the block is known to fail), stages a
/// move of the block to a new spare block with this data: **where a failing write becomes
/// a remap**. Returns whether a move was staged (the bio must wait for the group's commit).
fn write_piece(
    core: &Core,
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
    let entry = core.table.entry(block);
    let from = match entry {
        Some(Entry::Remapped(s)) => Some(s),
        None | Some(Entry::Failing) => None,
        // Staged moves are committed before their block is touched again (see
        // `handle`), so this is a frozen block: not writable until thawed.
        Some(Entry::Moving(_)) => return Err(BlkStatus::IOERR),
    };
    // A block known to fail is not trusted with the data: it moves straight away.
    if entry != Some(Entry::Failing) {
        let (dev, base) = core.location(block, from);
        let sector = base + (off >> SECTOR_SHIFT) as u64;
        let op = DataOp::Write { fua: io.fua };
        match rw_block(dev, sector, buf, p.range(), op) {
            Ok(()) => return Ok(false),
            Err(s) if !s.is_medium_error() => return Err(s),
            Err(_) => core.count(if from.is_some() {
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
    match moves::stage(core, w, block, from, mv, undo, true) {
        Ok(_) => Ok(true),
        // Documented as EIO: the write failed; status says why (`exhausted`).
        Err(BlkStatus::NOSPC) => Err(BlkStatus::IOERR),
        Err(e) => Err(e),
    }
}
