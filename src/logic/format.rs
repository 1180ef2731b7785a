// SPDX-License-Identifier: GPL-2.0

//! The on-disk format of the remap table (docs/on-disk-format.md): superblock, entries,
//! checkpoints and journal records, with their checksums and validation. Which copy is
//! loaded is `copies`' policy.
//!
//! Pure encoding and decoding over byte slices. Checkpoints and journals are read and
//! written in windows of a caller-supplied buffer, so memory does not grow with the spare
//! region. The CRC32C update function is passed in: the kernel module uses the kernel's
//! `crc32c()`, userspace uses [`crc32c_update_sw`]; both compute the standard CRC32C
//! (check value `0xe3069283`).

use super::layout::{self, SpareLayout, SUPERBLOCK_BYTES};

/// A CRC32C update function on the raw state (no inversion at either end), as the kernel's
/// `crc32c(crc, p, len)`. The standard CRC32C of `d` is `!f(!0, d)`.
pub type CrcFn = fn(u32, &[u8]) -> u32;

/// Superblock magic.
pub const MAGIC: [u8; 8] = *b"DMREMAP\0";
/// Format version written. Version 1 (no scanner cursor) is read too.
pub const VERSION: u32 = 2;
/// The oldest format version read.
pub const MIN_VERSION: u32 = 1;
/// Journal record magic.
pub const RECORD_MAGIC: [u8; 4] = *b"DMRJ";
/// Bytes of a journal record header.
pub const RECORD_HEADER: usize = 48;
/// Smallest metadata I/O unit: records are padded to it, checkpoints rounded up to it.
pub const MIN_IO_UNIT: u32 = 512;
/// Largest metadata I/O unit (the alignment of every metadata area, see `layout`).
pub const MAX_IO_UNIT: u32 = 4096;
/// Most entries a journal record may hold, so that a record is at most
/// [`MAX_RECORD_BYTES`] and a reader never needs a larger window.
pub const MAX_RECORD_ENTRIES: usize = (MAX_RECORD_BYTES - RECORD_HEADER) / ENTRY;
/// Most bytes a journal record takes.
pub const MAX_RECORD_BYTES: usize = 16384;
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
    /// The metadata describes a longer target than the table line (shrinking).
    Shorter,
    /// Entries out of order, out of range or contradictory.
    Entries,
    /// A buffer is too small for what it must hold, or reading the device failed.
    Space,
    /// A superblock field holds a value no writer writes, though the checksum matches.
    Corrupt,
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

/// The standard CRC32C of `data` with update function `crc`.
pub fn crc32c(crc: CrcFn, data: &[u8]) -> u32 {
    !crc(!0, data)
}

/// The standard CRC32C of `buf` with the 4 bytes at `field` taken as zero.
fn crc_without(crc: CrcFn, buf: &[u8], field: usize) -> u32 {
    let s = crc(!0, &buf[..field]);
    let s = crc(s, &[0u8; 4]);
    !crc(s, &buf[field + 4..])
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
    /// Size of the main device (sectors) when the identity was last written; informative.
    pub main_sectors: u64,
    /// Target length (sectors).
    pub target_len: u64,
    /// Logical block size of the main device.
    pub main_lbs: u32,
}

impl Identity {
    /// Whether metadata written with this identity serves a table described by `want`:
    /// the same geometry and main logical block size, and a target at least as long
    /// (a grown device keeps its table; see [`FormatError::Shorter`]). The size of the main
    /// device is not compared: it may grow.
    pub fn check(&self, want: &Identity) -> Result<(), FormatError> {
        if self.copies != want.copies
            || self.block_size != want.block_size
            || self.spare_start != want.spare_start
            || self.spare_len != want.spare_len
            || self.main_lbs != want.main_lbs
        {
            return Err(FormatError::Identity);
        }
        if self.target_len > want.target_len {
            return Err(FormatError::Shorter);
        }
        Ok(())
    }
}

/// Scanner positions are below this. They are main block numbers, which are below 2^55
/// anyway: a device's size in bytes fits in 64 bits (in 63 in the kernel's `loff_t`) and a
/// block is at least 512 bytes.
pub const SCAN_POSITION_LIMIT: u64 = 1 << 56;
/// The tag in the high 32 bits of the `main` field of a [`Change::Scan`] entry. Main block
/// numbers never reach 2^63 (see [`SCAN_POSITION_LIMIT`]), so no other entry has it.
const SCAN_TAG: u64 = 0xFFFF_FFFE_0000_0000;
/// Bits of the `main` field that hold [`SCAN_TAG`].
const SCAN_TAG_MASK: u64 = 0xFFFF_FFFF_0000_0000;
/// Where a [`Change::Scan`] entry keeps the state in its `spare` field.
const SCAN_STATE_SHIFT: u32 = 62;

/// What the background scanner is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScanState {
    /// Not scanning.
    #[default]
    Idle,
    /// Scanning.
    Running,
    /// Stopped midway, to go on later.
    Paused,
}

impl ScanState {
    /// The state's number on disk: 0 idle, 1 running, 2 paused.
    pub fn to_raw(self) -> u32 {
        match self {
            Self::Idle => 0,
            Self::Running => 1,
            Self::Paused => 2,
        }
    }

    /// The state numbered `raw` on disk, if any.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(Self::Idle),
            1 => Some(Self::Running),
            2 => Some(Self::Paused),
            _ => None,
        }
    }

    /// The state's name: `idle`, `running` or `paused`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Running => "running",
            Self::Paused => "paused",
        }
    }
}

/// The background scanner's saved progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScanCursor {
    /// The next main block to scan, below [`SCAN_POSITION_LIMIT`].
    pub position: u64,
    /// Passes completed.
    pub passes: u32,
    /// What the scanner is doing.
    pub state: ScanState,
}

impl ScanCursor {
    /// Whether the cursor can be stored: its position is below [`SCAN_POSITION_LIMIT`].
    pub fn is_valid(&self) -> bool {
        self.position < SCAN_POSITION_LIMIT
    }
}

/// A decoded superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superblock {
    /// The format version read ([`MIN_VERSION`] to [`VERSION`]); [`Superblock::encode`]
    /// writes [`VERSION`] whatever it says.
    pub version: u32,
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
    /// Metadata I/O unit in bytes (stored as 0 for 512 by metadata written before the field
    /// existed).
    pub io_unit: u32,
    /// Entries in the active checkpoint.
    pub cp_entries: u64,
    /// CRC32C of those entries.
    pub cp_crc: u32,
    /// Journal size in bytes.
    pub journal_bytes: u32,
    /// Blocks in the spare region.
    pub total_blocks: u64,
    /// The scanner's cursor as of the active checkpoint (the default in version 1).
    pub scan: ScanCursor,
}

impl Superblock {
    /// Encodes into `out` (at least 4096 bytes; the first 4096 are written), as version
    /// [`VERSION`]. A scanner cursor that cannot be stored is refused.
    pub fn encode(&self, out: &mut [u8], crc: CrcFn) -> Result<(), FormatError> {
        if !self.scan.is_valid() {
            return Err(FormatError::Corrupt);
        }
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
        put_u32(b, 92, self.io_unit);
        put_u64(b, 96, self.cp_entries);
        put_u32(b, 104, self.cp_crc);
        put_u32(b, 108, self.journal_bytes);
        put_u64(b, 112, self.total_blocks);
        put_u64(b, 120, self.scan.position);
        put_u32(b, 128, self.scan.passes);
        put_u32(b, 132, self.scan.state.to_raw());
        let c = crc32c(crc, b);
        put_u32(b, SB_CRC, c);
        Ok(())
    }

    /// Decodes and checks magic, version and checksum. A version 1 superblock has the
    /// default scanner cursor (its reserved bytes are not looked at); one of version 2 whose
    /// cursor is out of range is [`FormatError::Corrupt`].
    pub fn decode(buf: &[u8], crc: CrcFn) -> Result<Self, FormatError> {
        let b = buf
            .get(..SUPERBLOCK_BYTES as usize)
            .ok_or(FormatError::Space)?;
        if b.iter().all(|&x| x == 0) {
            return Err(FormatError::Blank);
        }
        if b[0..8] != MAGIC {
            return Err(FormatError::Magic);
        }
        let version = get_u32(b, 8);
        if !(MIN_VERSION..=VERSION).contains(&version) {
            return Err(FormatError::Version);
        }
        if get_u32(b, SB_CRC) != crc_without(crc, b, SB_CRC) {
            return Err(FormatError::Checksum);
        }
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[16..32]);
        let io_unit = match get_u32(b, 92) {
            0 => MIN_IO_UNIT,
            u => u,
        };
        let scan = if version >= 2 {
            decode_scan(b)?
        } else {
            ScanCursor::default()
        };
        Ok(Self {
            version,
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
            io_unit,
            cp_entries: get_u64(b, 96),
            cp_crc: get_u32(b, 104),
            journal_bytes: get_u32(b, 108),
            total_blocks: get_u64(b, 112),
            scan,
        })
    }

    /// Checks that this is copy `index` of metadata laid out as `layout` that serves a
    /// table described by `id` (see [`Identity::check`]).
    pub fn check(
        &self,
        index: u32,
        id: &Identity,
        layout: &SpareLayout,
    ) -> Result<(), FormatError> {
        let t = layout.total_blocks();
        if self.copy_index != index
            || self.total_blocks != t
            || u64::from(self.journal_bytes) != layout::journal_bytes(t)
            || self.active_slot > 1
            || self.cp_entries > t
            || !valid_io_unit(self.io_unit)
        {
            return Err(FormatError::Identity);
        }
        self.identity.check(id)
    }
}

/// The scanner cursor of a version 2 superblock `b`.
fn decode_scan(b: &[u8]) -> Result<ScanCursor, FormatError> {
    let scan = ScanCursor {
        position: get_u64(b, 120),
        passes: get_u32(b, 128),
        state: ScanState::from_raw(get_u32(b, 132)).ok_or(FormatError::Corrupt)?,
    };
    if !scan.is_valid() {
        return Err(FormatError::Corrupt);
    }
    Ok(scan)
}

/// Whether `unit` can be a metadata I/O unit: a power of two from 512 to 4096.
pub fn valid_io_unit(unit: u32) -> bool {
    unit.is_power_of_two() && (MIN_IO_UNIT..=MAX_IO_UNIT).contains(&unit)
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
    /// The scanner's cursor is now this (journal records only; checkpoints keep it in the
    /// superblock).
    Scan(ScanCursor),
}

impl Change {
    /// Whether the change can be stored: a scanner cursor's position must be in range
    /// ([`ScanCursor::is_valid`]).
    pub fn is_valid(&self) -> bool {
        match self {
            Self::Scan(c) => c.is_valid(),
            _ => true,
        }
    }

    /// Writes the change as a 16-byte entry at the start of `b`. A [`Change::Scan`] is
    /// `main = 0xFFFF_FFFE_0000_0000 | passes`, `spare = position | state << 62`; its
    /// position must be valid ([`Change::is_valid`]).
    pub fn encode(self, b: &mut [u8]) {
        let (m, s) = match self {
            Self::Remap { main, spare } => (main, spare),
            Self::Unmap { main } => (main, NONE),
            Self::Retire { spare } => (NONE, spare),
            Self::Scan(c) => (
                SCAN_TAG | u64::from(c.passes),
                c.position | (u64::from(c.state.to_raw()) << SCAN_STATE_SHIFT),
            ),
        };
        put_u64(b, 0, m);
        put_u64(b, 8, s);
    }

    fn decode(b: &[u8]) -> Option<Self> {
        match (get_u64(b, 0), get_u64(b, 8)) {
            (NONE, NONE) => None,
            (NONE, spare) => Some(Self::Retire { spare }),
            (main, spare) if main & SCAN_TAG_MASK == SCAN_TAG => Self::decode_scan(main, spare),
            (main, NONE) => Some(Self::Unmap { main }),
            (main, spare) => Some(Self::Remap { main, spare }),
        }
    }

    /// The [`Change::Scan`] entry `(main, spare)`, if its state and position are valid.
    fn decode_scan(main: u64, spare: u64) -> Option<Self> {
        let c = ScanCursor {
            position: spare & ((1 << SCAN_STATE_SHIFT) - 1),
            passes: main as u32,
            state: ScanState::from_raw((spare >> SCAN_STATE_SHIFT) as u32)?,
        };
        c.is_valid().then_some(Self::Scan(c))
    }
}

/// Bytes a journal record with `count` entries takes with I/O unit `unit`.
pub fn record_len(count: usize, unit: u32) -> usize {
    // A unit is never 0; `max` keeps a division by zero (and its panic path) out.
    let unit = unit.max(1) as usize;
    (RECORD_HEADER + ENTRY * count).div_ceil(unit) * unit
}

/// Encodes a journal record into `out` (at least [`record_len`] bytes, zero-padded);
/// returns its length. At most [`MAX_RECORD_ENTRIES`] changes.
pub fn encode_record(
    out: &mut [u8],
    seq: u64,
    base_seq: u64,
    uuid: &[u8; 16],
    changes: &[Change],
    crc: CrcFn,
    unit: u32,
) -> Result<usize, FormatError> {
    if changes.is_empty()
        || changes.len() > MAX_RECORD_ENTRIES
        || !changes.iter().all(Change::is_valid)
    {
        return Err(FormatError::Entries);
    }
    let len = record_len(changes.len(), unit);
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
    let c = crc32c(crc, &b[..used]);
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
/// `seq`, `base_seq` and set UUID all right, at most [`MAX_RECORD_ENTRIES`] entries, and
/// it fits in `buf`.
pub fn decode_record<'a>(
    buf: &'a [u8],
    seq: u64,
    base_seq: u64,
    uuid: &[u8; 16],
    crc: CrcFn,
    unit: u32,
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
    if count == 0 || count > MAX_RECORD_ENTRIES {
        return None;
    }
    let used = RECORD_HEADER + count * ENTRY;
    let len = record_len(count, unit);
    if len > buf.len() {
        return None;
    }
    if get_u32(h, REC_CRC) != crc_without(crc, &buf[..used], REC_CRC) {
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

/// Bytes a read window for [`JournalReader`] and [`CheckpointReader`] must at least
/// have (the largest record).
pub const MIN_WINDOW: usize = MAX_RECORD_BYTES;

/// Walks the journal of a copy whose active checkpoint is `sb`, as a [`StreamReader`]:
/// each read starts at the next record, and a record cut by the end of one window is read
/// again whole at the start of the next.
pub struct JournalReader {
    base_seq: u64,
    uuid: [u8; 16],
    unit: u32,
    journal_bytes: u64,
    end: JournalEnd,
    done: bool,
}

impl JournalReader {
    /// A reader of a journal of `journal_bytes` bytes following checkpoint `sb`.
    pub fn new(sb: &Superblock, journal_bytes: u64) -> Self {
        Self {
            base_seq: sb.seq,
            uuid: sb.uuid,
            unit: sb.io_unit,
            journal_bytes,
            end: JournalEnd {
                seq: sb.seq,
                tail: 0,
                records: 0,
            },
            done: false,
        }
    }

    /// Where the journal ends (so far).
    pub fn end(&self) -> JournalEnd {
        self.end
    }
}

/// Walks a journal held whole in memory (`journal`); see [`JournalReader`].
pub fn replay_journal(
    sb: &Superblock,
    journal: &[u8],
    crc: CrcFn,
    apply: impl FnMut(Change) -> Result<(), FormatError>,
) -> Result<JournalEnd, FormatError> {
    let mut r = JournalReader::new(sb, journal.len() as u64);
    read_all(journal, journal.len().max(MIN_WINDOW), &mut r, crc, apply)?;
    Ok(r.end())
}

/// A reader of a checkpoint or a journal, piece by piece: [`StreamReader::next_read`] says
/// which bytes to read, [`StreamReader::feed`] takes them, until `next_read` says `None`.
/// Memory is the caller's window, whatever the area's size.
pub trait StreamReader {
    /// The next `(offset, length)` to read, at most `window` bytes (at least
    /// [`MIN_WINDOW`], a multiple of the I/O unit and of [`ENTRY`]); `None` when done.
    fn next_read(&self, window: usize) -> Option<(u64, usize)>;
    /// Takes the bytes `next_read` asked for, calling `apply` for every change in them;
    /// an `apply` error is returned.
    fn feed(
        &mut self,
        data: &[u8],
        crc: CrcFn,
        apply: &mut dyn FnMut(Change) -> Result<(), FormatError>,
    ) -> Result<(), FormatError>;
}

impl StreamReader for JournalReader {
    /// The journal bytes to read next, `(offset, length)`, with at most `window` bytes (at
    /// least [`MIN_WINDOW`], a multiple of the I/O unit); `None` when the walk is over.
    /// Each read starts at the next record: a record cut by the end of one window is read
    /// again whole at the start of the next.
    fn next_read(&self, window: usize) -> Option<(u64, usize)> {
        let tail = self.end.tail as u64;
        if self.done || tail >= self.journal_bytes {
            return None;
        }
        Some((
            tail,
            (self.journal_bytes - tail).min(window as u64) as usize,
        ))
    }

    /// Decodes the records in `data` (the bytes `next_read` asked for), calling `apply`
    /// for every change of every valid record, in order. An `apply` error is returned.
    fn feed(
        &mut self,
        data: &[u8],
        crc: CrcFn,
        apply: &mut dyn FnMut(Change) -> Result<(), FormatError>,
    ) -> Result<(), FormatError> {
        if data.len() < MIN_WINDOW && (self.end.tail + data.len()) as u64 != self.journal_bytes {
            return Err(FormatError::Space);
        }
        let mut off = 0;
        while let Some(r) = decode_record(
            &data[off..],
            self.end.seq + 1,
            self.base_seq,
            &self.uuid,
            crc,
            self.unit,
        ) {
            for c in r.changes() {
                apply(c.ok_or(FormatError::Entries)?)?;
            }
            self.end.seq = r.seq;
            self.end.records += 1;
            off += r.len;
        }
        // Nothing decoded at the start of a window that holds any whole record: the end.
        self.done = off == 0;
        self.end.tail += off;
        Ok(())
    }
}

impl StreamReader for CheckpointReader {
    /// The slot bytes to read next, `(offset, length)`, at most `window` bytes (a multiple
    /// of the I/O unit and of [`ENTRY`]); `None` when every entry was read.
    fn next_read(&self, window: usize) -> Option<(u64, usize)> {
        if self.left == 0 || self.at >= self.total {
            return None;
        }
        Some((self.at, (self.total - self.at).min(window as u64) as usize))
    }

    /// Checks and applies the entries in `data` (the bytes `next_read` asked for).
    fn feed(
        &mut self,
        data: &[u8],
        crc: CrcFn,
        apply: &mut dyn FnMut(Change) -> Result<(), FormatError>,
    ) -> Result<(), FormatError> {
        if !data.len().is_multiple_of(ENTRY) || data.is_empty() {
            return Err(FormatError::Space);
        }
        let take = (data.len() / ENTRY).min(self.left as usize);
        let bytes = &data[..take * ENTRY];
        self.crc_state = crc(self.crc_state, bytes);
        for e in bytes.chunks_exact(ENTRY) {
            let c = Change::decode(e).ok_or(FormatError::Entries)?;
            self.order.check(c)?;
            apply(c)?;
        }
        self.left -= take as u64;
        self.at += data.len() as u64;
        Ok(())
    }
}

/// Drives `reader` over `area`, an area held whole in memory, in windows of `window`
/// bytes (userspace tools and tests).
pub fn read_all(
    area: &[u8],
    window: usize,
    reader: &mut dyn StreamReader,
    crc: CrcFn,
    mut apply: impl FnMut(Change) -> Result<(), FormatError>,
) -> Result<(), FormatError> {
    while let Some((off, len)) = reader.next_read(window) {
        let start = usize::try_from(off).map_err(|_| FormatError::Space)?;
        let data = area.get(start..start + len).ok_or(FormatError::Space)?;
        reader.feed(data, crc, &mut apply)?;
    }
    Ok(())
}

/// The order rule of a checkpoint: remaps strictly increasing by main block, then retired
/// spare blocks strictly increasing, spare blocks below `total_blocks`, no unmaps and no
/// scanner cursors (the superblock holds the checkpoint's cursor).
pub struct CheckpointOrder {
    total_blocks: u64,
    last_main: Option<u64>,
    last_retired: Option<u64>,
}

impl CheckpointOrder {
    /// The rule for a region of `total_blocks` blocks.
    pub fn new(total_blocks: u64) -> Self {
        Self {
            total_blocks,
            last_main: None,
            last_retired: None,
        }
    }

    /// Checks that `c` may follow the entries checked before.
    pub fn check(&mut self, c: Change) -> Result<(), FormatError> {
        match c {
            Change::Remap { main, spare } => {
                if self.last_retired.is_some()
                    || self.last_main.is_some_and(|m| main <= m)
                    || spare >= self.total_blocks
                {
                    return Err(FormatError::Entries);
                }
                self.last_main = Some(main);
            }
            Change::Retire { spare } => {
                if self.last_retired.is_some_and(|r| spare <= r) || spare >= self.total_blocks {
                    return Err(FormatError::Entries);
                }
                self.last_retired = Some(spare);
            }
            Change::Unmap { .. } | Change::Scan(_) => return Err(FormatError::Entries),
        }
        Ok(())
    }
}

/// Encodes a checkpoint entry by entry (into buffers the caller writes out as they fill),
/// keeping the count and the CRC.
pub struct CheckpointEncoder {
    order: CheckpointOrder,
    entries: u64,
    crc_state: u32,
}

impl CheckpointEncoder {
    /// An encoder for a region of `total_blocks` blocks.
    pub fn new(total_blocks: u64) -> Self {
        Self {
            order: CheckpointOrder::new(total_blocks),
            entries: 0,
            crc_state: !0,
        }
    }

    /// Encodes `c` into `out[..ENTRY]`; `c` must follow the [`CheckpointOrder`].
    pub fn put(&mut self, c: Change, out: &mut [u8], crc: CrcFn) -> Result<(), FormatError> {
        self.order.check(c)?;
        let e = out.get_mut(..ENTRY).ok_or(FormatError::Space)?;
        c.encode(e);
        self.crc_state = crc(self.crc_state, e);
        self.entries += 1;
        Ok(())
    }

    /// Entries encoded so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The CRC32C of the entries encoded so far.
    pub fn crc(&self) -> u32 {
        !self.crc_state
    }
}

/// Encodes a whole checkpoint into `out`: `remaps` (sorted by main block, unique), then
/// `retired` (sorted). Returns the number of entries and their CRC.
pub fn encode_checkpoint(
    out: &mut [u8],
    remaps: impl Iterator<Item = (u64, u64)>,
    retired: impl Iterator<Item = u64>,
    total_blocks: u64,
    crc: CrcFn,
) -> Result<(u64, u32), FormatError> {
    let mut enc = CheckpointEncoder::new(total_blocks);
    let changes = remaps
        .map(|(main, spare)| Change::Remap { main, spare })
        .chain(retired.map(|spare| Change::Retire { spare }));
    for c in changes {
        let at = enc.entries() as usize * ENTRY;
        enc.put(c, out.get_mut(at..).ok_or(FormatError::Space)?, crc)?;
    }
    Ok((enc.entries(), enc.crc()))
}

/// Bytes of the slot a checkpoint of `entries` entries occupies with I/O unit `unit` (at
/// least one unit).
pub fn checkpoint_bytes(entries: u64, unit: u32) -> u64 {
    let unit = u64::from(unit.max(1));
    entries.saturating_mul(ENTRY as u64).max(1).div_ceil(unit) * unit
}

/// Reads the active checkpoint of a copy, as a [`StreamReader`]: checks the order of its
/// entries as they come and its CRC at the end ([`Self::finish`]). A caller that applies
/// entries before `finish` must be able to undo them.
pub struct CheckpointReader {
    order: CheckpointOrder,
    crc_state: u32,
    expected_crc: u32,
    left: u64,
    at: u64,
    total: u64,
}

impl CheckpointReader {
    /// A reader of the checkpoint `sb` describes, in a slot of `slot_bytes`.
    pub fn new(sb: &Superblock, slot_bytes: u64) -> Result<Self, FormatError> {
        let total = checkpoint_bytes(sb.cp_entries, sb.io_unit);
        if total > slot_bytes {
            return Err(FormatError::Entries);
        }
        Ok(Self {
            order: CheckpointOrder::new(sb.total_blocks),
            crc_state: !0,
            expected_crc: sb.cp_crc,
            left: sb.cp_entries,
            at: 0,
            total,
        })
    }

    /// Whether every entry was read and the CRC matches.
    pub fn finish(&self) -> Result<(), FormatError> {
        if self.left != 0 {
            return Err(FormatError::Space);
        }
        if !self.crc_state != self.expected_crc {
            return Err(FormatError::Checksum);
        }
        Ok(())
    }
}

/// Applies copy `sb`'s scanner cursor, its active checkpoint (`slot`, the slot's bytes)
/// and then its journal (`journal`, the journal's bytes) through `apply`; returns where the
/// journal ends. The cursor comes first, so the journal's newer ones replace it.
pub fn replay_copy(
    sb: &Superblock,
    slot: &[u8],
    journal: &[u8],
    crc: CrcFn,
    mut apply: impl FnMut(Change) -> Result<(), FormatError>,
) -> Result<JournalEnd, FormatError> {
    apply(Change::Scan(sb.scan))?;
    let mut cp = CheckpointReader::new(sb, slot.len() as u64)?;
    read_all(slot, slot.len().max(MIN_WINDOW), &mut cp, crc, &mut apply)?;
    cp.finish()?;
    replay_journal(sb, journal, crc, apply)
}

/// What reading one copy found: its superblock and where its journal ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyScan {
    /// The copy's superblock.
    pub sb: Superblock,
    /// Where its journal ends.
    pub end: JournalEnd,
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

/// Software CRC32C update (Castagnoli, reflected) on the raw state; see [`CrcFn`].
pub fn crc32c_update_sw(state: u32, data: &[u8]) -> u32 {
    let mut c = state;
    for &b in data {
        c = CRC32C_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    c
}

/// Software CRC32C (standard form), for userspace and for checking the kernel's.
pub fn crc32c_sw(data: &[u8]) -> u32 {
    crc32c(crc32c_update_sw, data)
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    const UUID: [u8; 16] = *b"0123456789abcdef";
    const CRC: CrcFn = crc32c_update_sw;

    fn layout() -> SpareLayout {
        SpareLayout::new(0, 4096 * 8, 4096, 5).unwrap()
    }

    /// The identity the format tests (and those of `copies`) use.
    pub(crate) fn identity() -> Identity {
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
            version: VERSION,
            uuid: UUID,
            seq: 42,
            copy_index: 3,
            active_slot: 1,
            identity: identity(),
            io_unit: 512,
            cp_entries: 7,
            cp_crc: 0xdead_beef,
            journal_bytes: layout::journal_bytes(l.total_blocks()) as u32,
            total_blocks: l.total_blocks(),
            scan: ScanCursor {
                position: 123_456,
                passes: 7,
                state: ScanState::Paused,
            },
        }
    }

    #[test]
    fn crc32c_check_value_and_incremental() {
        assert_eq!(crc32c_sw(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c_sw(b""), 0);
        let s = CRC(!0, b"1234");
        assert_eq!(!CRC(s, b"56789"), 0xe306_9283);
        let mut b = *b"12345678";
        assert_eq!(crc_without(CRC, &b, 2), {
            b[2..6].fill(0);
            crc32c_sw(&b)
        });
    }

    #[test]
    fn superblock_round_trip_and_check() {
        let mut b = vec![0u8; 4096];
        let sb = superblock();
        sb.encode(&mut b, CRC).unwrap();
        let d = Superblock::decode(&b, CRC).unwrap();
        assert_eq!(d, sb);
        assert_eq!(d.check(3, &identity(), &layout()), Ok(()));
        assert_eq!(
            d.check(2, &identity(), &layout()),
            Err(FormatError::Identity)
        );
        // The main device may have grown, and so may the target; not shrink.
        let grown = Identity {
            main_sectors: 1 << 22,
            target_len: 1 << 22,
            ..identity()
        };
        assert_eq!(d.check(3, &grown, &layout()), Ok(()));
        let shorter = Identity {
            target_len: 1 << 20,
            ..identity()
        };
        assert_eq!(d.check(3, &shorter, &layout()), Err(FormatError::Shorter));
        let other = Identity {
            main_lbs: 4096,
            ..identity()
        };
        assert_eq!(d.check(3, &other, &layout()), Err(FormatError::Identity));
        assert_eq!(
            Superblock::decode(&[0u8; 4096], CRC),
            Err(FormatError::Blank)
        );
    }

    #[test]
    fn io_unit_zero_reads_as_512_and_invalid_units_are_refused() {
        let mut b = vec![0u8; 4096];
        let sb = Superblock {
            io_unit: 0,
            ..superblock()
        };
        sb.encode(&mut b, CRC).unwrap();
        let d = Superblock::decode(&b, CRC).unwrap();
        assert_eq!(d.io_unit, 512);
        for bad in [256, 768, 8192] {
            let sb = Superblock {
                io_unit: bad,
                ..superblock()
            };
            sb.encode(&mut b, CRC).unwrap();
            let d = Superblock::decode(&b, CRC).unwrap();
            assert_eq!(
                d.check(3, &identity(), &layout()),
                Err(FormatError::Identity)
            );
        }
    }

    #[test]
    fn every_single_bit_flip_of_a_superblock_is_detected() {
        let mut b = vec![0u8; 4096];
        superblock().encode(&mut b, CRC).unwrap();
        for bit in 0..4096 * 8 {
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(
                Superblock::decode(&b, CRC).is_err(),
                "bit {bit} not detected"
            );
            b[bit / 8] ^= 1 << (bit % 8);
        }
    }

    /// `sb` in the version 1 layout: version 1, nothing after offset 120 (`garbage` there
    /// instead, which version 1 ignores), its own CRC.
    fn encode_v1(sb: &Superblock, garbage: u8) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        sb.encode(&mut b, CRC).unwrap();
        put_u32(&mut b, 8, 1);
        b[120..].fill(garbage);
        let c = crc_without(CRC, &b, SB_CRC);
        put_u32(&mut b, SB_CRC, c);
        b
    }

    /// `sb` encoded, then `edit` applied and the CRC made right again.
    fn encode_edited(sb: &Superblock, edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        sb.encode(&mut b, CRC).unwrap();
        edit(&mut b);
        let c = crc_without(CRC, &b, SB_CRC);
        put_u32(&mut b, SB_CRC, c);
        b
    }

    #[test]
    fn superblock_scanner_fields_and_version_1() {
        let sb = superblock();
        let mut b = vec![0u8; 4096];
        sb.encode(&mut b, CRC).unwrap();
        assert_eq!(get_u32(&b, 8), 2);
        assert_eq!(
            (get_u64(&b, 120), get_u32(&b, 128), get_u32(&b, 132)),
            (123_456, 7, 2)
        );
        assert!(b[136..].iter().all(|&x| x == 0));
        // A version 1 superblock decodes with the default cursor, whatever its reserved
        // bytes hold; it is encoded again as version 2.
        for garbage in [0, 0xa5] {
            let d = Superblock::decode(&encode_v1(&sb, garbage), CRC).unwrap();
            let want = Superblock {
                version: 1,
                scan: ScanCursor::default(),
                ..sb
            };
            assert_eq!(d, want);
            assert_eq!(d.check(3, &identity(), &layout()), Ok(()));
            d.encode(&mut b, CRC).unwrap();
            let again = Superblock::decode(&b, CRC).unwrap();
            assert_eq!(again.version, VERSION);
        }
        for version in [0, 3, 0x100] {
            let b = encode_edited(&sb, |b| put_u32(b, 8, version));
            assert_eq!(Superblock::decode(&b, CRC), Err(FormatError::Version));
        }
    }

    #[test]
    fn invalid_superblock_cursors_are_refused() {
        let sb = superblock();
        for state in [3, 4, u32::MAX] {
            let b = encode_edited(&sb, |b| put_u32(b, 132, state));
            assert_eq!(Superblock::decode(&b, CRC), Err(FormatError::Corrupt));
        }
        for position in [SCAN_POSITION_LIMIT, u64::MAX] {
            let b = encode_edited(&sb, |b| put_u64(b, 120, position));
            assert_eq!(Superblock::decode(&b, CRC), Err(FormatError::Corrupt));
            let bad = Superblock {
                scan: ScanCursor {
                    position,
                    ..sb.scan
                },
                ..sb
            };
            let mut out = vec![0u8; 4096];
            assert_eq!(bad.encode(&mut out, CRC), Err(FormatError::Corrupt));
        }
        let last = Superblock {
            scan: ScanCursor {
                position: SCAN_POSITION_LIMIT - 1,
                passes: u32::MAX,
                state: ScanState::Running,
            },
            ..sb
        };
        let mut b = vec![0u8; 4096];
        last.encode(&mut b, CRC).unwrap();
        assert_eq!(Superblock::decode(&b, CRC), Ok(last));
    }

    /// Cursors at the edges of every field.
    fn cursors() -> [ScanCursor; 4] {
        [
            ScanCursor::default(),
            ScanCursor {
                position: 1,
                passes: 1,
                state: ScanState::Running,
            },
            ScanCursor {
                position: SCAN_POSITION_LIMIT - 1,
                passes: u32::MAX,
                state: ScanState::Paused,
            },
            ScanCursor {
                position: 1 << 40,
                passes: 0,
                state: ScanState::Idle,
            },
        ]
    }

    #[test]
    fn scan_entries_round_trip() {
        for c in cursors() {
            let mut e = [0u8; ENTRY];
            Change::Scan(c).encode(&mut e);
            assert_eq!(get_u64(&e, 0), 0xFFFF_FFFE_0000_0000 | u64::from(c.passes));
            assert_eq!(
                get_u64(&e, 8),
                c.position | (u64::from(c.state.to_raw()) << 62)
            );
            assert_eq!(Change::decode(&e), Some(Change::Scan(c)));
        }
        // Among other changes in a record.
        let changes = [
            Change::Remap { main: 5, spare: 9 },
            Change::Scan(cursors()[2]),
            Change::Unmap { main: 6 },
            Change::Scan(cursors()[1]),
        ];
        let mut b = vec![0u8; 512];
        encode_record(&mut b, 43, 42, &UUID, &changes, CRC, 512).unwrap();
        let r = decode_record(&b, 43, 42, &UUID, CRC, 512).unwrap();
        assert_eq!(r.changes().collect::<Vec<_>>(), changes.map(Some));
        // The largest main block a remap can have is not a cursor.
        let m = (1u64 << 63) - 1;
        let mut e = [0u8; ENTRY];
        Change::Remap { main: m, spare: 1 }.encode(&mut e);
        assert_eq!(
            Change::decode(&e),
            Some(Change::Remap { main: m, spare: 1 })
        );
    }

    #[test]
    fn invalid_scan_entries_are_refused() {
        let tag = 0xFFFF_FFFE_0000_0000u64;
        let bad = [
            (tag, SCAN_POSITION_LIMIT),
            (tag | 5, (1 << 62) - 1),
            (tag, 3 << 62),
            (tag | 9, (3 << 62) | 17),
            (tag, NONE),
        ];
        for (main, spare) in bad {
            let mut e = [0u8; ENTRY];
            put_u64(&mut e, 0, main);
            put_u64(&mut e, 8, spare);
            assert_eq!(Change::decode(&e), None, "{main:#x} {spare:#x}");
        }
        // The encoder refuses a cursor it could not store.
        let far = Change::Scan(ScanCursor {
            position: SCAN_POSITION_LIMIT,
            ..ScanCursor::default()
        });
        let mut b = vec![0u8; 512];
        assert_eq!(
            encode_record(&mut b, 2, 1, &UUID, &[far], CRC, 512),
            Err(FormatError::Entries)
        );
        // A record with a valid CRC holding such an entry makes the copy invalid.
        let sb = Superblock {
            seq: 1,
            ..superblock()
        };
        let ok = Change::Scan(ScanCursor::default());
        encode_record(&mut b, 2, 1, &UUID, &[ok], CRC, 512).unwrap();
        put_u64(&mut b, RECORD_HEADER + 8, 3 << 62);
        let c = crc_without(CRC, &b[..RECORD_HEADER + ENTRY], REC_CRC);
        put_u32(&mut b, REC_CRC, c);
        assert_eq!(
            replay_journal(&sb, &b, CRC, |_| Ok(())),
            Err(FormatError::Entries)
        );
    }

    #[test]
    fn checkpoints_hold_no_cursor() {
        let scan = Change::Scan(ScanCursor::default());
        assert_eq!(
            CheckpointOrder::new(100).check(scan),
            Err(FormatError::Entries)
        );
        let mut out = vec![0u8; 64];
        assert!(CheckpointEncoder::new(100)
            .put(scan, &mut out, CRC)
            .is_err());
        // A slot holding one, with a matching CRC, is refused.
        scan.encode(&mut out);
        let sb = Superblock {
            cp_entries: 1,
            cp_crc: crc32c(CRC, &out[..ENTRY]),
            total_blocks: 100,
            ..superblock()
        };
        let mut slot = vec![0u8; 512];
        slot[..ENTRY].copy_from_slice(&out[..ENTRY]);
        assert_eq!(read_cp(&slot, &sb, 4096), Err(FormatError::Entries));
    }

    #[test]
    fn every_single_bit_flip_of_a_record_is_detected() {
        let changes = [
            Change::Remap { main: 5, spare: 9 },
            Change::Unmap { main: 6 },
            Change::Retire { spare: 11 },
        ];
        for unit in [512, 4096] {
            let mut b = vec![0u8; unit as usize];
            let len = encode_record(&mut b, 43, 42, &UUID, &changes, CRC, unit).unwrap();
            assert_eq!(len, unit as usize);
            let r = decode_record(&b, 43, 42, &UUID, CRC, unit).unwrap();
            assert_eq!(r.changes().collect::<Vec<_>>(), changes.map(Some));
            let used = RECORD_HEADER + 3 * ENTRY;
            for bit in 0..used * 8 {
                b[bit / 8] ^= 1 << (bit % 8);
                assert!(
                    decode_record(&b, 43, 42, &UUID, CRC, unit).is_none(),
                    "bit {bit} not detected"
                );
                b[bit / 8] ^= 1 << (bit % 8);
            }
            // The wrong sequence, base or set is not the expected record.
            assert!(decode_record(&b, 44, 42, &UUID, CRC, unit).is_none());
            assert!(decode_record(&b, 43, 41, &UUID, CRC, unit).is_none());
            assert!(decode_record(&b, 43, 42, b"fedcba9876543210", CRC, unit).is_none());
        }
    }

    #[test]
    fn records_are_bounded() {
        let many = vec![Change::Unmap { main: 1 }; MAX_RECORD_ENTRIES + 1];
        let mut b = vec![0u8; 2 * MAX_RECORD_BYTES];
        assert_eq!(
            encode_record(&mut b, 1, 0, &UUID, &many, CRC, 512),
            Err(FormatError::Entries)
        );
        let n = encode_record(&mut b, 1, 0, &UUID, &many[1..], CRC, 4096).unwrap();
        assert!(n <= MAX_RECORD_BYTES);
    }

    fn checkpoint_of(
        remaps: &[(u64, u64)],
        retired: &[u64],
        total: u64,
        unit: u32,
    ) -> (Vec<u8>, Superblock) {
        let mut b = vec![0u8; 1 << 16];
        let (n, c) = encode_checkpoint(
            &mut b,
            remaps.iter().copied(),
            retired.iter().copied(),
            total,
            CRC,
        )
        .unwrap();
        let sb = Superblock {
            cp_entries: n,
            cp_crc: c,
            total_blocks: total,
            io_unit: unit,
            ..superblock()
        };
        (b, sb)
    }

    fn read_cp(slot: &[u8], sb: &Superblock, window: usize) -> Result<Vec<Change>, FormatError> {
        let mut got = Vec::new();
        let mut r = CheckpointReader::new(sb, slot.len() as u64)?;
        read_all(slot, window, &mut r, CRC, |c| {
            got.push(c);
            Ok(())
        })?;
        r.finish()?;
        Ok(got)
    }

    #[test]
    fn checkpoint_validation() {
        let (b, sb) = checkpoint_of(&[(1, 10), (5, 11)], &[3, 7], 100, 512);
        assert_eq!(read_cp(&b, &sb, 4096).unwrap().len(), 4);
        let bad_crc = Superblock {
            cp_crc: sb.cp_crc ^ 1,
            ..sb
        };
        assert_eq!(read_cp(&b, &bad_crc, 4096), Err(FormatError::Checksum));
        let small = Superblock {
            total_blocks: 11,
            ..sb
        };
        assert_eq!(read_cp(&b, &small, 4096), Err(FormatError::Entries));
        // The encoder refuses what the decoder would refuse: out of order, a remap after
        // a retired block, an unmap.
        let mut out = vec![0u8; 64];
        assert!(encode_checkpoint(
            &mut out,
            [(5, 1), (1, 2)].into_iter(),
            [].into_iter(),
            100,
            CRC
        )
        .is_err());
        let mut e = CheckpointEncoder::new(100);
        e.put(Change::Retire { spare: 3 }, &mut out, CRC).unwrap();
        assert!(e
            .put(Change::Remap { main: 1, spare: 2 }, &mut out, CRC)
            .is_err());
        assert!(e.put(Change::Unmap { main: 1 }, &mut out, CRC).is_err());
        // A slot too small for the entries the superblock claims.
        assert_eq!(
            read_cp(
                &b[..512],
                &Superblock {
                    cp_entries: 40,
                    ..sb
                },
                4096
            ),
            Err(FormatError::Entries)
        );
    }

    #[test]
    fn checkpoint_windows_of_any_size_read_the_same() {
        let remaps: Vec<(u64, u64)> = (0..3000u64).map(|i| (i * 3, i)).collect();
        let retired: Vec<u64> = (3000..3100u64).collect();
        for unit in [512, 4096] {
            let (b, sb) = checkpoint_of(&remaps, &retired, 10_000, unit);
            let whole = read_cp(&b, &sb, 1 << 16).unwrap();
            assert_eq!(whole.len(), 3100);
            for w in [unit as usize, 4096, 8192, 12288] {
                assert_eq!(read_cp(&b, &sb, w).unwrap(), whole, "window {w}");
            }
        }
    }

    use crate::Table;

    /// A copy as bytes: superblock, slots and journal.
    struct Copy {
        bytes: Vec<u8>,
        areas: CopyAreas,
        tail: usize,
        seq: u64,
        base: u64,
        unit: u32,
    }

    impl Copy {
        fn new(l: &SpareLayout, table: &Table, seq: u64, slot: u32, unit: u32) -> Self {
            let areas = CopyAreas::new(l);
            let mut c = Copy {
                bytes: vec![0u8; layout::copy_bytes(l.total_blocks()) as usize],
                areas,
                tail: 0,
                seq,
                base: seq,
                unit,
            };
            c.checkpoint(l, table, seq, slot);
            c
        }

        /// A checkpoint as the module writes it: the inactive slot, then the superblock;
        /// the journal is left as it is (its records carry the old base).
        fn checkpoint(&mut self, l: &SpareLayout, table: &Table, seq: u64, slot: u32) {
            let a = self.areas;
            let s0 = a.slots[slot as usize] as usize;
            let (n, crc) = encode_checkpoint(
                &mut self.bytes[s0..s0 + a.slot_bytes as usize],
                table.remaps.iter().map(|(&m, &s)| (m, s)),
                table.retired.iter().copied(),
                l.total_blocks(),
                CRC,
            )
            .unwrap();
            let sb = Superblock {
                version: VERSION,
                uuid: UUID,
                seq,
                copy_index: 0,
                active_slot: slot,
                identity: identity(),
                io_unit: self.unit,
                cp_entries: n,
                cp_crc: crc,
                journal_bytes: a.journal_bytes as u32,
                total_blocks: l.total_blocks(),
                scan: table.scan,
            };
            sb.encode(&mut self.bytes, CRC).unwrap();
            self.tail = 0;
            self.seq = seq;
            self.base = seq;
        }

        /// Appends a record; false when the journal is full.
        fn commit(&mut self, changes: &[Change]) -> bool {
            let a = self.areas;
            let start = a.journal as usize + self.tail;
            let end = a.journal as usize + a.journal_bytes as usize;
            if self.tail + record_len(changes.len(), self.unit) > a.journal_bytes as usize {
                return false;
            }
            let len = encode_record(
                &mut self.bytes[start..end],
                self.seq + 1,
                self.base,
                &UUID,
                changes,
                CRC,
                self.unit,
            )
            .unwrap();
            self.tail += len;
            self.seq += 1;
            true
        }

        fn load(&self, l: &SpareLayout, window: usize) -> Result<(Table, JournalEnd), FormatError> {
            let sb = Superblock::decode(&self.bytes, CRC)?;
            sb.check(0, &identity(), l)?;
            let a = self.areas;
            let mut t = Table::default();
            t.apply(Change::Scan(sb.scan))?;
            let s0 = a.slots[sb.active_slot as usize] as usize;
            let j = a.journal as usize;
            let slot = &self.bytes[s0..s0 + a.slot_bytes as usize];
            let mut cp = CheckpointReader::new(&sb, a.slot_bytes)?;
            read_all(slot, window, &mut cp, CRC, |c| t.apply(c))?;
            cp.finish()?;
            let mut jr = JournalReader::new(&sb, a.journal_bytes);
            let journal = &self.bytes[j..j + a.journal_bytes as usize];
            read_all(journal, window, &mut jr, CRC, |c| t.apply(c))?;
            Ok((t, jr.end()))
        }
    }

    #[test]
    fn journal_replay_and_checkpoint_rotation() {
        let l = layout();
        for unit in [512, 4096] {
            let mut model = Table::default();
            let mut c = Copy::new(&l, &model, 1, 0, unit);
            let mut slot = 0;
            let mut checkpoints = 0;
            for i in 0..2000u64 {
                let ch = [Change::Remap {
                    main: i * 3,
                    spare: i,
                }];
                model.apply(ch[0]).unwrap();
                if !c.commit(&ch) {
                    // Journal full: checkpoint into the other slot at a new sequence number.
                    slot = 1 - slot;
                    let seq = c.seq + 1;
                    c.checkpoint(&l, &model, seq, slot);
                    checkpoints += 1;
                }
                if i % 97 == 0 || i > 1990 {
                    for window in [MIN_WINDOW, 3 * MIN_WINDOW] {
                        let (t, end) = c.load(&l, window).unwrap();
                        assert_eq!(t, model, "after commit {i}");
                        assert_eq!(end.seq, c.seq, "sequence after commit {i}");
                    }
                }
            }
            assert!(checkpoints > 0, "the journal never filled");
        }
    }

    #[test]
    fn replay_starts_from_the_superblock_cursor() {
        let l = layout();
        let mut model = Table {
            scan: cursors()[1],
            ..Table::default()
        };
        let mut c = Copy::new(&l, &model, 1, 0, 512);
        let (t, _) = c.load(&l, MIN_WINDOW).unwrap();
        assert_eq!(t.scan, cursors()[1]);
        // Newer cursors in the journal replace it, the last one wins.
        assert!(c.commit(&[Change::Remap { main: 3, spare: 4 }]));
        assert_eq!(c.load(&l, MIN_WINDOW).unwrap().0.scan, cursors()[1]);
        for k in [2, 3] {
            assert!(c.commit(&[Change::Scan(cursors()[k])]));
        }
        for ch in [
            Change::Remap { main: 3, spare: 4 },
            Change::Scan(cursors()[3]),
        ] {
            model.apply(ch).unwrap();
        }
        let (t, end) = c.load(&l, MIN_WINDOW).unwrap();
        assert_eq!((&t, end.records), (&model, 3));
        // The same from the areas held whole in memory.
        let a = c.areas;
        let sb = Superblock::decode(&c.bytes, CRC).unwrap();
        let s0 = a.slots[sb.active_slot as usize] as usize;
        let j = a.journal as usize;
        let mut whole = Table::default();
        replay_copy(
            &sb,
            &c.bytes[s0..s0 + a.slot_bytes as usize],
            &c.bytes[j..j + a.journal_bytes as usize],
            CRC,
            |ch| whole.apply(ch),
        )
        .unwrap();
        assert_eq!(whole, model);
        // A checkpoint keeps the cursor in its superblock; the old records are ignored.
        model.scan = cursors()[2];
        c.checkpoint(&l, &model, 9, 1);
        let (t, end) = c.load(&l, MIN_WINDOW).unwrap();
        assert_eq!((t, end.records), (model, 0));
    }

    #[test]
    fn records_cut_by_the_window_are_read_whole() {
        // Records of 1 to 5 units, so they straddle window boundaries; every window size
        // reads the same journal.
        let l = SpareLayout::new(0, 40960 * 8, 4096, 5).unwrap();
        let mut model = Table::default();
        let mut c = Copy::new(&l, &model, 1, 0, 512);
        let mut main = 0u64;
        for i in 0..150usize {
            let n = 1 + (i * 37) % 150;
            let ch: Vec<Change> = (0..n as u64)
                .map(|k| Change::Remap {
                    main: main + k,
                    spare: main + k,
                })
                .collect();
            main += n as u64;
            if !c.commit(&ch) {
                break;
            }
            for x in &ch {
                model.apply(*x).unwrap();
            }
        }
        let (t, end) = c.load(&l, MIN_WINDOW).unwrap();
        assert!(end.tail > 2 * MIN_WINDOW, "journal too short for the test");
        assert_eq!(t, model);
        for w in [MIN_WINDOW + 512, 2 * MIN_WINDOW, 5 * MIN_WINDOW + 1536] {
            assert_eq!(c.load(&l, w).unwrap(), (model.clone(), end), "window {w}");
        }
    }

    #[test]
    fn a_torn_record_ends_the_journal_without_losing_earlier_ones() {
        let l = layout();
        let mut c = Copy::new(&l, &Table::default(), 1, 0, 512);
        for i in 0..5 {
            assert!(c.commit(&[Change::Remap { main: i, spare: i }]));
        }
        // Tear the last record's second half.
        let j = c.areas.journal as usize + 4 * 512;
        c.bytes[j + 40..j + 512].fill(0xaa);
        let (t, end) = c.load(&l, MIN_WINDOW).unwrap();
        assert_eq!((end.seq, end.records, t.remaps.len()), (5, 4, 4));
    }

    #[test]
    fn records_of_an_older_checkpoint_are_ignored_without_zeroing() {
        let l = layout();
        let mut model = Table::default();
        let mut c = Copy::new(&l, &model, 1, 0, 512);
        for i in 0..3 {
            let ch = Change::Remap { main: i, spare: i };
            model.apply(ch).unwrap();
            assert!(c.commit(&[ch]));
        }
        // A checkpoint at a new sequence number leaves the journal as it is: its records
        // have base 1 and seq 2..4, the new checkpoint expects base 5 and seq 6.
        c.checkpoint(&l, &model, 5, 1);
        let (t, end) = c.load(&l, MIN_WINDOW).unwrap();
        assert_eq!((&t, end.seq, end.records), (&model, 5, 0));
        // A new record overwrites the first old one; the old second one stays unreachable.
        let ch = Change::Remap { main: 9, spare: 9 };
        model.apply(ch).unwrap();
        assert!(c.commit(&[ch]));
        let (t, end) = c.load(&l, MIN_WINDOW).unwrap();
        assert_eq!((t, end.seq, end.records), (model, 6, 1));
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
            l.total_blocks(),
            CRC,
        )
        .unwrap();
        assert_eq!(count, n + 1);
        let sb = Superblock {
            cp_entries: count,
            cp_crc: crc,
            total_blocks: l.total_blocks(),
            ..superblock()
        };
        let mut seen = 0u64;
        let mut r = CheckpointReader::new(&sb, a.slot_bytes).unwrap();
        read_all(&slot, 1 << 16, &mut r, CRC, |_| {
            seen += 1;
            Ok(())
        })
        .unwrap();
        r.finish().unwrap();
        assert_eq!(seen, n + 1);
        // A commit of one entry writes one I/O unit per copy whatever the table size.
        assert_eq!(record_len(1, 512), 512);
        assert_eq!(record_len(29, 512), 512);
        assert_eq!(record_len(30, 512), 1024);
        assert_eq!(record_len(1, 4096), 4096);
    }

    proptest::proptest! {
        /// The decoders never panic on arbitrary bytes.
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..40000),
                                seq in proptest::num::u64::ANY, entries in 0u64..4000,
                                unit_shift in 0u32..4) {
            let unit = 512u32 << unit_shift;
            let _ = Superblock::decode(&bytes, CRC);
            let _ = decode_record(&bytes, seq, seq.wrapping_sub(1), &UUID, CRC, unit);
            let sb = Superblock { cp_entries: entries, seq, io_unit: unit, total_blocks: 100, ..superblock() };
            if let Ok(mut r) = CheckpointReader::new(&sb, bytes.len() as u64) {
                let _ = read_all(&bytes, MIN_WINDOW, &mut r, CRC, |_| Ok(()));
                let _ = r.finish();
            }
            let len = bytes.len() / unit as usize * unit as usize;
            let mut jr = JournalReader::new(&sb, len as u64);
            let _ = read_all(&bytes[..len], MIN_WINDOW, &mut jr, CRC, |_| Ok(()));
        }
    }
}
