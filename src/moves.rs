// SPDX-License-Identifier: GPL-2.0

//! Moving a block: to a spare block ([`stage`], then [`commit_group`]) or back to the main
//! device ([`move_back`]). The worker, the messages (and later the scanner) move blocks only
//! through these functions.
//!
//! Every move follows one protocol, under the writer lock:
//! 1. mark the block `Moving`: new writes to it go to the worker, reads still go where its
//!    data is;
//! 2. wait for every I/O that looked the block up before (`srcu.synchronize()`: `map`
//!    enters the read section before its lookup), so none can land behind the copy;
//! 3. assemble the block's data (what the triggering write brings, the rest read from
//!    where the block lives), write it to the destination (FUA);
//! 4. record the move in the metadata (a journal record or a checkpoint, FUA), then
//!    switch the entry; writes that waited are then replayed by the worker.
//!
//! Moves to spare blocks are staged in the writer's [`Group`](crate::group::Group): their
//! data is durable in the new spare blocks, their entries stay `Moving` and the bios that
//! caused them wait. [`commit_group`] commits them all in one journal record, switches the
//! entries and completes the bios: concurrent remaps cost one metadata write, not one each.
//! A commit that fails leaves its blocks frozen (`table::Frozen`) until a checkpoint
//! records them undone.
//!
//! Only medium errors (`BlkStatus::is_medium_error`) make a block failing; any other status
//! (a lost path, an offline device, a timeout) fails the move and changes nothing.

use crate::dm::{rw_block, BlkStatus, BlockBuffer, DataOp, DeferredList};
use crate::group::Staged;
use crate::instance::{Core, Event};
use crate::logic::format::Change;
use crate::logic::route::Entry;
use crate::table::Writer;
use core::ops::Range;
use kernel::prelude::*;
use kernel::sync::atomic::{Full, Relaxed};

/// How the data of a block is assembled when it moves.
pub(crate) struct Move<'a> {
    /// The block's bytes; `valid` of them are already the newest data.
    pub(crate) buf: &'a mut BlockBuffer,
    /// Byte range of `buf` that holds data to keep (from the write that triggered the move).
    pub(crate) valid: Range<usize>,
}

/// Moves block `block`, whose data is at `from`, to a newly allocated spare block and
/// stages the move in the group; [`commit_group`] makes it durable and switches the entry.
/// If the move fails before it is staged the entry becomes `undo` (or `Failing`, when the
/// block's main data turned out unreadable); `NOSPC` says that no spare block was free. The
/// group must have room (not [`Group::is_full`](crate::group::Group::is_full)). `auto`: the
/// worker moves the block because a write failed (not a message).
pub(crate) fn stage(
    core: &Core,
    w: &mut Writer,
    block: u64,
    from: Option<u64>,
    mv: Move<'_>,
    undo: Option<Entry>,
    auto: bool,
) -> Result<u64, BlkStatus> {
    let table = &core.table;
    let prior = table.entry(block);
    table
        .set(w, block, Some(Entry::Moving(from)))
        .map_err(|_| BlkStatus::RESOURCE)?;
    table.srcu.synchronize();
    let block_bytes = core.block_bytes();
    let Move { buf, valid } = mv;
    let read = core
        .read_block_part(block, from, buf, 0..valid.start)
        .and_then(|()| core.read_block_part(block, from, buf, valid.end..block_bytes));
    if let Err(s) = read {
        let after = if !s.is_medium_error() {
            prior
        } else if from.is_none() {
            core.count(Event::MainReadError);
            Some(Entry::Failing)
        } else {
            core.count(Event::SpareError);
            undo
        };
        let _ = table.set(w, block, after);
        return Err(s);
    }
    let spare = loop {
        let Some(s) = w.alloc.alloc() else {
            let _ = table.set(w, block, undo);
            if !table.exhausted.xchg(true, Full) {
                core.handle.raise_event();
            }
            return Err(BlkStatus::NOSPC);
        };
        let sector = core.layout().block_sector(s);
        let op = DataOp::Write { fua: true };
        match rw_block(&core.spare, sector, buf, 0..block_bytes, op) {
            Ok(()) => break s,
            Err(e) if e.is_medium_error() => {
                core.count(Event::SpareError);
                let _ = table.retire(w, s);
                // Recorded with the group while there is room beyond this move's own
                // two changes; otherwise the next checkpoint records it (until then,
                // after a crash, the block could be handed out again and would fail
                // again).
                w.group.record(Change::Retire { spare: s }, 2);
            }
            // The spare device itself is unreachable: do not burn its blocks.
            Err(e) => {
                let _ = w.alloc.release(s);
                let _ = table.set(w, block, prior);
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

/// Commits the staged moves in one journal record (or a checkpoint), switches their
/// entries and completes the bios that waited for them. On failure the moves' spare
/// blocks are retired (some copies may hold the remap), their blocks stay frozen until
/// a checkpoint records them undone, and the bios fail.
pub(crate) fn commit_group(core: &Core, w: &mut Writer) -> Result {
    if w.group.is_empty() {
        return Ok(());
    }
    let table = &core.table;
    // Taken out of the group while the commit needs the whole writer state; put back
    // (emptied, keeping their capacity) below.
    let mut changes = core::mem::take(&mut w.group.changes);
    let mut moves = core::mem::take(&mut w.group.moves);
    let mut r = if changes.is_empty() {
        Ok(())
    } else {
        core.commit(w, &changes)
    };
    for m in moves.iter() {
        if r.is_ok() {
            if let Err(e) = table.set(w, m.block, Some(Entry::Remapped(m.spare))) {
                // Committed, but not recordable in memory: undo it on disk too.
                r = Err(e);
            } else {
                if let Some(old) = m.retire {
                    let _ = table.retire(w, old);
                }
                core.count(if m.auto {
                    Event::AutoRemap
                } else {
                    Event::ManualRemap
                });
                continue;
            }
        }
        let _ = table.retire(w, m.spare);
        table.freeze(w, m.block, m.undo);
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

/// Why [`move_back`] failed.
pub(crate) enum BackError {
    /// The table could not be updated (no memory); nothing changed.
    Table(Error),
    /// The spare block could not be read; the block stays remapped.
    Read(BlkStatus),
    /// The main device failed the write; the block stays remapped.
    Write(BlkStatus),
    /// The metadata could not be written; the block is frozen (reads work, writes fail)
    /// until a checkpoint succeeds.
    Commit(Error),
}

/// Moves block `block`, remapped to spare block `s`, back to the main device and frees `s`.
/// The group must be empty (the move is committed on its own).
pub(crate) fn move_back(
    core: &Core,
    w: &mut Writer,
    block: u64,
    s: u64,
    buf: &mut BlockBuffer,
) -> Result<(), BackError> {
    let table = &core.table;
    table
        .set(w, block, Some(Entry::Moving(Some(s))))
        .map_err(BackError::Table)?;
    table.srcu.synchronize();
    let all = 0..core.block_bytes();
    let copied = core
        .read_block_part(block, Some(s), buf, all.clone())
        .map_err(BackError::Read)
        .and_then(|()| {
            let sector = block << core.layout().block_shift();
            let op = DataOp::Write { fua: true };
            rw_block(&core.main, sector, buf, all, op).map_err(BackError::Write)
        });
    if let Err(e) = copied {
        let _ = table.set(w, block, Some(Entry::Remapped(s)));
        return Err(e);
    }
    if let Err(e) = core.commit(w, &[Change::Unmap { main: block }]) {
        table.freeze(w, block, Some(Entry::Remapped(s)));
        return Err(BackError::Commit(e));
    }
    if table.set(w, block, None).is_err() {
        // No memory to drop the entry (`RemapTable::set`): it stays `Moving(s)`, reads
        // still go to `s`, so `s` is not freed (until the table is loaded again).
        return Ok(());
    }
    // Reads sent to the spare block before the switch must finish before it can be
    // handed out again.
    table.srcu.synchronize();
    let _ = w.alloc.release(s);
    table.exhausted.store(false, Relaxed);
    Ok(())
}
