// SPDX-License-Identifier: GPL-2.0

//! `dmsetup message`: queries of the remap table and the moves made by hand (`remap`,
//! `unremap`, through `moves.rs`). The words are parsed by `logic::message`.

use crate::dm::{BlkStatus, MessageError, ResultBuf};
use crate::instance::Core;
use crate::logic::message::{self, Message};
use crate::logic::route::{Entry, Lookup};
use crate::moves::{self, BackError, Move};
use core::fmt::Write;
use kernel::prelude::*;
use kernel::sync::atomic::Relaxed;

/// Handles `dmsetup message` for `core`'s target.
pub(crate) fn handle(
    core: &Core,
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
    let msg = message::parse_message(&words, core.blocks()).map_err(MessageError::invalid)?;
    // A full reply buffer makes device-mapper retry with a larger one.
    match msg {
        Message::Help => {
            let _ = out.write_str(message::HELP);
        }
        Message::Count => {
            let _ = write!(out, "{} {}", core.table.remapped(), core.table.failing());
        }
        Message::Query(b) => {
            let _ = write_entry(out, b, core.table.entry(b));
        }
        Message::List { start, count } => list(core, out, start, count),
        Message::ClearErrors => clear_errors(core),
        Message::Scan(cmd) => core
            .table
            .scan
            .command(cmd)
            .map_err(MessageError::invalid)?,
        Message::Remap(b) => {
            let s = remap(core, b)?;
            let _ = write!(out, "{b} spare {s}");
        }
        Message::Unremap(b) => {
            unremap(core, b)?;
            let _ = write!(out, "{b} main");
        }
    }
    Ok(())
}

fn write_entry(out: &mut ResultBuf<'_>, b: u64, e: Option<Entry>) -> core::fmt::Result {
    match e {
        None => write!(out, "{b} main"),
        Some(Entry::Remapped(s)) => write!(out, "{b} spare {s}"),
        Some(Entry::Failing) => write!(out, "{b} failing"),
        Some(Entry::Moving(_)) => write!(out, "{b} moving"),
    }
}

/// `list [<start> [<count>]]`: the entries from block `start` on, one per line, until the
/// reply is full.
fn list(core: &Core, out: &mut ResultBuf<'_>, start: u64, count: Option<u64>) {
    let last = core.blocks().saturating_sub(1);
    let mut from = start;
    let mut n = 0u64;
    while count.is_none_or(|c| n < c) {
        let Some((b, e)) = Lookup::first_in(&*core.table, from, last) else {
            break;
        };
        if n > 0 && out.write_char('\n').is_err() {
            break;
        }
        if write_entry(out, b, Some(e)).is_err() {
            break;
        }
        n += 1;
        from = b + 1;
    }
}

/// `clear_errors`: forgets which blocks are failing and zeroes the error counters.
fn clear_errors(core: &Core) {
    let table = &core.table;
    let mut w = table.writer();
    let last = core.blocks().saturating_sub(1);
    let mut from = 0;
    while let Some((b, e)) = Lookup::first_in(&**table, from, last) {
        if e == Entry::Failing {
            let _ = table.set(&mut w, b, None);
        }
        from = b + 1;
    }
    let c = &table.counters;
    for counter in [&c.read_errors, &c.write_errors, &c.spare_errors] {
        counter.store(0, Relaxed);
    }
}

/// `remap <block>`: copies the block's current data to a spare block, then remaps it.
pub(crate) fn remap(core: &Core, block: u64) -> Result<u64, MessageError> {
    let table = &core.table;
    let mut w = table.writer();
    let prev = table.entry(block);
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
    let staged = moves::stage(core, &mut w, block, None, mv, prev, false);
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
    moves::commit_group(core, &mut w).map_err(|e| {
        MessageError::new(
            e,
            c"remap: cannot write the metadata; the block is frozen (reads work, writes fail) until it can be",
        )
    })?;
    Ok(s)
}

/// `unremap <block>`: copies the block back to the main device and frees its spare block.
pub(crate) fn unremap(core: &Core, block: u64) -> Result<(), MessageError> {
    let table = &core.table;
    let mut w = table.writer();
    let Some(Entry::Remapped(s)) = table.entry(block) else {
        return Err(MessageError::invalid(c"unremap: the block is not remapped"));
    };
    let Some(mut buf) = w.buf.take() else {
        return Err(MessageError::new(EBUSY, c"unremap: busy"));
    };
    let r = moves::move_back(core, &mut w, block, s, &mut buf);
    w.buf = Some(buf);
    r.map_err(|e| match e {
        BackError::Table(e) => MessageError::new(e, c"unremap: cannot update the remap table"),
        BackError::Read(s) => MessageError::new(
            Error::from_errno(s.to_errno()),
            c"unremap: cannot read the spare block",
        ),
        BackError::Write(s) => MessageError::new(
            Error::from_errno(s.to_errno()),
            c"unremap: the main device failed the write; the block stays remapped",
        ),
        BackError::Commit(e) => MessageError::new(
            e,
            c"unremap: cannot write the metadata; the block is frozen (reads work, writes fail) until it can be",
        ),
    })
}
