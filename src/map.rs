// SPDX-License-Identifier: GPL-2.0

//! Where a bio is routed ([`route`], the body of `map`) and where a completion with a
//! medium error goes back to the worker ([`complete`], the body of `end_io`).
//!
//! `route` sends every bio to where its blocks live (rules in `logic::route`), accepting
//! only the front of a bio that reaches a remapped block. Writes to failing or moving
//! blocks are deferred to the worker (`worker.rs`).

use crate::dm::{Bio, BlkStatus, EndIoResult, MapResult, ReqOp};
use crate::instance::Core;
use crate::logic::route::{Access, Destination};
use crate::logic::stats::Slot;
use crate::per_io::PerIo;
use crate::stats::IoKind;
use crate::table::Filtered;

/// Which flush bio goes where: device-mapper sends `FLUSH_BIOS` empty flushes per flush,
/// numbered by `target_bio_nr`. Number 0 goes to the main device, number 1 to the spare.
const FLUSH_BIO_MAIN: u32 = 0;
pub(crate) const FLUSH_BIOS: u32 = 2;

/// Routes `bio` (`map` without the instrumentation); sets what the instrumentation needs to
/// know.
pub(crate) fn route(core: &Core, bio: &mut Bio, io: &mut PerIo) -> MapResult {
    let sectors = bio.sectors();
    if sectors == 0 {
        return route_flush(core, bio, io);
    }
    let (access, kind) = match bio.op() {
        ReqOp::Read => (Access::Read, IoKind::Read),
        ReqOp::Write => (Access::Write, IoKind::Write),
        ReqOp::WriteZeroes => (Access::Write, IoKind::WriteZeroes),
        ReqOp::Discard => (Access::Write, IoKind::Discard),
        // Secure erase is not enabled (num_secure_erase_bios is 0) and zone operations
        // cannot reach a target that does not declare zone support.
        _ => {
            core.dev.stats.count(Slot::ErrorsReturned);
            return MapResult::Kill;
        }
    };
    io.timing.kind = kind;
    io.fua = bio.is_fua();
    let rel = bio.sector() - core.begin;
    let table = &core.table;
    let write = access == Access::Write;
    let shift = core.layout().block_shift();
    // A read asks the filter before the read section (below), a write inside it.
    let read_filtered = (!write).then(|| table.filter(rel, sectors, shift));
    if let Some(Filtered::Clear) = read_filtered {
        // Reads of blocks without an entry go to the main device and need no read
        // section (below): nothing is freed or overwritten under them, and a move that
        // starts now copies what the main device has whether or not it waits for
        // them. Nearly all reads, once the filter has answered.
        #[cfg(dmr_test_hooks)]
        crate::test_hooks::after_lookup(rel >> shift);
        bio.set_dev(&core.main);
        bio.set_sector(rel);
        io.details = bio.record();
        return MapResult::Remapped;
    }
    // The read section is entered before the table is looked at: a move that marks a
    // block `Moving` after this point waits (`synchronize_srcu`) for this bio, and one
    // that marked it before is seen by the lookup. Entering after the lookup would let
    // a write routed to main land behind a move's copy, or a read go to a spare block
    // that was freed and reused meanwhile.
    let token = table.srcu.down_read();
    // A write asks the filter here, inside the section (an answer from before it could
    // miss a move that marked the block meanwhile); a read that got here was told
    // "maybe" already and goes to the index (one block) or the tree.
    let filtered = read_filtered.unwrap_or_else(|| table.filter(rel, sectors, shift));
    let r = table.route(filtered, rel, sectors, shift, access);
    #[cfg(dmr_test_hooks)]
    crate::test_hooks::after_lookup(rel >> shift);
    bio.accept_partial(r.sectors);
    io.details = bio.record();
    match r.dest {
        Destination::Worker { .. } => {
            table.srcu.up_read(token);
            io.timing.remap_hit = true;
            io.owned = true;
            return MapResult::Defer;
        }
        Destination::Main => {
            bio.set_dev(&core.main);
            bio.set_sector(rel);
            if !write {
                table.srcu.up_read(token);
                return MapResult::Remapped;
            }
        }
        Destination::Spare { block, offset } => {
            bio.set_dev(&core.spare);
            bio.set_sector(core.layout().block_sector(block) + offset);
            io.timing.remap_hit = true;
        }
    }
    // Writes anywhere (a move must not race them) and any I/O to a spare block (a
    // freed spare block must not be reused under a read still in flight) keep the
    // section until they complete.
    io.hold(token);
    MapResult::Remapped
}

/// Routes an empty flush (the data of a `REQ_PREFLUSH` write comes separately): one copy
/// for each device, so data on either is durable when the flush completes.
#[inline]
fn route_flush(core: &Core, bio: &mut Bio, io: &mut PerIo) -> MapResult {
    let (dev, kind) = if bio.target_bio_nr() == FLUSH_BIO_MAIN {
        (&core.main, IoKind::Flush)
    } else {
        (&core.spare, IoKind::FlushCopy)
    };
    bio.set_dev(dev);
    io.timing.kind = kind;
    MapResult::Remapped
}

/// Decides what happens to a completed bio (`end_io` without the instrumentation): a
/// medium error on a read or write hands it to the worker.
pub(crate) fn complete(
    core: &Core,
    bio: &mut Bio,
    io: &mut PerIo,
    status: BlkStatus,
) -> EndIoResult {
    if io.owned {
        // Completed by the worker, which set the status.
        return EndIoResult::Done;
    }
    io.release(&core.table.srcu);
    // Only a medium error may mean a bad block, which the worker retries and remaps.
    // Every other status is passed up as it is: a lost path, an offline device or a
    // timeout says nothing about the blocks, and `NOSPC`, `NOTSUPP` and `AGAIN` (a
    // `REQ_NOWAIT` bio that would have had to wait; the submitter retries it) are
    // not failures of the medium either.
    if !status.is_medium_error() || io.details.size() == 0 {
        return EndIoResult::Done;
    }
    match bio.op() {
        ReqOp::Read | ReqOp::Write | ReqOp::WriteZeroes => {
            io.owned = true;
            EndIoResult::Defer
        }
        // A failed discard is reported as it is: discards are advisory.
        _ => EndIoResult::Done,
    }
}
