// SPDX-License-Identifier: GPL-2.0

//! `dm-remap-tool`: inspect, check, repair and format the remap table that dm-remap keeps
//! on its spare device (docs/on-disk-format.md), on a device or an image file.
//!
//! It uses the same format code as the kernel module (`src/logic/format.rs`).

use clap::{Args, Parser, Subcommand};
use dm_remap_logic::format::{
    self, crc32c_sw, CopyAreas, FormatError, Identity, JournalEnd, Superblock,
};
use dm_remap_logic::layout::{SpareLayout, DEFAULT_METADATA_COPIES, SUPERBLOCK_BYTES};
use dm_remap_logic::Table;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Print the remap table of the newest valid copy.
    Dump {
        #[command(flatten)]
        region: Region,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Check every copy; exit 0 if all are valid and current, 1 if some are not but the
    /// table can be recovered, 2 if no copy is valid.
    Check {
        #[command(flatten)]
        region: Region,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Rewrite invalid and stale copies from the newest valid one.
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
    #[serde(skip)]
    state: Option<(Superblock, JournalEnd, Table)>,
}

struct Metadata {
    file: File,
    layout: SpareLayout,
    areas: CopyAreas,
    copies: Vec<CopyReport>,
}

fn err(msg: impl Into<String>) -> String {
    msg.into()
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
        FormatError::Entries => "invalid entries",
        FormatError::Space => "truncated",
    }
}

impl Metadata {
    fn open(region: &Region, write: bool) -> Result<Self, String> {
        let file = OpenOptions::new()
            .read(true)
            .write(write)
            .open(&region.path)
            .map_err(|e| format!("{}: {e}", region.path.display()))?;
        let mut region = region.clone();
        // Fill in the geometry from the first superblock that decodes.
        if region.spare_len.is_none() || region.block_size.is_none() || region.copies.is_none() {
            let sb0 = read_at(&file, region.spare_start * 512, SUPERBLOCK_BYTES as usize)?;
            let mut scratch = vec![0u8; SUPERBLOCK_BYTES as usize];
            let sb = Superblock::decode(&sb0, crc32c_sw, &mut scratch).map_err(|e| {
                format!(
                    "copy 0 is unusable ({}); give --spare-len, --block-size and --copies",
                    describe(e)
                )
            })?;
            region.spare_len.get_or_insert(sb.identity.spare_len);
            region.block_size.get_or_insert(sb.identity.block_size);
            region.copies.get_or_insert(sb.identity.copies);
        }
        let (Some(len), Some(bs), Some(copies)) =
            (region.spare_len, region.block_size, region.copies)
        else {
            return Err(err("geometry unknown"));
        };
        let layout = SpareLayout::new(region.spare_start, len, bs, copies)
            .map_err(|e| format!("invalid geometry: {e:?}"))?;
        let mut m = Metadata {
            file,
            areas: CopyAreas::new(&layout),
            layout,
            copies: Vec::new(),
        };
        m.scan()?;
        Ok(m)
    }

    fn copy_offset(&self, i: u32) -> u64 {
        self.layout.block_sector(self.layout.copy_start(i)) * 512
    }

    fn scan(&mut self) -> Result<(), String> {
        let mut scratch = vec![0u8; self.areas.journal_bytes.max(SUPERBLOCK_BYTES) as usize];
        let mut sbs = Vec::new();
        for i in 0..self.layout.copies() {
            let off = self.copy_offset(i);
            let b = read_at(&self.file, off, SUPERBLOCK_BYTES as usize)?;
            sbs.push((off, Superblock::decode(&b, crc32c_sw, &mut scratch)));
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
                state: None,
            };
            let r = sb.and_then(|sb| {
                sb.check(i, &reference.ok_or(FormatError::Identity)?, &self.layout)?;
                Ok(sb)
            });
            match r.and_then(|sb| self.replay(off, &sb, &mut scratch).map(|x| (sb, x))) {
                Ok((sb, (end, table))) => {
                    rep.status = "valid".into();
                    rep.checkpoint_seq = Some(sb.seq);
                    rep.seq = Some(end.seq);
                    rep.checkpoint_entries = Some(sb.cp_entries);
                    rep.journal_records = Some(end.records);
                    rep.state = Some((sb, end, table));
                }
                Err(e) => rep.status = describe(e).into(),
            }
            self.copies.push(rep);
        }
        Ok(())
    }

    fn replay(
        &self,
        off: u64,
        sb: &Superblock,
        scratch: &mut [u8],
    ) -> Result<(JournalEnd, Table), FormatError> {
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
        let end = format::replay_copy(sb, &slot, &journal, crc32c_sw, scratch, |c| t.apply(c))?;
        Ok((end, t))
    }

    /// The newest valid copy.
    fn newest(&self) -> Option<&CopyReport> {
        self.copies
            .iter()
            .filter(|c| c.state.is_some())
            .max_by_key(|c| (c.seq, std::cmp::Reverse(c.index)))
    }

    /// Rewrites copy `i` with `table` at sequence `seq`: inactive slot, zeroed journal,
    /// superblock, each flushed.
    fn write_copy(&self, i: u32, base: &Superblock, table: &Table, seq: u64) -> Result<(), String> {
        let off = self.copy_offset(i);
        let a = &self.areas;
        let old_slot = self.copies[i as usize]
            .state
            .as_ref()
            .map_or(1, |(sb, _, _)| sb.active_slot);
        let slot = 1 - old_slot;
        let mut buf = vec![0u8; a.slot_bytes as usize];
        let (n, crc) = format::encode_checkpoint(
            &mut buf,
            table.remaps.iter().map(|(&m, &s)| (m, s)),
            table.retired.iter().copied(),
            crc32c_sw,
        )
        .map_err(|e| format!("table does not fit: {e:?}"))?;
        let io = |b: &[u8], at: u64| {
            self.file
                .write_all_at(b, at)
                .and_then(|()| self.file.sync_data())
                .map_err(|e| format!("write at {at}: {e}"))
        };
        io(&buf, off + a.slots[slot as usize])?;
        io(&vec![0u8; a.journal_bytes as usize], off + a.journal)?;
        let sb = Superblock {
            seq,
            copy_index: i,
            active_slot: slot,
            cp_entries: n,
            cp_crc: crc,
            ..*base
        };
        let mut sbb = vec![0u8; SUPERBLOCK_BYTES as usize];
        sb.encode(&mut sbb, crc32c_sw)
            .map_err(|e| format!("encode: {e:?}"))?;
        io(&sbb, off)
    }
}

fn print_reports(m: &Metadata) {
    for c in &m.copies {
        match (c.checkpoint_seq, c.seq) {
            (Some(cs), Some(s)) => println!(
                "copy {} at byte {}: valid, checkpoint seq {cs} ({} entries), {} journal records, seq {s}",
                c.index,
                c.offset,
                c.checkpoint_entries.unwrap_or(0),
                c.journal_records.unwrap_or(0)
            ),
            _ => println!("copy {} at byte {}: {}", c.index, c.offset, c.status),
        }
    }
}

#[derive(Serialize)]
struct DumpJson<'a> {
    uuid: String,
    seq: u64,
    block_size: u32,
    spare_blocks: u64,
    remaps: Vec<[u64; 2]>,
    retired: Vec<u64>,
    copies: &'a [CopyReport],
}

fn uuid_string(u: &[u8; 16]) -> String {
    u.iter().map(|b| format!("{b:02x}")).collect()
}

fn run(cli: Cli) -> Result<u8, String> {
    match cli.cmd {
        Cmd::Dump { region, json } => {
            let m = Metadata::open(&region, false)?;
            let newest = m.newest().ok_or_else(|| err("no valid metadata copy"))?;
            let Some((sb, end, table)) = &newest.state else {
                return Err(err("no valid metadata copy"));
            };
            if json {
                let d = DumpJson {
                    uuid: uuid_string(&sb.uuid),
                    seq: end.seq,
                    block_size: sb.identity.block_size,
                    spare_blocks: m.layout.data_blocks(),
                    remaps: table.remaps.iter().map(|(&a, &b)| [a, b]).collect(),
                    retired: table.retired.iter().copied().collect(),
                    copies: &m.copies,
                };
                println!(
                    "{}",
                    serde_json::to_string_pretty(&d).map_err(|e| e.to_string())?
                );
            } else {
                println!(
                    "set {} seq {} block_size {} spare blocks {} remapped {} retired {}",
                    uuid_string(&sb.uuid),
                    end.seq,
                    sb.identity.block_size,
                    m.layout.data_blocks(),
                    table.remaps.len(),
                    table.retired.len()
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
        Cmd::Check { region, json } => {
            let m = Metadata::open(&region, false)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&m.copies).map_err(|e| e.to_string())?
                );
            } else {
                print_reports(&m);
            }
            let Some(newest) = m.newest() else {
                eprintln!("no valid copy: the table cannot be recovered");
                return Ok(2);
            };
            let all_current = m
                .copies
                .iter()
                .all(|c| c.seq == newest.seq && c.state.is_some());
            if all_current {
                println!(
                    "all {} copies valid at seq {}",
                    m.copies.len(),
                    newest.seq.unwrap_or(0)
                );
                Ok(0)
            } else {
                println!(
                    "copy {} (seq {}) is the newest valid; run repair to rewrite the others",
                    newest.index,
                    newest.seq.unwrap_or(0)
                );
                Ok(1)
            }
        }
        Cmd::Repair { region } => {
            let m = Metadata::open(&region, true)?;
            let newest = m
                .newest()
                .ok_or_else(|| err("no valid metadata copy to repair from"))?;
            let Some((sb, end, table)) = &newest.state else {
                return Err(err("no valid metadata copy"));
            };
            // Stale and invalid copies first, so a valid newest copy is never the only one
            // being rewritten.
            let mut order: Vec<&CopyReport> = m.copies.iter().collect();
            order.sort_by_key(|c| c.seq == newest.seq);
            for c in order {
                m.write_copy(c.index, sb, table, end.seq)?;
                println!("copy {} rewritten at seq {}", c.index, end.seq);
            }
            Ok(0)
        }
        Cmd::Format {
            region,
            main_sectors,
            target_len,
            main_lbs,
            force,
        } => {
            let (Some(len), Some(bs)) = (region.spare_len, region.block_size) else {
                return Err(err("format needs --spare-len and --block-size"));
            };
            let copies = region.copies.unwrap_or(DEFAULT_METADATA_COPIES);
            let region = Region {
                copies: Some(copies),
                ..region
            };
            let m = Metadata::open(&region, true)?;
            if m.newest().is_some() && !force {
                return Err(err("valid metadata exists; use --force to overwrite it"));
            }
            let max_seq = m.copies.iter().filter_map(|c| c.seq).max().unwrap_or(0);
            let mut uuid = [0u8; 16];
            File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut uuid))
                .map_err(|e| format!("/dev/urandom: {e}"))?;
            let base = Superblock {
                uuid,
                seq: max_seq + 1,
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
                cp_entries: 0,
                cp_crc: 0,
                journal_bytes: m.areas.journal_bytes as u32,
                total_blocks: m.layout.total_blocks(),
            };
            for i in 0..copies {
                m.write_copy(i, &base, &Table::default(), max_seq + 1)?;
            }
            println!(
                "formatted {} copies, set {}, seq {}, {} spare blocks",
                copies,
                uuid_string(&uuid),
                max_seq + 1,
                m.layout.data_blocks()
            );
            Ok(0)
        }
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
