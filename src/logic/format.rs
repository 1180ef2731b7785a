// SPDX-License-Identifier: GPL-2.0

//! The on-disk format of the remap table (docs/on-disk-format.md): superblock, entries,
//! checkpoints and journal records, with their checksums and validation.
//!
//! Pure encoding and decoding over byte slices. The CRC32C function is passed in: the
//! kernel module uses the kernel's `crc32c()`, userspace uses [`crc32c_sw`]; both compute
//! the standard CRC32C (check value `0xe3069283`).

use super::layout::{self, SpareLayout, SUPERBLOCK_BYTES};

/// A CRC32C implementation: the standard CRC32C of the bytes (initial value and final
/// xor `!0`).
pub type Crc32c = fn(&[u8]) -> u32;

/// Superblock magic.
pub const MAGIC: [u8; 8] = *b"DMREMAP\0";
/// Format version written and understood.
pub const VERSION: u32 = 1;
/// Journal record magic.
pub const RECORD_MAGIC: [u8; 4] = *b"DMRJ";
/// Bytes of a journal record header.
pub const RECORD_HEADER: usize = 48;
/// Journal records are padded to a multiple of this.
pub const RECORD_ALIGN: usize = 512;
/// The "none" value of entry fields.
pub const NONE: u64 = u64::MAX;
/// Bytes of an entry.
pub const ENTRY: usize = 16;

const SB_CRC: usize = 12;
const REC_CRC: usize = 4;

/// Why metadata does not decode or validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatError {
    /// The superblock is all zeroes (never written).
    Blank,
    /// Wrong magic number.
    Magic,
    /// A format version this code does not know.
    Version,
    /// Checksum mismatch.
    Checksum,
    /// The superblock describes another copy, geometry or main device.
    Identity,
    /// Entries out of order, out of range or contradictory.
    Entries,
    /// A buffer is too small for what it must hold.
    Space,
}

fn get_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

fn get_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// CRC of `buf` with the 4 bytes at `field` taken as zero.
fn crc_without(buf: &[u8], field: usize, crc: Crc32c, scratch: &mut [u8]) -> u32 {
    let n = buf.len();
    scratch[..n].copy_from_slice(buf);
    scratch[field..field + 4].fill(0);
    crc(&scratch[..n])
}

/// What a table line and its devices say the metadata must describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// Number of copies.
    pub copies: u32,
    /// Block size in bytes.
    pub block_size: u32,
    /// Spare region start (sectors).
    pub spare_start: u64,
    /// Spare region length (sectors).
    pub spare_len: u64,
    /// Size of the main device (sectors).
    pub main_sectors: u64,
    /// Target length (sectors).
    pub target_len: u64,
    /// Logical block size of the main device.
    pub main_lbs: u32,
}

/// A decoded superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superblock {
    /// Set UUID, the same in every copy of one table.
    pub uuid: [u8; 16],
    /// Sequence number of the active checkpoint.
    pub seq: u64,
    /// Which copy this is.
    pub copy_index: u32,
    /// Active checkpoint slot, 0 or 1.
    pub active_slot: u32,
    /// What the metadata belongs to.
    pub identity: Identity,
    /// Entries in the active checkpoint.
    pub cp_entries: u64,
    /// CRC32C of those entries.
    pub cp_crc: u32,
    /// Journal size in bytes.
    pub journal_bytes: u32,
    /// Blocks in the spare region.
    pub total_blocks: u64,
}

impl Superblock {
    /// Encodes into `out` (at least 4096 bytes; the first 4096 are written).
    pub fn encode(&self, out: &mut [u8], crc: Crc32c) -> Result<(), FormatError> {
        let b = out
            .get_mut(..SUPERBLOCK_BYTES as usize)
            .ok_or(FormatError::Space)?;
        b.fill(0);
        b[0..8].copy_from_slice(&MAGIC);
        put_u32(b, 8, VERSION);
        b[16..32].copy_from_slice(&self.uuid);
        put_u64(b, 32, self.seq);
        put_u32(b, 40, self.copy_index);
        put_u32(b, 44, self.identity.copies);
        put_u32(b, 48, self.identity.block_size);
        put_u32(b, 52, self.active_slot);
        put_u64(b, 56, self.identity.spare_start);
        put_u64(b, 64, self.identity.spare_len);
        put_u64(b, 72, self.identity.main_sectors);
        put_u64(b, 80, self.identity.target_len);
        put_u32(b, 88, self.identity.main_lbs);
        put_u64(b, 96, self.cp_entries);
        put_u32(b, 104, self.cp_crc);
        put_u32(b, 108, self.journal_bytes);
        put_u64(b, 112, self.total_blocks);
        let c = crc(b);
        put_u32(b, SB_CRC, c);
        Ok(())
    }

    /// Decodes and checks magic, version and checksum. `scratch` must hold 4096 bytes.
    pub fn decode(buf: &[u8], crc: Crc32c, scratch: &mut [u8]) -> Result<Self, FormatError> {
        let b = buf
            .get(..SUPERBLOCK_BYTES as usize)
            .ok_or(FormatError::Space)?;
        if scratch.len() < b.len() {
            return Err(FormatError::Space);
        }
        if b.iter().all(|&x| x == 0) {
            return Err(FormatError::Blank);
        }
        if b[0..8] != MAGIC {
            return Err(FormatError::Magic);
        }
        if get_u32(b, 8) != VERSION {
            return Err(FormatError::Version);
        }
        if get_u32(b, SB_CRC) != crc_without(b, SB_CRC, crc, scratch) {
            return Err(FormatError::Checksum);
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[16..32]);
        Ok(Self {
            uuid,
            seq: get_u64(b, 32),
            copy_index: get_u32(b, 40),
            active_slot: get_u32(b, 52),
            identity: Identity {
                copies: get_u32(b, 44),
                block_size: get_u32(b, 48),
                spare_start: get_u64(b, 56),
                spare_len: get_u64(b, 64),
                main_sectors: get_u64(b, 72),
                target_len: get_u64(b, 80),
                main_lbs: get_u32(b, 88),
            },
            cp_entries: get_u64(b, 96),
            cp_crc: get_u32(b, 104),
            journal_bytes: get_u32(b, 108),
            total_blocks: get_u64(b, 112),
        })
    }

    /// Checks that this is copy `index` of metadata for `id` laid out as `layout`.
    pub fn check(
        &self,
        index: u32,
        id: &Identity,
        layout: &SpareLayout,
    ) -> Result<(), FormatError> {
        let t = layout.total_blocks();
        if self.copy_index != index
            || self.identity != *id
            || self.total_blocks != t
            || u64::from(self.journal_bytes) != layout::journal_bytes(t)
            || self.active_slot > 1
            || self.cp_entries > t
        {
            return Err(FormatError::Identity);
        }
        Ok(())
    }
}

/// One change to the table, as stored in checkpoints and journal records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Main block `main` lives in spare block `spare`.
    Remap {
        /// Main block.
        main: u64,
        /// Spare block.
        spare: u64,
    },
    /// Main block `main` is no longer remapped.
    Unmap {
        /// Main block.
        main: u64,
    },
    /// Spare block `spare` is retired.
    Retire {
        /// Spare block.
        spare: u64,
    },
}

impl Change {
    fn encode(self, b: &mut [u8]) {
        let (m, s) = match self {
            Self::Remap { main, spare } => (main, spare),
            Self::Unmap { main } => (main, NONE),
            Self::Retire { spare } => (NONE, spare),
        };
        put_u64(b, 0, m);
        put_u64(b, 8, s);
    }

    fn decode(b: &[u8]) -> Option<Self> {
        match (get_u64(b, 0), get_u64(b, 8)) {
            (NONE, NONE) => None,
            (NONE, spare) => Some(Self::Retire { spare }),
            (main, NONE) => Some(Self::Unmap { main }),
            (main, spare) => Some(Self::Remap { main, spare }),
        }
    }
}

/// Bytes a journal record with `count` entries takes.
pub fn record_len(count: usize) -> usize {
    (RECORD_HEADER + ENTRY * count).div_ceil(RECORD_ALIGN) * RECORD_ALIGN
}

/// Encodes a journal record into `out` (at least [`record_len`] bytes, zero-padded);
/// returns its length.
pub fn encode_record(
    out: &mut [u8],
    seq: u64,
    base_seq: u64,
    uuid: &[u8; 16],
    changes: &[Change],
    crc: Crc32c,
) -> Result<usize, FormatError> {
    if changes.is_empty() {
        return Err(FormatError::Entries);
    }
    let len = record_len(changes.len());
    let b = out.get_mut(..len).ok_or(FormatError::Space)?;
    b.fill(0);
    b[0..4].copy_from_slice(&RECORD_MAGIC);
    put_u64(b, 8, seq);
    put_u64(b, 16, base_seq);
    put_u32(b, 24, changes.len() as u32);
    b[32..48].copy_from_slice(uuid);
    for (i, c) in changes.iter().enumerate() {
        c.encode(&mut b[RECORD_HEADER + i * ENTRY..]);
    }
    let used = RECORD_HEADER + ENTRY * changes.len();
    let c = crc(&b[..used]);
    put_u32(b, REC_CRC, c);
    Ok(len)
}

/// A valid journal record found by [`decode_record`].
pub struct Record<'a> {
    /// Its sequence number.
    pub seq: u64,
    /// Bytes it takes in the journal.
    pub len: usize,
    entries: &'a [u8],
}

impl Record<'_> {
    /// The changes, in order.
    pub fn changes(&self) -> impl Iterator<Item = Option<Change>> + '_ {
        self.entries.chunks_exact(ENTRY).map(Change::decode)
    }
}

/// Decodes the record at the start of `buf` if it is the one expected: magic, checksum,
/// `seq`, `base_seq` and set UUID all right, and it fits in `buf`. `scratch` must be as
/// large as the record.
pub fn decode_record<'a>(
    buf: &'a [u8],
    seq: u64,
    base_seq: u64,
    uuid: &[u8; 16],
    crc: Crc32c,
    scratch: &mut [u8],
) -> Option<Record<'a>> {
    let h = buf.get(..RECORD_HEADER)?;
    if h[0..4] != RECORD_MAGIC
        || get_u64(h, 8) != seq
        || get_u64(h, 16) != base_seq
        || h[32..48] != uuid[..]
    {
        return None;
    }
    let count = get_u32(h, 24) as usize;
    if count == 0 {
        return None;
    }
    let used = RECORD_HEADER.checked_add(count.checked_mul(ENTRY)?)?;
    let len = record_len(count);
    if len > buf.len() || used > scratch.len() {
        return None;
    }
    if get_u32(h, REC_CRC) != crc_without(&buf[..used], REC_CRC, crc, scratch) {
        return None;
    }
    Some(Record {
        seq,
        len,
        entries: &buf[RECORD_HEADER..used],
    })
}

/// Where a journal ends: the last valid record's sequence number (or `base_seq`), the byte
/// offset after it, and the number of records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalEnd {
    /// Sequence number of the last valid record, `base_seq` if none.
    pub seq: u64,
    /// Offset of the first byte after the last valid record.
    pub tail: usize,
    /// Number of valid records.
    pub records: usize,
}

/// Walks the journal `journal` of a copy whose superblock says `base_seq`, calling `apply`
/// for every change of every valid record, in order. An `apply` error stops the walk and is
/// returned. `scratch` must be as large as the journal.
pub fn replay_journal<E>(
    journal: &[u8],
    base_seq: u64,
    uuid: &[u8; 16],
    crc: Crc32c,
    scratch: &mut [u8],
    mut apply: impl FnMut(Change) -> Result<(), E>,
    bad_entry: impl Fn() -> E,
) -> Result<JournalEnd, E> {
    let mut end = JournalEnd {
        seq: base_seq,
        tail: 0,
        records: 0,
    };
    while let Some(r) = decode_record(
        &journal[end.tail..],
        end.seq + 1,
        base_seq,
        uuid,
        crc,
        scratch,
    ) {
        for c in r.changes() {
            apply(c.ok_or_else(&bad_entry)?)?;
        }
        end.seq = r.seq;
        end.tail += r.len;
        end.records += 1;
    }
    Ok(end)
}

/// Encodes a checkpoint into `out`: `remaps` (sorted by main block, unique), then `retired`
/// (sorted). Returns the number of entries and their CRC.
pub fn encode_checkpoint(
    out: &mut [u8],
    remaps: impl Iterator<Item = (u64, u64)>,
    retired: impl Iterator<Item = u64>,
    crc: Crc32c,
) -> Result<(u64, u32), FormatError> {
    let mut n = 0usize;
    let changes = remaps
        .map(|(main, spare)| Change::Remap { main, spare })
        .chain(retired.map(|spare| Change::Retire { spare }));
    for c in changes {
        let slot = out
            .get_mut(n * ENTRY..(n + 1) * ENTRY)
            .ok_or(FormatError::Space)?;
        c.encode(slot);
        n += 1;
    }
    Ok((n as u64, crc(&out[..n * ENTRY])))
}

/// Checks a checkpoint (`entries` entries with CRC `cp_crc` at the start of `buf`) and
/// calls `apply` for each: remaps strictly increasing by main block, then retired blocks
/// strictly increasing, all below `total_blocks` for spare blocks.
pub fn decode_checkpoint(
    buf: &[u8],
    entries: u64,
    cp_crc: u32,
    total_blocks: u64,
    crc: Crc32c,
    mut apply: impl FnMut(Change) -> Result<(), FormatError>,
) -> Result<(), FormatError> {
    let bytes = usize::try_from(entries)
        .ok()
        .and_then(|e| e.checked_mul(ENTRY))
        .ok_or(FormatError::Space)?;
    let b = buf.get(..bytes).ok_or(FormatError::Space)?;
    if crc(b) != cp_crc {
        return Err(FormatError::Checksum);
    }
    let mut last_main: Option<u64> = None;
    let mut last_retired: Option<u64> = None;
    for e in b.chunks_exact(ENTRY) {
        let c = Change::decode(e).ok_or(FormatError::Entries)?;
        match c {
            Change::Remap { main, spare } => {
                if last_retired.is_some()
                    || last_main.is_some_and(|m| main <= m)
                    || spare >= total_blocks
                {
                    return Err(FormatError::Entries);
                }
                last_main = Some(main);
            }
            Change::Retire { spare } => {
                if last_retired.is_some_and(|r| spare <= r) || spare >= total_blocks {
                    return Err(FormatError::Entries);
                }
                last_retired = Some(spare);
            }
            Change::Unmap { .. } => return Err(FormatError::Entries),
        }
        apply(c)?;
    }
    Ok(())
}

/// Byte offsets of the areas of a copy, relative to the copy's first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyAreas {
    /// Offset of checkpoint slot 0 and 1.
    pub slots: [u64; 2],
    /// Bytes of a slot.
    pub slot_bytes: u64,
    /// Offset of the journal.
    pub journal: u64,
    /// Bytes of the journal.
    pub journal_bytes: u64,
}

impl CopyAreas {
    /// The areas of a copy for `layout`.
    pub fn new(layout: &SpareLayout) -> Self {
        let t = layout.total_blocks();
        let slot = layout::slot_bytes(t);
        Self {
            slots: [SUPERBLOCK_BYTES, SUPERBLOCK_BYTES + slot],
            slot_bytes: slot,
            journal: SUPERBLOCK_BYTES + 2 * slot,
            journal_bytes: layout::journal_bytes(t),
        }
    }
}

/// Software CRC32C (Castagnoli, reflected, init and final xor `!0`), for userspace and for
/// checking the kernel's.
pub fn crc32c_sw(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC32C_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

const CRC32C_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82f6_3b78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// Applies copy `sb`'s active checkpoint (`slot`, the slot's bytes) and then its journal
/// (`journal`, the journal's bytes) through `apply`; returns where the journal ends.
/// `scratch` must be as large as the journal.
pub fn replay_copy(
    sb: &Superblock,
    slot: &[u8],
    journal: &[u8],
    crc: Crc32c,
    scratch: &mut [u8],
    mut apply: impl FnMut(Change) -> Result<(), FormatError>,
) -> Result<JournalEnd, FormatError> {
    decode_checkpoint(
        slot,
        sb.cp_entries,
        sb.cp_crc,
        sb.total_blocks,
        crc,
        &mut apply,
    )?;
    replay_journal(journal, sb.seq, &sb.uuid, crc, scratch, apply, || {
        FormatError::Entries
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    const UUID: [u8; 16] = *b"0123456789abcdef";

    fn layout() -> SpareLayout {
        SpareLayout::new(0, 4096 * 8, 4096, 5).unwrap()
    }

    fn identity() -> Identity {
        Identity {
            copies: 5,
            block_size: 4096,
            spare_start: 0,
            spare_len: 4096 * 8,
            main_sectors: 1 << 21,
            target_len: 1 << 21,
            main_lbs: 512,
        }
    }

    fn superblock() -> Superblock {
        let l = layout();
        Superblock {
            uuid: UUID,
            seq: 42,
            copy_index: 3,
            active_slot: 1,
            identity: identity(),
            cp_entries: 7,
            cp_crc: 0xdead_beef,
            journal_bytes: layout::journal_bytes(l.total_blocks()) as u32,
            total_blocks: l.total_blocks(),
        }
    }

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c_sw(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c_sw(b""), 0);
    }

    #[test]
    fn superblock_round_trip_and_check() {
        let mut b = vec![0u8; 4096];
        let mut scratch = vec![0u8; 4096];
        let sb = superblock();
        sb.encode(&mut b, crc32c_sw).unwrap();
        let d = Superblock::decode(&b, crc32c_sw, &mut scratch).unwrap();
        assert_eq!(d, sb);
        assert_eq!(d.check(3, &identity(), &layout()), Ok(()));
        assert_eq!(
            d.check(2, &identity(), &layout()),
            Err(FormatError::Identity)
        );
        let other = Identity {
            main_sectors: 1 << 20,
            ..identity()
        };
        assert_eq!(d.check(3, &other, &layout()), Err(FormatError::Identity));
        assert_eq!(
            Superblock::decode(&[0u8; 4096], crc32c_sw, &mut scratch),
            Err(FormatError::Blank)
        );
    }

    #[test]
    fn every_single_bit_flip_of_a_superblock_is_detected() {
        let mut b = vec![0u8; 4096];
        let mut scratch = vec![0u8; 4096];
        superblock().encode(&mut b, crc32c_sw).unwrap();
        for bit in 0..4096 * 8 {
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(
                Superblock::decode(&b, crc32c_sw, &mut scratch).is_err(),
                "bit {bit} not detected"
            );
            b[bit / 8] ^= 1 << (bit % 8);
        }
    }

    #[test]
    fn every_single_bit_flip_of_a_record_is_detected() {
        let changes = [
            Change::Remap { main: 5, spare: 9 },
            Change::Unmap { main: 6 },
            Change::Retire { spare: 11 },
        ];
        let mut b = vec![0u8; 512];
        let mut scratch = vec![0u8; 512];
        let len = encode_record(&mut b, 43, 42, &UUID, &changes, crc32c_sw).unwrap();
        assert_eq!(len, 512);
        let r = decode_record(&b, 43, 42, &UUID, crc32c_sw, &mut scratch).unwrap();
        assert_eq!(r.changes().collect::<Vec<_>>(), changes.map(Some));
        let used = RECORD_HEADER + 3 * ENTRY;
        for bit in 0..used * 8 {
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_record(&b, 43, 42, &UUID, crc32c_sw, &mut scratch).is_none(),
                "bit {bit} not detected"
            );
            b[bit / 8] ^= 1 << (bit % 8);
        }
        // The wrong sequence, base or set is not the expected record.
        assert!(decode_record(&b, 44, 42, &UUID, crc32c_sw, &mut scratch).is_none());
        assert!(decode_record(&b, 43, 41, &UUID, crc32c_sw, &mut scratch).is_none());
        assert!(decode_record(&b, 43, 42, b"fedcba9876543210", crc32c_sw, &mut scratch).is_none());
    }

    #[test]
    fn checkpoint_validation() {
        let mut b = vec![0u8; 4096];
        let (n, c) = encode_checkpoint(
            &mut b,
            [(1, 10), (5, 11)].into_iter(),
            [3, 7].into_iter(),
            crc32c_sw,
        )
        .unwrap();
        assert_eq!(n, 4);
        let mut got = Vec::new();
        decode_checkpoint(&b, n, c, 100, crc32c_sw, |ch| {
            got.push(ch);
            Ok(())
        })
        .unwrap();
        assert_eq!(got.len(), 4);
        let ok = |_| Ok(());
        assert_eq!(
            decode_checkpoint(&b, n, c ^ 1, 100, crc32c_sw, ok),
            Err(FormatError::Checksum)
        );
        assert_eq!(
            decode_checkpoint(&b, n, c, 11, crc32c_sw, ok),
            Err(FormatError::Entries)
        );
        // Out of order.
        let (n, c) = encode_checkpoint(
            &mut b,
            [(5, 1), (1, 2)].into_iter(),
            [].into_iter(),
            crc32c_sw,
        )
        .unwrap();
        assert_eq!(
            decode_checkpoint(&b, n, c, 100, crc32c_sw, ok),
            Err(FormatError::Entries)
        );
    }

    use crate::Table;

    /// A copy as bytes: superblock, slots and journal.
    struct Copy {
        bytes: Vec<u8>,
        areas: CopyAreas,
        tail: usize,
        seq: u64,
    }

    impl Copy {
        fn new(l: &SpareLayout, table: &Table, seq: u64, slot: u32) -> Self {
            let areas = CopyAreas::new(l);
            let mut c = Copy {
                bytes: vec![0u8; layout::copy_bytes(l.total_blocks()) as usize],
                areas,
                tail: 0,
                seq,
            };
            c.checkpoint(l, table, seq, slot);
            c
        }

        fn checkpoint(&mut self, l: &SpareLayout, table: &Table, seq: u64, slot: u32) {
            let a = self.areas;
            let s0 = a.slots[slot as usize] as usize;
            let (n, crc) = encode_checkpoint(
                &mut self.bytes[s0..s0 + a.slot_bytes as usize],
                table.remaps.iter().map(|(&m, &s)| (m, s)),
                table.retired.iter().copied(),
                crc32c_sw,
            )
            .unwrap();
            let j = a.journal as usize;
            self.bytes[j..j + a.journal_bytes as usize].fill(0);
            let sb = Superblock {
                uuid: UUID,
                seq,
                copy_index: 0,
                active_slot: slot,
                identity: identity(),
                cp_entries: n,
                cp_crc: crc,
                journal_bytes: a.journal_bytes as u32,
                total_blocks: l.total_blocks(),
            };
            sb.encode(&mut self.bytes, crc32c_sw).unwrap();
            self.tail = 0;
            self.seq = seq;
        }

        /// Appends a record; false when the journal is full.
        fn commit(&mut self, base: u64, changes: &[Change]) -> bool {
            let a = self.areas;
            let start = a.journal as usize + self.tail;
            let end = a.journal as usize + a.journal_bytes as usize;
            if self.tail + record_len(changes.len()) > a.journal_bytes as usize {
                return false;
            }
            let len = encode_record(
                &mut self.bytes[start..end],
                self.seq + 1,
                base,
                &UUID,
                changes,
                crc32c_sw,
            )
            .unwrap();
            self.tail += len;
            self.seq += 1;
            true
        }

        fn load(&self, l: &SpareLayout) -> Result<(Table, JournalEnd), FormatError> {
            let mut scratch = vec![0u8; self.bytes.len()];
            let sb = Superblock::decode(&self.bytes, crc32c_sw, &mut scratch)?;
            sb.check(0, &identity(), l)?;
            let a = self.areas;
            let mut t = Table::default();
            let s0 = a.slots[sb.active_slot as usize] as usize;
            decode_checkpoint(
                &self.bytes[s0..s0 + a.slot_bytes as usize],
                sb.cp_entries,
                sb.cp_crc,
                l.total_blocks(),
                crc32c_sw,
                |c| t.apply(c),
            )?;
            let j = a.journal as usize;
            let end = replay_journal(
                &self.bytes[j..j + a.journal_bytes as usize],
                sb.seq,
                &sb.uuid,
                crc32c_sw,
                &mut scratch,
                |c| t.apply(c),
                || FormatError::Entries,
            )?;
            Ok((t, end))
        }
    }

    #[test]
    fn journal_replay_and_checkpoint_rotation() {
        let l = layout();
        let mut model = Table::default();
        let mut c = Copy::new(&l, &model, 1, 0);
        let mut base = 1;
        let mut slot = 0;
        for i in 0..2000u64 {
            let ch = [Change::Remap {
                main: i * 3,
                spare: i,
            }];
            model.apply(ch[0]).unwrap();
            if !c.commit(base, &ch) {
                // Journal full: checkpoint into the other slot (the table already has i).
                slot = 1 - slot;
                let seq = c.seq + 1;
                c.checkpoint(&l, &model, seq, slot);
                base = seq;
            }
            let (t, end) = c.load(&l).unwrap();
            assert_eq!(t, model, "after commit {i}");
            assert_eq!(end.seq, c.seq, "sequence after commit {i}");
        }
        assert!(slot == 1 || base > 1, "the journal never filled");
    }

    #[test]
    fn a_torn_record_ends_the_journal_without_losing_earlier_ones() {
        let l = layout();
        let mut c = Copy::new(&l, &Table::default(), 1, 0);
        for i in 0..5 {
            assert!(c.commit(1, &[Change::Remap { main: i, spare: i }]));
        }
        // Tear the last record's second half.
        let j = c.areas.journal as usize + 4 * 512;
        c.bytes[j + 40..j + 512].fill(0xaa);
        let (t, end) = c.load(&l).unwrap();
        assert_eq!((end.seq, end.records, t.remaps.len()), (5, 4, 4));
    }

    #[test]
    fn stale_records_after_a_checkpoint_are_ignored() {
        let l = layout();
        let mut model = Table::default();
        let mut c = Copy::new(&l, &model, 1, 0);
        for i in 0..3 {
            let ch = Change::Remap { main: i, spare: i };
            model.apply(ch).unwrap();
            assert!(c.commit(1, &[ch]));
        }
        let saved = c.bytes.clone();
        // Checkpoint at seq 4 zeroes the journal; put the old journal back as if the zeroing
        // had not reached the disk: its records have base 1 and seq 2..4, not 5.
        c.checkpoint(&l, &model, 4, 1);
        let j = c.areas.journal as usize;
        let jl = c.areas.journal_bytes as usize;
        c.bytes[j..j + jl].copy_from_slice(&saved[j..j + jl]);
        let (t, end) = c.load(&l).unwrap();
        assert_eq!((t, end.seq, end.records), (model, 4, 0));
    }

    #[test]
    fn capacity_one_million_entries() {
        // A region of 1,100,000 blocks: its slot holds an entry for every block.
        let l = SpareLayout::new(0, 1_100_000 * 8, 4096, 5).unwrap();
        let a = CopyAreas::new(&l);
        let mut slot = vec![0u8; a.slot_bytes as usize];
        let n = 1_000_000u64;
        let (count, crc) = encode_checkpoint(
            &mut slot,
            (0..n).map(|i| (i * 2, i)),
            [n + 5].into_iter(),
            crc32c_sw,
        )
        .unwrap();
        assert_eq!(count, n + 1);
        let mut seen = 0u64;
        decode_checkpoint(&slot, count, crc, l.total_blocks(), crc32c_sw, |_| {
            seen += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, n + 1);
        // A commit of one entry writes one 512-byte record per copy whatever the size.
        assert_eq!(record_len(1), 512);
        assert_eq!(record_len(29), 512);
        assert_eq!(record_len(30), 1024);
    }

    proptest::proptest! {
        /// The decoders never panic on arbitrary bytes (a short fuzz; see docs for the long run).
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..5000),
                                seq in proptest::num::u64::ANY, entries in 0u64..400) {
            let mut scratch = vec![0u8; 8192];
            let _ = Superblock::decode(&bytes, crc32c_sw, &mut scratch);
            let _ = decode_record(&bytes, seq, seq.wrapping_sub(1), &UUID, crc32c_sw, &mut scratch);
            let _ = decode_checkpoint(&bytes, entries, 0, 100, crc32c_sw, |_| Ok(()));
            let _ = replay_journal(&bytes, seq, &UUID, crc32c_sw, &mut scratch, |_| Ok::<(), ()>(()), || ());
        }
    }
}
