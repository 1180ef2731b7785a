// SPDX-License-Identifier: GPL-2.0

//! `dm-remap-tool`: inspect, check, repair and format the remap table that dm-remap keeps
//! on its spare device (docs/on-disk-format.md), on a device or an image file.
//!
//! It uses the same format code and the same copy-selection rule as the kernel module
//! (`src/logic/copies.rs`).

use clap::{Args, Parser, Subcommand};
use dm_remap_logic::copies::{self, CopyState, Refusal};
use dm_remap_logic::format::{
    self, crc32c_update_sw, CopyAreas, CopyScan, CrcFn, FormatError, Identity, ScanCursor,
    Superblock, MIN_IO_UNIT,
};
use dm_remap_logic::layout::{SpareLayout, DEFAULT_METADATA_COPIES, SUPERBLOCK_BYTES};
use dm_remap_logic::Table;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::PathBuf;
use std::process::ExitCode;

const CRC: CrcFn = crc32c_update_sw;

#[derive(Parser)]
#[command(name = "dm-remap-tool", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct Region {
    /// Spare device or image file.
    path: PathBuf,
    /// First sector of the spare region (as in the table line).
    #[arg(long, default_value_t = 0)]
    spare_start: u64,
    /// Sectors in the spare region; read from the metadata when not given.
    #[arg(long)]
    spare_len: Option<u64>,
    /// Block size in bytes; read from the metadata when not given.
    #[arg(long)]
    block_size: Option<u32>,
    /// Number of metadata copies; read from the metadata when not given.
    #[arg(long)]
    copies: Option<u32>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print the remap table and the scanner's cursor of the newest valid copy (refused, as dm-remap refuses to load
    /// it, when a copy of the same set holds a newer state that cannot be read).
    Dump {
        #[command(flatten)]
        region: Region,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Check every copy; exit 0 if all are valid and current, 1 if some are not but the
    /// table can be recovered, 2 if no copy is valid or a copy holds a newer state that
    /// cannot be read.
    Check {
        #[command(flatten)]
        region: Region,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Rewrite every copy from the newest valid one (its table and scanner cursor, in the
    /// current format version), at a new sequence number (refused
    /// when a copy of the same set holds a newer state that cannot be read).
    Repair {
        #[command(flatten)]
        region: Region,
    },
    /// Write empty metadata (refuses to overwrite valid metadata without --force).
    Format {
        #[command(flatten)]
        region: Region,
        /// Size of the main device in sectors.
        #[arg(long)]
        main_sectors: u64,
        /// Target length in sectors (default: the main device size).
        #[arg(long)]
        target_len: Option<u64>,
        /// Logical block size of the main device.
        #[arg(long, default_value_t = 512)]
        main_lbs: u32,
        /// Overwrite valid metadata.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Serialize)]
struct CopyReport {
    index: u32,
    offset: u64,
    status: String,
    checkpoint_seq: Option<u64>,
    seq: Option<u64>,
    checkpoint_entries: Option<u64>,
    journal_records: Option<usize>,
    /// The format version of the copy's superblock, when it decodes.
    version: Option<u32>,
    /// What the copy-selection policy needs to know of the copy.
    #[serde(skip)]
    state: CopyState,
    /// The copy's table when it is valid.
    #[serde(skip)]
    table: Option<Table>,
}

struct Metadata {
    file: File,
    layout: SpareLayout,
    areas: CopyAreas,
    copies: Vec<CopyReport>,
    /// Where the geometry came from, for the report.
    found: String,
}

fn read_at(file: &File, off: u64, len: usize) -> Result<Vec<u8>, String> {
    let mut b = vec![0u8; len];
    file.read_exact_at(&mut b, off)
        .map_err(|e| format!("read of {len} bytes at {off}: {e}"))?;
    Ok(b)
}

fn describe(e: FormatError) -> &'static str {
    match e {
        FormatError::Blank => "blank (never written)",
        FormatError::Magic => "bad magic",
        FormatError::Version => "unknown format version",
        FormatError::Checksum => "checksum mismatch",
        FormatError::Identity => "belongs to another geometry, copy or main device",
        FormatError::Shorter => "describes a longer target than the newest copy",
        FormatError::Entries => "invalid entries",
        FormatError::Space => "truncated",
        FormatError::Corrupt => "superblock field out of range",
    }
}

/// Size in bytes of a file or block device.
fn size_of(file: &mut File) -> Result<u64, String> {
    file.seek(SeekFrom::End(0))
        .map_err(|e| format!("cannot find the size: {e}"))
}

/// The logical block size of `file` if it is a block device (from sysfs), else 512.
fn logical_block_size(file: &File) -> u32 {
    let Ok(md) = file.metadata() else {
        return MIN_IO_UNIT;
    };
    if !md.file_type().is_block_device() {
        return MIN_IO_UNIT;
    }
    let (major, minor) = (
        (md.rdev() >> 8) & 0xfff,
        (md.rdev() & 0xff) | ((md.rdev() >> 12) & 0xfff00),
    );
    // A whole disk has queue/ in its directory, a partition in its parent's.
    ["queue", "../queue"]
        .iter()
        .find_map(|q| {
            std::fs::read_to_string(format!(
                "/sys/dev/block/{major}:{minor}/{q}/logical_block_size"
            ))
            .ok()?
            .trim()
            .parse()
            .ok()
        })
        .unwrap_or(MIN_IO_UNIT)
}

/// A superblock that decodes, read at byte `off`, or why not.
fn superblock_at(file: &File, off: u64) -> Result<Superblock, FormatError> {
    let b = read_at(file, off, SUPERBLOCK_BYTES as usize).map_err(|_| FormatError::Space)?;
    Superblock::decode(&b, CRC)
}

/// Finds the geometry of the metadata: from the options, else from copy 0's superblock,
/// else by probing where the other copies would be for every copy count and block size,
/// for a region from `spare_start` (with the given length, or to the end of the device).
/// Copy `i` starts at block `floor(i * total / copies)`, so each guess names the places to
/// look; a superblock found there says the whole geometry.
fn find_geometry(region: &Region, file: &mut File) -> Result<(u64, u32, u32, String), String> {
    if let (Some(len), Some(bs), Some(c)) = (region.spare_len, region.block_size, region.copies) {
        return Ok((len, bs, c, "given".into()));
    }
    let start = region.spare_start;
    let first = superblock_at(file, start * 512);
    if let Ok(sb) = first {
        let id = sb.identity;
        return Ok((id.spare_len, id.block_size, id.copies, "copy 0".into()));
    }
    let size = size_of(file)? / 512;
    let len = region
        .spare_len
        .unwrap_or_else(|| size.saturating_sub(start));
    let copies = region.copies.map_or(2..=16, |c| c..=c);
    let sizes: Vec<u32> = match region.block_size {
        Some(bs) => vec![bs],
        None => (9..=16).map(|s| 1u32 << s).collect(),
    };
    let mut tried = std::collections::BTreeSet::new();
    for c in copies {
        for &bs in &sizes {
            let Ok(l) = SpareLayout::new(start, len, bs, c) else {
                continue;
            };
            for i in 1..c {
                let off = l.block_sector(l.copy_start(i)) * 512;
                if !tried.insert(off) {
                    continue;
                }
                let Ok(sb) = superblock_at(file, off) else {
                    continue;
                };
                let id = sb.identity;
                if id.spare_start == start && sb.copy_index == i && id.copies == c {
                    let how = format!(
                        "copy 0 is unusable ({}); geometry from copy {i} at byte {off}",
                        describe(first.err().unwrap_or(FormatError::Space))
                    );
                    return Ok((id.spare_len, id.block_size, id.copies, how));
                }
            }
        }
    }
    Err(format!(
        "copy 0 is unusable ({}) and no other copy was found where {} would put it; give --spare-len, --block-size and --copies",
        describe(first.err().unwrap_or(FormatError::Space)),
        if region.spare_len.is_some() {
            "the given region"
        } else {
            "a region reaching the end of the device"
        }
    ))
}

impl Metadata {
    fn open(region: &Region, write: bool) -> Result<Self, String> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(write)
            .open(&region.path)
            .map_err(|e| format!("{}: {e}", region.path.display()))?;
        let (len, bs, copies, found) = find_geometry(region, &mut file)?;
        let layout = SpareLayout::new(region.spare_start, len, bs, copies)
            .map_err(|e| format!("invalid geometry: {e:?}"))?;
        let mut m = Metadata {
            file,
            areas: CopyAreas::new(&layout),
            layout,
            copies: Vec::new(),
            found,
        };
        m.scan()?;
        Ok(m)
    }

    fn copy_offset(&self, i: u32) -> u64 {
        self.layout.block_sector(self.layout.copy_start(i)) * 512
    }

    fn scan(&mut self) -> Result<(), String> {
        let mut sbs = Vec::new();
        for i in 0..self.layout.copies() {
            let off = self.copy_offset(i);
            sbs.push((off, superblock_at(&self.file, off)));
        }
        // The identity to check against: that of the decodable superblock with the highest
        // sequence number (the tool does not see the main device).
        let reference = sbs
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .max_by_key(|sb| sb.seq)
            .map(|sb| sb.identity);
        self.copies.clear();
        for (i, (off, sb)) in sbs.into_iter().enumerate() {
            let i = i as u32;
            let mut rep = CopyReport {
                index: i,
                offset: off,
                status: String::new(),
                checkpoint_seq: None,
                seq: None,
                checkpoint_entries: None,
                journal_records: None,
                version: sb.as_ref().ok().map(|sb| sb.version),
                state: CopyState::default(),
                table: None,
            };
            let decoded = sb.as_ref().ok().copied();
            let r = sb.and_then(|sb| {
                sb.check(i, &reference.ok_or(FormatError::Identity)?, &self.layout)?;
                Ok(sb)
            });
            match r.and_then(|sb| self.replay(off, &sb).map(|x| (sb, x))) {
                Ok((sb, (end, table))) => {
                    rep.status = "valid".into();
                    rep.checkpoint_seq = Some(sb.seq);
                    rep.seq = Some(end.seq);
                    rep.checkpoint_entries = Some(sb.cp_entries);
                    rep.journal_records = Some(end.records);
                    rep.state = CopyState::new(Ok(CopyScan { sb, end }), Some(sb));
                    rep.table = Some(table);
                }
                Err(e) => {
                    rep.status = describe(e).into();
                    rep.state = CopyState::new(Err(e), decoded);
                }
            }
            self.copies.push(rep);
        }
        Ok(())
    }

    fn replay(
        &self,
        off: u64,
        sb: &Superblock,
    ) -> Result<(format::JournalEnd, Table), FormatError> {
        let a = &self.areas;
        let slot = read_at(
            &self.file,
            off + a.slots[sb.active_slot as usize],
            a.slot_bytes as usize,
        )
        .map_err(|_| FormatError::Space)?;
        let journal = read_at(&self.file, off + a.journal, a.journal_bytes as usize)
            .map_err(|_| FormatError::Space)?;
        let mut t = Table::default();
        let end = format::replay_copy(sb, &slot, &journal, CRC, |c| t.apply(c))?;
        Ok((end, t))
    }

    fn states(&self) -> Vec<CopyState> {
        self.copies.iter().map(|c| c.state).collect()
    }

    /// The newest valid copy, whatever else the copies hold.
    fn newest(&self) -> Option<&CopyReport> {
        copies::newest_copy(&self.states()).map(|k| &self.copies[k])
    }

    /// The copy to show or repair from, its state and its table, by the module's rule
    /// (`copies::choose`): the newest valid copy, unless a copy of its set holds a newer
    /// state that cannot be read.
    fn chosen(&self) -> Result<(&CopyReport, CopyScan, &Table), Refusal> {
        let (k, scan) = copies::choose(&self.states())?;
        let c = &self.copies[k];
        let table = c.table.as_ref().ok_or(Refusal::NoValidCopy)?;
        Ok((c, scan, table))
    }

    /// What refusal `r` says when it is about a newer copy; `None` when no copy is valid
    /// (each command says so in its words).
    fn newer_copy(&self, r: Refusal) -> Option<String> {
        let Refusal::Newer { copy, newest, why } = r else {
            return None;
        };
        Some(format!(
            "copy {copy} holds a newer checkpoint (seq {}) than any valid copy's state (copy \
             {newest}, seq {}) but is not valid ({}): the newest metadata copy cannot be read \
             and no readable copy holds its state; dm-remap refuses to load an older one",
            self.copies[copy].state.sb.map_or(0, |sb| sb.seq),
            self.copies[newest].seq.unwrap_or(0),
            why.map_or("unknown", describe)
        ))
    }

    /// Which copies hold the state of `newest`, and whether they must be rewritten (some
    /// copy does not hold it, or a higher sequence number shows anywhere), by the module's
    /// rule.
    fn health(&self, newest: &CopyScan) -> (Vec<bool>, bool) {
        let mut current = vec![false; self.copies.len()];
        let due = copies::health(&self.states(), newest, self.max_seq(), &mut current);
        (current, due)
    }

    /// The highest sequence number any copy shows.
    fn max_seq(&self) -> u64 {
        copies::max_seq(&self.states())
    }

    /// Rewrites copy `i` with `table` (its scanner cursor too) as a checkpoint at sequence
    /// `seq`, as the module does: the inactive slot, then the superblock (of the current
    /// format version), each flushed. The journal stays (its records follow an older
    /// checkpoint and are ignored).
    fn write_copy(&self, i: u32, base: &Superblock, table: &Table, seq: u64) -> Result<(), String> {
        let off = self.copy_offset(i);
        let a = &self.areas;
        let old_slot = self.copies[i as usize]
            .state
            .scan()
            .map_or(1, |s| s.sb.active_slot);
        let slot = 1 - old_slot;
        let mut buf = vec![0u8; a.slot_bytes as usize];
        let (n, crc) = format::encode_checkpoint(
            &mut buf,
            table.remaps.iter().map(|(&m, &s)| (m, s)),
            table.retired.iter().copied(),
            self.layout.total_blocks(),
            CRC,
        )
        .map_err(|e| format!("table does not fit: {e:?}"))?;
        let used = format::checkpoint_bytes(n, base.io_unit) as usize;
        let io = |b: &[u8], at: u64| {
            self.file
                .write_all_at(b, at)
                .and_then(|()| self.file.sync_data())
                .map_err(|e| format!("write at {at}: {e}"))
        };
        io(&buf[..used], off + a.slots[slot as usize])?;
        let sb = Superblock {
            version: format::VERSION,
            seq,
            copy_index: i,
            active_slot: slot,
            cp_entries: n,
            cp_crc: crc,
            scan: table.scan,
            ..*base
        };
        let mut sbb = vec![0u8; SUPERBLOCK_BYTES as usize];
        sb.encode(&mut sbb, CRC)
            .map_err(|e| format!("encode: {e:?}"))?;
        io(&sbb, off)
    }
}

fn print_reports(m: &Metadata) {
    if m.found != "copy 0" && m.found != "given" {
        println!("{}", m.found);
    }
    for c in &m.copies {
        // An older format version is valid; the next load or repair rewrites it.
        let old = match c.version {
            Some(v) if v < format::VERSION => format!(", format version {v}"),
            _ => String::new(),
        };
        match (c.checkpoint_seq, c.seq) {
            (Some(cs), Some(s)) => println!(
                "copy {} at byte {}: valid{old}, checkpoint seq {cs} ({} entries), {} journal records, seq {s}",
                c.index,
                c.offset,
                c.checkpoint_entries.unwrap_or(0),
                c.journal_records.unwrap_or(0)
            ),
            _ => println!("copy {} at byte {}: {}", c.index, c.offset, c.status),
        }
    }
}

/// The background scanner's cursor, for `dump --json`.
#[derive(Serialize)]
struct ScannerJson {
    position: u64,
    passes: u32,
    state: &'static str,
}

impl From<ScanCursor> for ScannerJson {
    fn from(c: ScanCursor) -> Self {
        Self {
            position: c.position,
            passes: c.passes,
            state: c.state.name(),
        }
    }
}

#[derive(Serialize)]
struct DumpJson<'a> {
    uuid: String,
    seq: u64,
    block_size: u32,
    spare_blocks: u64,
    scanner: ScannerJson,
    remaps: Vec<[u64; 2]>,
    retired: Vec<u64>,
    copies: &'a [CopyReport],
}

fn uuid_string(u: &[u8; 16]) -> String {
    u.iter().map(|b| format!("{b:02x}")).collect()
}

fn dump(m: &Metadata, json: bool) -> Result<u8, String> {
    let (_, scan, table) = m
        .chosen()
        .map_err(|r| m.newer_copy(r).unwrap_or("no valid metadata copy".into()))?;
    let (sb, end) = (&scan.sb, &scan.end);
    if json {
        let d = DumpJson {
            uuid: uuid_string(&sb.uuid),
            seq: end.seq,
            block_size: sb.identity.block_size,
            spare_blocks: m.layout.data_blocks(),
            scanner: table.scan.into(),
            remaps: table.remaps.iter().map(|(&a, &b)| [a, b]).collect(),
            retired: table.retired.iter().copied().collect(),
            copies: &m.copies,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&d).map_err(|e| e.to_string())?
        );
    } else {
        if m.found != "copy 0" && m.found != "given" {
            eprintln!("{}", m.found);
        }
        println!(
            "set {} seq {} block_size {} spare blocks {} remapped {} retired {}",
            uuid_string(&sb.uuid),
            end.seq,
            sb.identity.block_size,
            m.layout.data_blocks(),
            table.remaps.len(),
            table.retired.len()
        );
        let c = table.scan;
        println!(
            "scanner position {} passes {} state {}",
            c.position,
            c.passes,
            c.state.name()
        );
        for (main, spare) in &table.remaps {
            println!("{main} spare {spare}");
        }
        for s in &table.retired {
            println!("retired {s}");
        }
    }
    Ok(0)
}

fn check(m: &Metadata, json: bool) -> Result<u8, String> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&m.copies).map_err(|e| e.to_string())?
        );
    } else {
        print_reports(m);
    }
    let (newest, scan, _) = match m.chosen() {
        Ok(c) => c,
        Err(r) => {
            match m.newer_copy(r) {
                Some(why) => eprintln!("{why}; repair refuses to overwrite it"),
                None => eprintln!("no valid copy: the table cannot be recovered"),
            }
            return Ok(2);
        }
    };
    let seq = scan.end.seq;
    if !m.health(&scan).1 {
        println!("all {} copies valid at seq {seq}", m.copies.len());
        Ok(0)
    } else {
        println!(
            "copy {} (seq {seq}) is the newest valid; run repair to rewrite the others",
            newest.index
        );
        Ok(1)
    }
}

fn repair(m: &Metadata) -> Result<u8, String> {
    let (_, scan, table) = m.chosen().map_err(|r| match m.newer_copy(r) {
        Some(why) => format!("{why}; not repairing from it (that would overwrite the newer state)"),
        None => "no valid metadata copy to repair from".into(),
    })?;
    // A new sequence number, above anything any copy holds, as the module's checkpoints
    // take; in the module's order (stale and invalid copies first), so a current copy is
    // never the only one being rewritten.
    let seq = m.max_seq() + 1;
    let (current, _) = m.health(&scan);
    for i in copies::rewrite_order(&current) {
        m.write_copy(i, &scan.sb, table, seq)?;
        println!("copy {i} rewritten at seq {seq}");
    }
    Ok(0)
}

fn format_region(
    region: Region,
    main_sectors: u64,
    target_len: Option<u64>,
    main_lbs: u32,
    force: bool,
) -> Result<u8, String> {
    let (Some(len), Some(bs)) = (region.spare_len, region.block_size) else {
        return Err("format needs --spare-len and --block-size".into());
    };
    let copies = region.copies.unwrap_or(DEFAULT_METADATA_COPIES);
    let region = Region {
        copies: Some(copies),
        ..region
    };
    let m = Metadata::open(&region, true)?;
    if m.newest().is_some() && !force {
        return Err("valid metadata exists; use --force to overwrite it".into());
    }
    let seq = m.max_seq() + 1;
    let mut uuid = [0u8; 16];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut uuid))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    let base = Superblock {
        version: format::VERSION,
        uuid,
        seq,
        copy_index: 0,
        active_slot: 0,
        identity: Identity {
            copies,
            block_size: bs,
            spare_start: region.spare_start,
            spare_len: len,
            main_sectors,
            target_len: target_len.unwrap_or(main_sectors),
            main_lbs,
        },
        io_unit: logical_block_size(&m.file).max(MIN_IO_UNIT),
        cp_entries: 0,
        cp_crc: 0,
        journal_bytes: m.areas.journal_bytes as u32,
        total_blocks: m.layout.total_blocks(),
        scan: ScanCursor::default(),
    };
    for i in 0..copies {
        m.write_copy(i, &base, &Table::default(), seq)?;
    }
    println!(
        "formatted {} copies, set {}, seq {seq}, {} spare blocks",
        copies,
        uuid_string(&uuid),
        m.layout.data_blocks()
    );
    Ok(0)
}

fn run(cli: Cli) -> Result<u8, String> {
    match cli.cmd {
        Cmd::Dump { region, json } => dump(&Metadata::open(&region, false)?, json),
        Cmd::Check { region, json } => check(&Metadata::open(&region, false)?, json),
        Cmd::Repair { region } => repair(&Metadata::open(&region, true)?),
        Cmd::Format {
            region,
            main_sectors,
            target_len,
            main_lbs,
            force,
        } => format_region(region, main_sectors, target_len, main_lbs, force),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("dm-remap-tool: {e}");
            ExitCode::from(2)
        }
    }
}
