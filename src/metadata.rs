// SPDX-License-Identifier: GPL-2.0

//! The remap table on the spare device (docs/on-disk-format.md): load at construction,
//! journal commits, checkpoints that also repair copies.
//!
//! All of it runs under the writer lock of the table's state, in process context, with
//! synchronous dm-io (every metadata write is FUA).

use crate::bindings;
use crate::dm::{DmDev, DmIo, IoBuffer};
use crate::logic::args::MAX_METADATA_COPIES;
use crate::logic::format::{
    self, Change, CopyAreas, FormatError, Identity, JournalEnd, Superblock,
};
use crate::logic::layout::{SpareLayout, SUPERBLOCK_BYTES};
use kernel::prelude::*;

/// The kernel's CRC32C, in the standard form the format uses.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    // SAFETY: `data` is a valid slice for the length passed.
    unsafe { bindings::dmr_crc32c(data.as_ptr().cast(), data.len()) }
}

/// Why the metadata could not be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoadError {
    /// No copy is valid, and some superblock is not blank: refuse rather than reformat.
    NoValidCopy,
    /// Valid metadata exists but for another main device or geometry.
    Identity,
    /// The newest copy's table does not fit the target (a spare block used twice, ...).
    Table,
    /// Writing the metadata failed on too many copies.
    Write,
    /// Out of memory.
    NoMemory,
}

/// Where the table stands on disk.
pub(crate) struct Metadata {
    layout: SpareLayout,
    areas: CopyAreas,
    identity: Identity,
    uuid: [u8; 16],
    /// Sequence number of the last commit.
    seq: u64,
    /// Sequence number of the checkpoint the journals follow.
    base_seq: u64,
    /// Bytes of journal used in every healthy copy.
    tail: u64,
    /// Per copy: its active checkpoint slot, and whether it holds the current state.
    slots: KVec<u32>,
    healthy: KVec<bool>,
    /// Metadata bytes written since the table was loaded.
    bytes_written: u64,
}

/// Copies that must hold a commit for it to count: two, so that losing any one copy
/// cannot lose it (or all copies when there are fewer).
fn quorum(copies: u32) -> usize {
    copies.min(2) as usize
}

fn nomem<E>(_: E) -> LoadError {
    LoadError::NoMemory
}

impl Metadata {
    fn copies(&self) -> u32 {
        self.layout.copies()
    }

    /// Sector of byte `offset` of copy `i`.
    fn sector(&self, i: u32, offset: u64) -> u64 {
        self.layout.block_sector(self.layout.copy_start(i)) + offset / 512
    }

    /// Sequence number of the last commit.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// Copies holding the current state.
    pub(crate) fn copies_valid(&self) -> u32 {
        self.healthy.iter().filter(|&&h| h).count() as u32
    }

    /// Bytes of one checkpoint slot.
    pub(crate) fn slot_bytes(&self) -> u64 {
        self.areas.slot_bytes
    }

    /// Metadata bytes written since load.
    pub(crate) fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Loads the table from the spare region, calling `apply` for every change of the
    /// newest valid copy, then rewrites every copy from it. A region whose superblocks are
    /// all blank, or any region when `format` is set, gets empty metadata instead.
    pub(crate) fn load(
        dev: &DmDev,
        io: &DmIo,
        layout: SpareLayout,
        identity: Identity,
        format: bool,
        mut apply: impl FnMut(Change) -> Result<(), FormatError>,
    ) -> Result<(Self, bool), LoadError> {
        let areas = CopyAreas::new(&layout);
        let n = layout.copies();
        let mut m = Self {
            layout,
            areas,
            identity,
            uuid: [0; 16],
            seq: 0,
            base_seq: 0,
            tail: 0,
            slots: KVec::new(),
            healthy: KVec::new(),
            bytes_written: 0,
        };
        for _ in 0..n {
            m.slots.push(1, GFP_KERNEL).map_err(nomem)?;
            m.healthy.push(false, GFP_KERNEL).map_err(nomem)?;
        }
        let mut sbuf = IoBuffer::new(SUPERBLOCK_BYTES as usize).map_err(nomem)?;
        let jbytes = areas.journal_bytes as usize;
        let mut journal = IoBuffer::new(jbytes).map_err(nomem)?;
        let mut scratch = IoBuffer::new(jbytes.max(SUPERBLOCK_BYTES as usize)).map_err(nomem)?;
        let mut found: KVec<(u32, Superblock, JournalEnd)> = KVec::new();
        // The newest valid copy so far (index into `found`) with its checkpoint and journal,
        // kept so the table is applied from what was read, not read again.
        let mut best: Option<(usize, IoBuffer, IoBuffer)> = None;
        let mut all_blank = true;
        let mut other_identity = false;
        let mut max_seq = 0;
        for i in 0..n {
            let r = io
                .read(dev, m.sector(i, 0), &mut sbuf, 0, SUPERBLOCK_BYTES as usize)
                .map_err(|_| FormatError::Space)
                .and_then(|()| Superblock::decode(sbuf.as_slice(), crc32c, scratch.as_mut_slice()));
            all_blank &= r == Err(FormatError::Blank);
            let Ok(sb) = r else { continue };
            max_seq = max_seq.max(sb.seq);
            if sb.check(i, &identity, &layout).is_err() {
                other_identity |= sb.copy_index == i;
                continue;
            }
            let Ok(slot) = m.read_slot(dev, io, i, &sb) else {
                continue;
            };
            if io
                .read(dev, m.sector(i, areas.journal), &mut journal, 0, jbytes)
                .is_err()
            {
                continue;
            }
            let end = format::replay_copy(
                &sb,
                slot.as_slice(),
                journal.as_slice(),
                crc32c,
                scratch.as_mut_slice(),
                |_| Ok(()),
            );
            if let Ok(end) = end {
                max_seq = max_seq.max(end.seq);
                // Strictly newer only: on a tie the lowest copy index wins.
                let newer = best
                    .as_ref()
                    .is_none_or(|(k, _, _)| end.seq > found[*k].2.seq);
                found.push((i, sb, end), GFP_KERNEL).map_err(nomem)?;
                if newer {
                    let spare_journal = match best.take() {
                        Some((_, _, j)) => j,
                        None => IoBuffer::new(jbytes).map_err(nomem)?,
                    };
                    let journal = core::mem::replace(&mut journal, spare_journal);
                    best = Some((found.len() - 1, slot, journal));
                }
            }
        }
        if format || all_blank {
            m.format(dev, io, max_seq + 1)?;
            return Ok((m, true));
        }
        let Some((k, slot, journal)) = best else {
            return Err(if other_identity {
                LoadError::Identity
            } else {
                LoadError::NoValidCopy
            });
        };
        let (_, sb, end) = found[k];
        format::replay_copy(
            &sb,
            slot.as_slice(),
            journal.as_slice(),
            crc32c,
            scratch.as_mut_slice(),
            &mut apply,
        )
        .map_err(|_| LoadError::Table)?;
        m.uuid = sb.uuid;
        m.seq = end.seq;
        m.base_seq = sb.seq;
        m.tail = end.tail as u64;
        for &(i, sb_i, end_i) in found.iter() {
            m.slots[i as usize] = sb_i.active_slot;
            // Appends go to one tail in every healthy copy: only copies at the same
            // checkpoint and journal position as the newest qualify.
            m.healthy[i as usize] = end_i.seq == end.seq
                && end_i.tail == end.tail
                && sb_i.seq == sb.seq
                && sb_i.uuid == sb.uuid;
        }
        Ok((m, false))
    }

    /// Reads the active checkpoint of copy `i` (whole sectors covering its entries).
    fn read_slot(&self, dev: &DmDev, io: &DmIo, i: u32, sb: &Superblock) -> Result<IoBuffer> {
        let bytes = (sb.cp_entries as usize * format::ENTRY)
            .max(512)
            .div_ceil(512)
            * 512;
        if bytes as u64 > self.areas.slot_bytes {
            return Err(EINVAL);
        }
        let mut b = IoBuffer::new(bytes)?;
        io.read(
            dev,
            self.sector(i, self.areas.slots[sb.active_slot as usize]),
            &mut b,
            0,
            bytes,
        )?;
        Ok(b)
    }

    /// Writes empty metadata with a new set UUID at sequence `seq` to every copy.
    fn format(&mut self, dev: &DmDev, io: &DmIo, seq: u64) -> Result<(), LoadError> {
        // SAFETY: `uuid` is a valid buffer of 16 bytes.
        unsafe { bindings::get_random_bytes(self.uuid.as_mut_ptr().cast(), 16) };
        self.seq = seq;
        for h in self.healthy.iter_mut() {
            *h = false;
        }
        let mut empty = IoBuffer::new(512).map_err(nomem)?;
        self.checkpoint(dev, io, &mut empty, 0, crc32c(&[]))
            .map_err(|_| LoadError::Write)
    }

    /// Whether a record of `changes` entries fits in the journal.
    pub(crate) fn fits(&self, changes: usize) -> bool {
        self.tail + format::record_len(changes) as u64 <= self.areas.journal_bytes
    }

    /// Writes the table (`slot`, `entries` entries with CRC `crc`, encoded by the caller)
    /// as a checkpoint at the current sequence number to every copy, copies not holding
    /// the current state first, each one completely (slot, journal zeroed, superblock)
    /// before the next.
    pub(crate) fn checkpoint(
        &mut self,
        dev: &DmDev,
        io: &DmIo,
        slot: &mut IoBuffer,
        entries: u64,
        crc: u32,
    ) -> Result {
        let n = self.copies();
        let slot_len = (entries as usize * format::ENTRY).max(512).div_ceil(512) * 512;
        let mut zero = IoBuffer::new(self.areas.journal_bytes as usize)?;
        let mut sbuf = IoBuffer::new(SUPERBLOCK_BYTES as usize)?;
        let order = Iterator::chain(
            (0..n).filter(|&i| !self.healthy[i as usize]),
            (0..n).filter(|&i| self.healthy[i as usize]),
        );
        let mut good = 0;
        let mut done: KVec<(u32, bool, u32)> = KVec::with_capacity(n as usize, GFP_KERNEL)?;
        for i in order {
            let new_slot = 1 - self.slots[i as usize];
            let sb = Superblock {
                uuid: self.uuid,
                seq: self.seq,
                copy_index: i,
                active_slot: new_slot,
                identity: self.identity,
                cp_entries: entries,
                cp_crc: crc,
                journal_bytes: self.areas.journal_bytes as u32,
                total_blocks: self.layout.total_blocks(),
            };
            sb.encode(sbuf.as_mut_slice(), crc32c).map_err(|_| EINVAL)?;
            let ok = io
                .write(
                    dev,
                    self.sector(i, self.areas.slots[new_slot as usize]),
                    slot,
                    0,
                    slot_len,
                    true,
                )
                .and_then(|()| {
                    let j = self.areas.journal_bytes as usize;
                    io.write(
                        dev,
                        self.sector(i, self.areas.journal),
                        &mut zero,
                        0,
                        j,
                        true,
                    )
                })
                .and_then(|()| {
                    io.write(
                        dev,
                        self.sector(i, 0),
                        &mut sbuf,
                        0,
                        SUPERBLOCK_BYTES as usize,
                        true,
                    )
                })
                .is_ok();
            if ok {
                good += 1;
                self.bytes_written += slot_len as u64 + self.areas.journal_bytes + SUPERBLOCK_BYTES;
            }
            done.push((i, ok, new_slot), GFP_KERNEL)?;
        }
        for &(i, ok, new_slot) in done.iter() {
            self.healthy[i as usize] = ok;
            if ok {
                self.slots[i as usize] = new_slot;
            }
        }
        self.base_seq = self.seq;
        self.tail = 0;
        if good < quorum(n) {
            return Err(EIO);
        }
        Ok(())
    }

    /// Appends one journal record with `changes` to every healthy copy at once (FUA).
    /// Fails unless a quorum of copies wrote it; the sequence number advances either way,
    /// since some copies may hold the record. The caller checks [`Metadata::fits`] first.
    pub(crate) fn append(&mut self, dev: &DmDev, io: &DmIo, changes: &[Change]) -> Result {
        let len = format::record_len(changes.len());
        let mut rec = IoBuffer::new(len)?;
        format::encode_record(
            rec.as_mut_slice(),
            self.seq + 1,
            self.base_seq,
            &self.uuid,
            changes,
            crc32c,
        )
        .map_err(|_| EINVAL)?;
        // At most MAX_METADATA_COPIES copies: fixed arrays, no allocation.
        let mut targets = [0u32; MAX_METADATA_COPIES as usize];
        let mut sectors = [0u64; MAX_METADATA_COPIES as usize];
        let mut k = 0;
        for i in 0..self.copies() {
            if self.healthy[i as usize] && k < targets.len() {
                targets[k] = i;
                sectors[k] = self.sector(i, self.areas.journal + self.tail);
                k += 1;
            }
        }
        self.seq += 1;
        self.tail += len as u64;
        if k == 0 {
            return Err(EIO);
        }
        let failed = io
            .write_regions(dev, &sectors[..k], &mut rec, 0, len, true)
            .unwrap_or(u64::MAX);
        let mut good = 0;
        for (k, &i) in targets[..k].iter().enumerate() {
            if failed & (1 << k) != 0 {
                self.healthy[i as usize] = false;
            } else {
                good += 1;
                self.bytes_written += len as u64;
            }
        }
        if good < quorum(self.copies()) {
            return Err(EIO);
        }
        Ok(())
    }
}
