// SPDX-License-Identifier: GPL-2.0

//! The remap table on the spare device (docs/on-disk-format.md): load at construction,
//! journal commits, checkpoints that also repair copies.
//!
//! All of it runs under the writer lock of the table's state, in process context, with
//! synchronous dm-io; every metadata write is FUA. Checkpoints and journals are streamed
//! through one preallocated window, so memory does not grow with the spare region.
//!
//! Every commit and every checkpoint takes a new sequence number, whether it succeeds or
//! not, and a load takes the copy with the highest one. A commit that may have reached
//! some copies and not others is superseded by the next checkpoint (a higher number on a
//! quorum of copies); so an append that fails anywhere is followed by a checkpoint before
//! anything else is written ([`Metadata::commit`] makes it at once, of the table it is
//! given). `Metadata::commit` is the only way a change reaches the metadata after the load.

use crate::crc::crc32c_update;
use crate::dm::{DmDev, DmIo, IoBuffer};
use crate::logic::args::MAX_METADATA_COPIES;
use crate::logic::copies::{self, CopyState, Refusal};
use crate::logic::format::{
    self, Change, CheckpointEncoder, CheckpointReader, CopyAreas, CopyScan, CrcFn, FormatError,
    Identity, JournalEnd, JournalReader, ScanCursor, StreamReader, Superblock, ENTRY,
    MAX_RECORD_BYTES, MIN_WINDOW,
};
use crate::logic::layout::{SpareLayout, SUPERBLOCK_BYTES};
use crate::random::random_bytes;
use kernel::prelude::*;

/// The CRC32C update function of the format: the kernel's.
const CRC: CrcFn = crc32c_update;

/// Bytes of the window checkpoints and journals are streamed through (a multiple of every
/// I/O unit and of the entry size).
const WINDOW: usize = 4 * MIN_WINDOW;

/// Failed writes of one kind after which a copy is left out of that kind of write until
/// the next load: a copy whose journal keeps failing gets no more records (else every
/// commit would become an append and a checkpoint), a copy whose superblock or slots keep
/// failing is left out of checkpoints, unless too few copies would remain for a quorum.
const COPY_GIVE_UP: u32 = 3;

/// Why the metadata could not be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoadError {
    /// No copy is valid, and some superblock is not blank: refuse rather than reformat.
    NoValidCopy,
    /// Valid metadata exists but for another main device or geometry.
    Identity,
    /// Valid metadata exists for a longer target.
    Shorter,
    /// A copy holds a newer state than any copy that can be read: loading an older one
    /// could send blocks to spare blocks since reused.
    Unreadable,
    /// The metadata's I/O unit is smaller than the spare device's logical block size (the
    /// region was copied to a device with larger sectors).
    IoUnit,
    /// The newest copy's table does not fit the target (a spare block used twice, ...).
    Table,
    /// Writing the metadata failed on too many copies.
    Write,
    /// Out of memory.
    NoMemory,
}

/// Where a loaded table goes: the state's tree and allocator.
pub(crate) trait TableSink {
    /// Forgets everything applied so far (a copy turned out to be unusable midway).
    fn reset(&mut self);
    /// Applies one change of the table being loaded. Each copy starts with the scanner
    /// cursor of its superblock ([`Change::Scan`]); [`Metadata`] keeps the cursor itself.
    fn apply(&mut self, c: Change) -> Result<(), FormatError>;
}

/// A sink that also keeps the scanner cursor of what it holds: the last one applied since
/// it was reset, so that of the copy the load applied.
struct CursorSink<'a> {
    sink: &'a mut dyn TableSink,
    scan: ScanCursor,
}

impl TableSink for CursorSink<'_> {
    fn reset(&mut self) {
        self.sink.reset();
        self.scan = ScanCursor::default();
    }

    fn apply(&mut self, c: Change) -> Result<(), FormatError> {
        if let Change::Scan(scan) = c {
            self.scan = scan;
        }
        self.sink.apply(c)
    }
}

/// What [`Metadata::commit`] wrote.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Written {
    /// A journal record (every copy that took part holds it).
    Record,
    /// A checkpoint of the whole table.
    Checkpoint,
}

/// Where the table stands on disk.
pub(crate) struct Metadata {
    layout: SpareLayout,
    areas: CopyAreas,
    identity: Identity,
    uuid: [u8; 16],
    /// Records are padded to it, checkpoints rounded up to it.
    io_unit: u32,
    /// The highest sequence number used by a commit or checkpoint, successful or not.
    seq: u64,
    /// Sequence number of the checkpoint the journals of healthy copies follow.
    base_seq: u64,
    /// Bytes of journal used in every healthy copy.
    tail: u64,
    /// An identity to record with the next checkpoint (a grown target); `identity` takes
    /// it when that checkpoint succeeds.
    pending_identity: Option<Identity>,
    /// The scanner's cursor: that of the state loaded, then of every commit that
    /// succeeded. Every checkpoint records it.
    scan: ScanCursor,
    /// Per copy: its active checkpoint slot, whether it holds the current state, and its
    /// failed journal appends and failed checkpoint writes since load.
    slots: KVec<u32>,
    healthy: KVec<bool>,
    append_failures: KVec<u32>,
    checkpoint_failures: KVec<u32>,
    /// The next write must be a checkpoint: an append failed on some copy (which may now
    /// hold a record the others lack, or miss one), a checkpoint did not reach a quorum,
    /// the identity changed, or the load found copies that differ.
    needs_checkpoint: bool,
    /// Metadata bytes written since the table was loaded.
    bytes_written: u64,
    /// Streaming window for checkpoints, journals and superblocks.
    window: IoBuffer,
    /// One journal record.
    record: IoBuffer,
}

/// Copies that must hold a commit for it to count: two, so that losing any one copy
/// cannot lose it (or all copies when there are fewer).
fn quorum(copies: u32) -> usize {
    copies.min(2) as usize
}

/// The last scanner cursor in `changes`, if any.
fn last_scan(changes: &[Change]) -> Option<ScanCursor> {
    changes.iter().rev().find_map(|c| match c {
        Change::Scan(scan) => Some(*scan),
        _ => None,
    })
}

fn nomem<E>(_: E) -> LoadError {
    LoadError::NoMemory
}

/// What a table that the sink refused means for the load: no memory for it, or a table
/// that does not fit (a spare block used twice, a block outside the target, ...).
fn sink_failure(e: FormatError) -> LoadError {
    if e == FormatError::Space {
        LoadError::NoMemory
    } else {
        LoadError::Table
    }
}

/// What a refusal of every copy means for the load. A newer copy that cannot be loaded
/// refuses as what is wrong with it: metadata for a longer target or another geometry, or
/// a state that cannot be read.
fn refusal(r: Refusal) -> LoadError {
    match r {
        Refusal::NoValidCopy => LoadError::NoValidCopy,
        Refusal::Identity => LoadError::Identity,
        Refusal::Shorter => LoadError::Shorter,
        Refusal::Newer { why, .. } => match why {
            Some(FormatError::Shorter) => LoadError::Shorter,
            Some(FormatError::Identity) => LoadError::Identity,
            _ => LoadError::Unreadable,
        },
    }
}

/// What [`Metadata::scan_all`] found besides the copies' states.
struct Scanned {
    /// Every superblock is blank (a new region).
    all_blank: bool,
    /// The copy the sink holds, if any.
    applied: Option<usize>,
}

impl Metadata {
    fn new(layout: SpareLayout, identity: Identity, io_unit: u32) -> Result<Self, LoadError> {
        let n = layout.copies() as usize;
        let mut m = Self {
            layout,
            areas: CopyAreas::new(&layout),
            identity,
            pending_identity: None,
            scan: ScanCursor::default(),
            uuid: [0; 16],
            io_unit,
            seq: 0,
            base_seq: 0,
            tail: 0,
            slots: KVec::with_capacity(n, GFP_KERNEL).map_err(nomem)?,
            healthy: KVec::with_capacity(n, GFP_KERNEL).map_err(nomem)?,
            append_failures: KVec::with_capacity(n, GFP_KERNEL).map_err(nomem)?,
            checkpoint_failures: KVec::with_capacity(n, GFP_KERNEL).map_err(nomem)?,
            needs_checkpoint: false,
            bytes_written: 0,
            window: IoBuffer::new(WINDOW).map_err(nomem)?,
            record: IoBuffer::new(MAX_RECORD_BYTES).map_err(nomem)?,
        };
        for _ in 0..n {
            m.slots.push(1, GFP_KERNEL).map_err(nomem)?;
            m.healthy.push(false, GFP_KERNEL).map_err(nomem)?;
            m.append_failures.push(0, GFP_KERNEL).map_err(nomem)?;
            m.checkpoint_failures.push(0, GFP_KERNEL).map_err(nomem)?;
        }
        Ok(m)
    }

    fn copies(&self) -> u32 {
        self.layout.copies()
    }

    /// Sector of byte `offset` of copy `i`.
    fn sector(&self, i: u32, offset: u64) -> u64 {
        self.layout.block_sector(self.layout.copy_start(i)) + offset / 512
    }

    /// Sequence number of the last commit or checkpoint attempted.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// The scanner's cursor on disk: that of the state loaded, then of the last commit that
    /// succeeded with a [`Change::Scan`].
    pub(crate) fn scan(&self) -> ScanCursor {
        self.scan
    }

    /// Copies holding the current state.
    pub(crate) fn copies_valid(&self) -> u32 {
        self.healthy.iter().filter(|&&h| h).count() as u32
    }

    /// Metadata bytes written since load.
    pub(crate) fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// What the metadata on disk says it belongs to.
    pub(crate) fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Asks for a new identity (a grown target): the next write is a checkpoint with it,
    /// and [`Metadata::identity`] returns it once that checkpoint succeeded.
    pub(crate) fn set_identity(&mut self, identity: Identity) {
        self.pending_identity = Some(identity);
        self.needs_checkpoint = true;
    }

    /// Whether the next write must be a checkpoint.
    pub(crate) fn needs_checkpoint(&self) -> bool {
        self.needs_checkpoint
    }

    /// Whether a record of `changes` entries can be appended: no checkpoint is due and it
    /// fits in the journal.
    pub(crate) fn can_append(&self, changes: usize) -> bool {
        !self.needs_checkpoint
            && changes <= format::MAX_RECORD_ENTRIES
            && self.tail + format::record_len(changes, self.io_unit) as u64
                <= self.areas.journal_bytes
    }

    /// Reads `len` bytes at byte `offset` of copy `i` into the start of the window.
    fn read_window(&mut self, dev: &DmDev, io: &DmIo, i: u32, offset: u64, len: usize) -> Result {
        let sector = self.sector(i, offset);
        io.read(dev, sector, &mut self.window, 0, len)
    }

    /// Streams copy `i`'s scanner cursor, its checkpoint `sb` and then its journal through
    /// `apply` (as `format::replay_copy`: the journal's cursors replace the superblock's).
    fn replay(
        &mut self,
        dev: &DmDev,
        io: &DmIo,
        i: u32,
        sb: &Superblock,
        mut apply: impl FnMut(Change) -> Result<(), FormatError>,
    ) -> Result<JournalEnd, FormatError> {
        let space = |_| FormatError::Space;
        apply(Change::Scan(sb.scan))?;
        let slot = self.areas.slots[sb.active_slot as usize];
        let mut cp = CheckpointReader::new(sb, self.areas.slot_bytes)?;
        while let Some((off, len)) = cp.next_read(WINDOW) {
            self.read_window(dev, io, i, slot + off, len)
                .map_err(space)?;
            cp.feed(&self.window.as_slice()[..len], CRC, &mut apply)?;
        }
        cp.finish()?;
        let journal = self.areas.journal;
        let mut jr = JournalReader::new(sb, self.areas.journal_bytes);
        while let Some((off, len)) = jr.next_read(WINDOW) {
            self.read_window(dev, io, i, journal + off, len)
                .map_err(space)?;
            jr.feed(&self.window.as_slice()[..len], CRC, &mut apply)?;
        }
        Ok(jr.end())
    }

    /// Reads copy `i`: its superblock, checked against `want`, its active checkpoint and
    /// where its journal ends, applying its table to `sink` when one is given (an error of
    /// the sink lands in `sink_error`). Also returns the superblock when only the check
    /// failed.
    fn scan_copy(
        &mut self,
        dev: &DmDev,
        io: &DmIo,
        i: u32,
        want: &Identity,
        mut sink: Option<&mut (dyn TableSink + '_)>,
        sink_error: &mut Option<FormatError>,
    ) -> (Result<CopyScan, FormatError>, Option<Superblock>) {
        let sb_bytes = SUPERBLOCK_BYTES as usize;
        if self.read_window(dev, io, i, 0, sb_bytes).is_err() {
            return (Err(FormatError::Space), None);
        }
        let sb = match Superblock::decode(self.window.as_slice(), CRC) {
            Ok(sb) => sb,
            Err(e) => return (Err(e), None),
        };
        if let Err(e) = sb.check(i, want, &self.layout) {
            return (Err(e), Some(sb));
        }
        let r = self
            .replay(dev, io, i, &sb, |c| match sink.as_mut() {
                Some(t) => t.apply(c).inspect_err(|e| *sink_error = Some(*e)),
                None => Ok(()),
            })
            .map(|end| CopyScan { sb, end });
        (r, Some(sb))
    }

    /// Loads the table from the spare region into `sink`, from the newest valid copy (the
    /// next newest if that one fails while it is applied). A region whose superblocks are
    /// all blank, or any region when `format` is set, gets empty metadata instead. Returns
    /// the metadata and whether it was formatted; [`Metadata::needs_checkpoint`] then says
    /// whether the copies differ and must be rewritten.
    ///
    /// `io_unit` is the unit for a new format (the spare device's logical block size, at
    /// least 512).
    pub(crate) fn load(
        dev: &DmDev,
        io: &DmIo,
        layout: SpareLayout,
        identity: Identity,
        io_unit: u32,
        format: bool,
        sink: &mut dyn TableSink,
    ) -> Result<(Self, bool), LoadError> {
        let mut m = Self::new(layout, identity, io_unit)?;
        let mut states = [CopyState::default(); MAX_METADATA_COPIES as usize];
        let states = &mut states[..layout.copies() as usize];
        let sink = &mut CursorSink {
            sink,
            scan: ScanCursor::default(),
        };
        let scanned = m.scan_all(dev, io, &identity, sink, states)?;
        let max_seq = copies::max_seq(states);
        if format || scanned.all_blank {
            sink.reset();
            m.format(dev, io, max_seq)?;
            return Ok((m, true));
        }
        // The newest valid copy's state, unless a newer one of its set cannot be loaded.
        let (_, newest) = copies::choose(states).map_err(refusal)?;
        let chosen = m.apply_newest(dev, io, states, newest.end.seq, scanned.applied, sink)?;
        m.adopt(states, &chosen, max_seq);
        m.scan = sink.scan;
        Ok((m, false))
    }

    /// Reads every copy into `states`, applying the first valid one to `sink` while it is
    /// read: usually every copy is current and the lowest index wins, so that copy is the
    /// one loaded, read once. Says whether every superblock is blank and which copy `sink`
    /// holds.
    fn scan_all(
        &mut self,
        dev: &DmDev,
        io: &DmIo,
        identity: &Identity,
        sink: &mut dyn TableSink,
        states: &mut [CopyState],
    ) -> Result<Scanned, LoadError> {
        let mut all_blank = true;
        let mut applied = None;
        for (i, state) in states.iter_mut().enumerate() {
            let apply = applied.is_none();
            let mut sink_error = None;
            let target = apply.then_some(&mut *sink);
            let (r, sb) = self.scan_copy(dev, io, i as u32, identity, target, &mut sink_error);
            if let Some(e) = sink_error {
                sink.reset();
                return Err(sink_failure(e));
            }
            if apply {
                if r.is_ok() {
                    applied = Some(i);
                } else {
                    sink.reset();
                }
            }
            all_blank &= r == Err(FormatError::Blank);
            *state = CopyState::new(r, sb);
        }
        Ok(Scanned { all_blank, applied })
    }

    /// Applies to `sink` a copy holding the newest state, the one ending at sequence
    /// number `newest` (already applied when it is copy `applied`); if reading it fails
    /// midway, another copy holding the same state, each marked not valid in `states`
    /// once it failed. A table that does not fit is refused at once. Returns the state
    /// applied.
    fn apply_newest(
        &mut self,
        dev: &DmDev,
        io: &DmIo,
        states: &mut [CopyState],
        newest: u64,
        mut applied: Option<usize>,
        sink: &mut dyn TableSink,
    ) -> Result<CopyScan, LoadError> {
        loop {
            let Some((k, s)) = copies::next_candidate(states, newest) else {
                return Err(LoadError::Unreadable);
            };
            // Still the spare device's unit (`new`): the metadata's must not be smaller.
            if s.sb.io_unit < self.io_unit {
                return Err(LoadError::IoUnit);
            }
            if applied == Some(k) {
                return Ok(s);
            }
            sink.reset();
            applied = None;
            let mut sink_error = None;
            let r = self.replay(dev, io, k as u32, &s.sb, |c| {
                sink.apply(c).inspect_err(|e| sink_error = Some(*e))
            });
            match (r, sink_error) {
                (Ok(end), None) if end == s.end => return Ok(s),
                (_, Some(e)) => {
                    sink.reset();
                    return Err(sink_failure(e));
                }
                _ => {
                    sink.reset();
                    states[k].unreadable();
                }
            }
        }
    }

    /// Takes `chosen` as the state on disk: its set, identity and journal, the copies
    /// holding it as healthy, and every copy's active slot. Sequence numbers go on above
    /// `max_seq`, the highest any copy showed; a higher one than the chosen copy's end
    /// (another table's leftover superblock, a failed commit's record) must be superseded
    /// by a checkpoint before the journal goes on, and so must copies of an older format
    /// version. A longer target is recorded when its table is resumed.
    fn adopt(&mut self, states: &[CopyState], chosen: &CopyScan, max_seq: u64) {
        self.uuid = chosen.sb.uuid;
        self.identity = chosen.sb.identity;
        self.io_unit = chosen.sb.io_unit;
        self.base_seq = chosen.sb.seq;
        self.tail = chosen.end.tail as u64;
        self.seq = max_seq;
        self.needs_checkpoint = copies::health(states, chosen, max_seq, &mut self.healthy)
            || copies::older_version(states, &self.healthy);
        for (slot, state) in self.slots.iter_mut().zip(states) {
            if let Some(sb) = state.sb {
                *slot = sb.active_slot.min(1);
            }
        }
    }

    /// Writes empty metadata with a new set UUID to every copy, above sequence number
    /// `max_seq` (the highest any copy held, so a crash in the middle of a format still
    /// loads the new one).
    fn format(&mut self, dev: &DmDev, io: &DmIo, max_seq: u64) -> Result<(), LoadError> {
        random_bytes(&mut self.uuid);
        self.seq = max_seq;
        for h in self.healthy.iter_mut() {
            *h = false;
        }
        self.checkpoint(dev, io, core::iter::empty(), ScanCursor::default())
            .map_err(|_| LoadError::Write)
    }

    /// Writes `entries` (remaps sorted by main block, then retired spare blocks sorted) and
    /// the scanner cursor `scan` as a checkpoint at a new sequence number: first into the
    /// inactive slot of every copy at once, streamed through the window, then each copy's
    /// superblock in turn, copies not holding the current state first. A copy is switched
    /// by its superblock alone, so a crash leaves at most one copy torn; the journal is not
    /// erased (its records carry the old base). Succeeds when a quorum of superblocks was
    /// written; otherwise the next write is a checkpoint again. [`Metadata::scan`] is
    /// `scan` once it succeeded.
    fn checkpoint(
        &mut self,
        dev: &DmDev,
        io: &DmIo,
        entries: impl Iterator<Item = Change>,
        scan: ScanCursor,
    ) -> Result {
        // A number is used once, whatever happens; until this checkpoint succeeds the next
        // write must be a checkpoint too.
        self.seq += 1;
        self.needs_checkpoint = true;
        let seq = self.seq;
        self.refresh_slots(dev, io);
        let mut written = self.participants();
        let (at, enc) = self.stream_slots(dev, io, entries, &mut written)?;
        let template = self.template(seq, &enc, scan);
        let good = self.switch_superblocks(dev, io, &template, &written, at)?;
        self.base_seq = seq;
        self.tail = 0;
        if good < quorum(self.copies()) {
            return Err(EIO);
        }
        self.needs_checkpoint = false;
        self.scan = scan;
        if let Some(id) = self.pending_identity.take() {
            self.identity = id;
        }
        Ok(())
    }

    /// Copies taking part in a checkpoint: those not given up, unless too few are left for
    /// a quorum (a device that was away for a while: try them all again).
    fn participants(&self) -> [bool; MAX_METADATA_COPIES as usize] {
        let mut written = [false; MAX_METADATA_COPIES as usize];
        let failures = &self.checkpoint_failures;
        let trusted = failures.iter().filter(|&&f| f < COPY_GIVE_UP).count();
        for (w, &f) in written.iter_mut().zip(failures.iter()) {
            *w = trusted < quorum(self.copies()) || f < COPY_GIVE_UP;
        }
        written
    }

    /// Streams `entries` through the window into the inactive slot of every copy marked in
    /// `written` (clearing the marks of copies that fail). Returns the bytes written per
    /// copy and the encoder, which knows the entries' count and CRC.
    fn stream_slots(
        &mut self,
        dev: &DmDev,
        io: &DmIo,
        entries: impl Iterator<Item = Change>,
        written: &mut [bool; MAX_METADATA_COPIES as usize],
    ) -> Result<(u64, CheckpointEncoder)> {
        let mut enc = CheckpointEncoder::new(self.layout.total_blocks());
        let mut entries = entries.peekable();
        let unit = self.io_unit as usize;
        let mut at = 0u64;
        // At least one unit is written, so an empty checkpoint has a defined slot.
        while entries.peek().is_some() || at == 0 {
            let w = self.window.as_mut_slice();
            let mut used = 0;
            while used + ENTRY <= WINDOW {
                let Some(c) = entries.next() else { break };
                enc.put(c, &mut w[used..], CRC).map_err(|_| EINVAL)?;
                used += ENTRY;
            }
            let len = used.max(1).div_ceil(unit) * unit;
            w[used..len].fill(0);
            if at + len as u64 > self.areas.slot_bytes {
                return Err(ENOSPC);
            }
            self.write_slots(dev, io, at, len, written)?;
            at += len as u64;
        }
        Ok((at, enc))
    }

    /// The superblock of checkpoint `seq` with the entries `enc` wrote and scanner cursor
    /// `scan`, for copy 0 and slot 0 ([`Metadata::switch_superblocks`] sets both per copy).
    fn template(&self, seq: u64, enc: &CheckpointEncoder, scan: ScanCursor) -> Superblock {
        Superblock {
            version: format::VERSION,
            uuid: self.uuid,
            seq,
            copy_index: 0,
            active_slot: 0,
            identity: self.pending_identity.unwrap_or(self.identity),
            io_unit: self.io_unit,
            cp_entries: enc.entries(),
            cp_crc: enc.crc(),
            journal_bytes: self.areas.journal_bytes as u32,
            total_blocks: self.layout.total_blocks(),
            scan,
        }
    }

    /// Switches every copy marked in `written` (whose new slot holds `at` bytes) to the
    /// checkpoint of `template` by writing its superblock, one copy at a time, copies not
    /// holding the current state first ([`copies::rewrite_order`]): a copy that does is
    /// switched only when others already hold the new checkpoint. Marks the copies written
    /// healthy, every other one not; returns how many were written.
    fn switch_superblocks(
        &mut self,
        dev: &DmDev,
        io: &DmIo,
        template: &Superblock,
        written: &[bool; MAX_METADATA_COPIES as usize],
        at: u64,
    ) -> Result<usize> {
        // The order comes from the health before any superblock is written.
        let mut order = [0u32; MAX_METADATA_COPIES as usize];
        for (o, i) in order.iter_mut().zip(copies::rewrite_order(&self.healthy)) {
            *o = i;
        }
        let mut good = 0;
        for &i in &order[..self.copies() as usize] {
            let k = i as usize;
            self.healthy[k] = false;
            if !written[k] {
                continue;
            }
            let new_slot = 1 - self.slots[k];
            let sb = Superblock {
                copy_index: i,
                active_slot: new_slot,
                ..*template
            };
            sb.encode(self.window.as_mut_slice(), CRC)
                .map_err(|_| EINVAL)?;
            let sector = self.sector(i, 0);
            let bytes = SUPERBLOCK_BYTES as usize;
            if io
                .write(dev, sector, &mut self.window, 0, bytes, true)
                .is_ok()
            {
                good += 1;
                self.healthy[k] = true;
                self.slots[k] = new_slot;
                self.bytes_written += at + SUPERBLOCK_BYTES;
            } else {
                self.checkpoint_failures[k] = self.checkpoint_failures[k].saturating_add(1);
            }
        }
        Ok(good)
    }

    /// Learns the active slot of every copy not holding the current state from its
    /// superblock (a copy unreadable at load, or one whose superblock write was reported
    /// failed but may have landed), so a checkpoint never writes into a copy's active slot.
    /// A copy whose superblock does not decode holds no valid state: either slot will do.
    fn refresh_slots(&mut self, dev: &DmDev, io: &DmIo) {
        for i in 0..self.copies() {
            if self.healthy[i as usize] {
                continue;
            }
            let bytes = SUPERBLOCK_BYTES as usize;
            if self.read_window(dev, io, i, 0, bytes).is_ok() {
                if let Ok(sb) = Superblock::decode(self.window.as_slice(), CRC) {
                    self.slots[i as usize] = sb.active_slot.min(1);
                }
            }
        }
    }

    /// Writes `window[..len]` at byte `at` of the inactive slot of every copy marked in
    /// `written`, at once; clears the marks of copies that failed.
    fn write_slots(
        &mut self,
        dev: &DmDev,
        io: &DmIo,
        at: u64,
        len: usize,
        written: &mut [bool; MAX_METADATA_COPIES as usize],
    ) -> Result {
        let mut targets = [0u32; MAX_METADATA_COPIES as usize];
        let mut sectors = [0u64; MAX_METADATA_COPIES as usize];
        let mut k = 0;
        for i in 0..self.copies() {
            if written[i as usize] {
                let slot = self.areas.slots[1 - self.slots[i as usize] as usize];
                targets[k] = i;
                sectors[k] = self.sector(i, slot + at);
                k += 1;
            }
        }
        if k == 0 {
            return Err(EIO);
        }
        let failed = io
            .write_regions(dev, &sectors[..k], &mut self.window, 0, len, true)
            .unwrap_or(u64::MAX);
        for (j, &i) in targets[..k].iter().enumerate() {
            if failed & (1 << j) != 0 {
                written[i as usize] = false;
                let f = &mut self.checkpoint_failures[i as usize];
                *f = f.saturating_add(1);
            }
        }
        Ok(())
    }

    /// Makes `changes` durable: one journal record when `may_append` and it can be appended
    /// ([`Metadata::can_append`]); otherwise, or when appending fails on any copy, a
    /// checkpoint of `table()`, the whole table with `changes` applied (rolling the commit
    /// forward), and of the last scanner cursor in `changes` (or the current one). A copy
    /// that missed an appended record is rewritten at once by such a checkpoint (it must
    /// hold `changes`: a checkpoint without them would supersede the record); should that
    /// fail, the next commit tries again. Says what was written; after an error `changes`
    /// may or may not be on disk, and [`Metadata::scan`] is still the cursor before them.
    /// A cursor that cannot be stored is refused (`EINVAL`) before anything is written.
    pub(crate) fn commit<I: Iterator<Item = Change>>(
        &mut self,
        dev: &DmDev,
        io: &DmIo,
        changes: &[Change],
        may_append: bool,
        table: impl FnOnce() -> I,
    ) -> Result<Written> {
        if !changes.iter().all(Change::is_valid) {
            return Err(EINVAL);
        }
        let scan = last_scan(changes).unwrap_or(self.scan);
        let appended = may_append
            && !changes.is_empty()
            && self.can_append(changes.len())
            && self.append(dev, io, changes).is_ok();
        if !appended {
            return self
                .checkpoint(dev, io, table(), scan)
                .map(|()| Written::Checkpoint);
        }
        self.scan = scan;
        if self.needs_checkpoint && self.checkpoint(dev, io, table(), scan).is_ok() {
            return Ok(Written::Checkpoint);
        }
        Ok(Written::Record)
    }

    /// Appends one journal record with `changes` to every healthy copy at once (FUA), at
    /// a new sequence number. Fails unless a quorum of copies wrote it. If any copy failed,
    /// the next write must be a checkpoint ([`Metadata::needs_checkpoint`]): a failed
    /// commit must be superseded, a copy that missed a record must be rewritten. The
    /// caller checks [`Metadata::can_append`] first.
    fn append(&mut self, dev: &DmDev, io: &DmIo, changes: &[Change]) -> Result {
        let unit = self.io_unit;
        // As in `checkpoint`: the number is used; until this append reached every copy
        // it was meant for, the next write must be a checkpoint.
        self.seq += 1;
        self.needs_checkpoint = true;
        let len = format::encode_record(
            self.record.as_mut_slice(),
            self.seq,
            self.base_seq,
            &self.uuid,
            changes,
            CRC,
            unit,
        )
        .map_err(|_| EINVAL)?;
        // Current copies whose journal has not failed too often take the record; a
        // current copy left out misses it and is current no more (it is rewritten by the
        // next checkpoint that is due anyway).
        let mut targets = [0u32; MAX_METADATA_COPIES as usize];
        let mut sectors = [0u64; MAX_METADATA_COPIES as usize];
        let mut k = 0;
        for i in 0..self.copies() {
            let c = i as usize;
            if self.healthy[c] && self.append_failures[c] < COPY_GIVE_UP {
                targets[k] = i;
                sectors[k] = self.sector(i, self.areas.journal + self.tail);
                k += 1;
            } else {
                self.healthy[c] = false;
            }
        }
        self.tail += len as u64;
        if k == 0 {
            return Err(EIO);
        }
        let failed = io
            .write_regions(dev, &sectors[..k], &mut self.record, 0, len, true)
            .unwrap_or(u64::MAX);
        let mut good = 0;
        for (j, &i) in targets[..k].iter().enumerate() {
            if failed & (1 << j) != 0 {
                self.healthy[i as usize] = false;
                let f = &mut self.append_failures[i as usize];
                *f = f.saturating_add(1);
            } else {
                good += 1;
                self.bytes_written += len as u64;
            }
        }
        if good < quorum(self.copies()) {
            return Err(EIO);
        }
        self.needs_checkpoint = good < k;
        Ok(())
    }
}
