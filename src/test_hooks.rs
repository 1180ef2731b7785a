// SPDX-License-Identifier: GPL-2.0

//! Fault injection for the tests, compiled only into test builds (`make DMR_TEST_HOOKS=1`,
//! which `tests/run_tests.sh` uses); a normal build has none of it.
//!
//! - `dmsetup message <dev> 0 test_delay_map <block> <ms>`: the next bio (read or write)
//!   starting in `block` that `map` routes waits `ms` milliseconds (busy) right after its
//!   table lookup, which widens the window between the lookup and the bio reaching a
//!   device.
//! - `dmsetup message <dev> 0 test_scan_cursor [<position> <passes> <state>]`: commits that
//!   background scanner cursor (state `idle`, `running` or `paused`) as the scanner does,
//!   then replies with the cursor on disk (`Writer::scan`), `<position> <passes> <state>`.
//! - The `remap_test_err` target completes every bio with a chosen block-layer status
//!   (`<start> <len> remap_test_err <status>`, status one of `ioerr medium timeout
//!   transport offline target protection inval resource`): the errors a lost path, an
//!   offline disk or a timeout give, which dm-error, dm-flakey and dm-dust (always
//!   `IOERR`) cannot.

use crate::dm::{
    Bio, BioDetails, BlkStatus, CtrError, DeferredBio, MapResult, MessageError, Operations,
    ResultBuf, TargetCtx,
};
use crate::instance::Core;
use crate::logic::args::parse_u64;
use crate::logic::format::{Change, ScanCursor, ScanState};
use core::fmt::Write;
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};
use kernel::time::{delay::udelay, Delta};

/// The block whose next write waits in `map` (`u64::MAX`: none), and for how long.
static DELAY_BLOCK: Atomic<u64> = Atomic::new(u64::MAX);
static DELAY_MS: Atomic<u64> = Atomic::new(0);

/// Called by `map` after the table lookup of a bio starting in main block `block`.
pub(crate) fn after_lookup(block: u64) {
    if DELAY_BLOCK.load(Relaxed) != block {
        return;
    }
    if DELAY_BLOCK.cmpxchg(block, u64::MAX, Relaxed).is_err() {
        return;
    }
    pr_info!("remap: test hook: a bio of block {block} waits in map\n");
    for _ in 0..DELAY_MS.load(Relaxed).min(60_000) {
        udelay(Delta::from_millis(1));
    }
}

/// Handles the test messages of `core`'s target; `None` for any other message.
pub(crate) fn message(
    core: &Core,
    argv: &[&CStr],
    out: &mut ResultBuf<'_>,
) -> Option<Result<(), MessageError>> {
    let mut words: [&[u8]; 4] = [b""; 4];
    if argv.len() > words.len() {
        return None;
    }
    for (w, a) in words.iter_mut().zip(argv) {
        *w = a.to_bytes();
    }
    let (name, args) = words[..argv.len()].split_first()?;
    match *name {
        b"test_delay_map" => Some(delay_map(args)),
        b"test_scan_cursor" => Some(scan_cursor(core, args, out)),
        _ => None,
    }
}

/// `test_delay_map <block> <ms>`.
fn delay_map(args: &[&[u8]]) -> Result<(), MessageError> {
    let num = |w: &[u8]| parse_u64(w).ok();
    match args {
        [block, ms] => match (num(block), num(ms)) {
            (Some(block), Some(ms)) => {
                DELAY_MS.store(ms, Relaxed);
                DELAY_BLOCK.store(block, Relaxed);
                Ok(())
            }
            _ => Err(MessageError::invalid(c"test_delay_map <block> <ms>")),
        },
        _ => Err(MessageError::invalid(c"test_delay_map <block> <ms>")),
    }
}

/// `test_scan_cursor [<position> <passes> <state>]`: commits the cursor given, if any, and
/// makes it the scanner's state, then replies with the cursor on disk. (A `running` state
/// starts the scan when a target attaches.)
fn scan_cursor(core: &Core, args: &[&[u8]], out: &mut ResultBuf<'_>) -> Result<(), MessageError> {
    let mut w = core.table.writer();
    if !args.is_empty() {
        let c = parse_cursor(args).ok_or(MessageError::invalid(
            c"test_scan_cursor [<position> <passes> <idle|running|paused>]",
        ))?;
        core.commit(&mut w, &[Change::Scan(c)])
            .map_err(|e| MessageError::new(e, c"test_scan_cursor: the commit failed"))?;
        // The scanner's own state follows, or its next save would put its own back.
        core.table.scan.restore(c);
    }
    let c = w.scan();
    // A full reply buffer makes device-mapper retry with a larger one.
    let _ = write!(out, "{} {} {}", c.position, c.passes, c.state.name());
    Ok(())
}

/// The cursor `<position> <passes> <state>`.
fn parse_cursor(args: &[&[u8]]) -> Option<ScanCursor> {
    let [position, passes, state] = args else {
        return None;
    };
    let states = [ScanState::Idle, ScanState::Running, ScanState::Paused];
    Some(ScanCursor {
        position: parse_u64(position).ok()?,
        passes: u32::try_from(parse_u64(passes).ok()?).ok()?,
        state: states.into_iter().find(|s| s.name().as_bytes() == *state)?,
    })
}

/// The `remap_test_err` target: fails every bio with one status.
pub(crate) struct StatusTarget {
    status: BlkStatus,
}

#[vtable]
impl Operations for StatusTarget {
    const NAME: &'static CStr = c"remap_test_err";
    const VERSION: [u32; 3] = [1, 0, 0];
    const FEATURES: u64 = 0;

    type PerIo = BioDetails;

    fn new(ctx: &mut TargetCtx<'_>, argv: &[&CStr]) -> Result<Pin<KBox<Self>>, CtrError> {
        let status = match argv.first().map(|a| a.to_bytes()) {
            Some(b"ioerr") => BlkStatus::IOERR,
            Some(b"medium") => BlkStatus::MEDIUM,
            Some(b"timeout") => BlkStatus::TIMEOUT,
            Some(b"transport") => BlkStatus::TRANSPORT,
            Some(b"offline") => BlkStatus::OFFLINE,
            Some(b"target") => BlkStatus::TARGET,
            Some(b"protection") => BlkStatus::PROTECTION,
            Some(b"inval") => BlkStatus::INVAL,
            Some(b"resource") => BlkStatus::RESOURCE,
            _ => return Err(CtrError::invalid(c"Unknown status")),
        };
        ctx.set_num_flush_bios(1);
        ctx.set_num_discard_bios(1);
        ctx.set_num_write_zeroes_bios(1);
        KBox::pin(Self { status }, GFP_KERNEL)
            .map_err(|_| CtrError::new(ENOMEM, c"Cannot allocate memory"))
    }

    fn map(&self, bio: &mut Bio, io: &mut BioDetails) -> MapResult {
        *io = bio.record();
        MapResult::Defer
    }

    fn defer(&self, mut bio: DeferredBio<BioDetails>) {
        let d = *bio.io();
        bio.complete(&d, self.status);
    }
}
