// SPDX-License-Identifier: GPL-2.0

//! Test helper: reads a dm-log-writes log (the kernel's
//! Documentation/admin-guide/device-mapper/log-writes.rst) and replays it one entry at a
//! time, so a test can stop at every write boundary and look at what a power cut there
//! would have left on the device. Not part of the tool.
//!
//! `replay_log LOG count` prints the number of entries.
//! `replay_log LOG apply K DEVICE` applies entry K to DEVICE and prints what it was:
//! `write <sector> <sectors>`, `flush`, `discard <sector> <sectors>` or `mark <text>`.
//!
//! Log layout: a superblock in the first sector (magic, version, entry count, sector
//! size), then per entry one sector holding the entry header (sector, sector count,
//! flags, data length; a mark's text follows the header) and, unless it is a discard,
//! the written data (sector count times the sector size). All little-endian.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::process::exit;

const MAGIC: u64 = 0x006a_7366_7773_6872;
const VERSION: u64 = 1;
const FLUSH: u64 = 1 << 0;
const DISCARD: u64 = 1 << 2;
const MARK: u64 = 1 << 3;
const HEADER: usize = 32;

fn le64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

fn fail(msg: &str) -> ! {
    eprintln!("replay_log: {msg}");
    exit(1);
}

struct Log {
    file: File,
    entries: u64,
    sector_size: u64,
}

struct Entry {
    sector: u64,
    sectors: u64,
    flags: u64,
    header: Vec<u8>,
    /// Byte offset of the entry's data in the log.
    data: u64,
}

impl Log {
    fn open(path: &str) -> Log {
        let file = File::open(path).unwrap_or_else(|e| fail(&format!("{path}: {e}")));
        let mut sb = [0u8; 28];
        file.read_exact_at(&mut sb, 0)
            .unwrap_or_else(|e| fail(&format!("{path}: {e}")));
        if le64(&sb, 0) != MAGIC || le64(&sb, 8) != VERSION {
            fail(&format!("{path}: not a dm-log-writes log"));
        }
        let sector_size = u64::from(u32::from_le_bytes([sb[24], sb[25], sb[26], sb[27]]));
        if !(512..=65536).contains(&sector_size) || !sector_size.is_power_of_two() {
            fail(&format!("{path}: bad sector size {sector_size}"));
        }
        Log {
            file,
            entries: le64(&sb, 16),
            sector_size,
        }
    }

    /// Entry `k` (0-based), found by walking the entries before it.
    fn entry(&self, k: u64) -> Entry {
        if k >= self.entries {
            fail(&format!(
                "entry {k} out of range (the log has {})",
                self.entries
            ));
        }
        let ss = self.sector_size;
        let mut pos = ss;
        let mut header = vec![0u8; ss as usize];
        for i in 0..=k {
            self.file
                .read_exact_at(&mut header, pos)
                .unwrap_or_else(|e| fail(&format!("entry {i}: {e}")));
            let sectors = le64(&header, 8);
            let flags = le64(&header, 16);
            let e = Entry {
                sector: le64(&header, 0),
                sectors,
                flags,
                header: header.clone(),
                data: pos + ss,
            };
            if i == k {
                return e;
            }
            pos += ss;
            if flags & DISCARD == 0 {
                pos += sectors * ss;
            }
        }
        unreachable!("the loop returns at i == k")
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match &args[1..] {
        [log, cmd] if cmd == "count" => println!("{}", Log::open(log).entries),
        [log, cmd, k, dev] if cmd == "apply" => {
            let log = Log::open(log);
            let k: u64 = k.parse().unwrap_or_else(|_| fail("K must be a number"));
            let e = log.entry(k);
            let ss = log.sector_size;
            if e.flags & MARK != 0 {
                let len = (le64(&e.header, 24) as usize).min(e.header.len() - HEADER);
                let text = &e.header[HEADER..HEADER + len];
                let end = text.iter().position(|&c| c == 0).unwrap_or(text.len());
                println!("mark {}", String::from_utf8_lossy(&text[..end]));
                return;
            }
            if e.sectors == 0 {
                println!(
                    "{}",
                    if e.flags & FLUSH != 0 {
                        "flush"
                    } else {
                        "empty"
                    }
                );
                return;
            }
            let out = OpenOptions::new()
                .write(true)
                .open(dev)
                .unwrap_or_else(|err| fail(&format!("{dev}: {err}")));
            let mut data = vec![0u8; (e.sectors * ss) as usize];
            let kind = if e.flags & DISCARD != 0 {
                "discard"
            } else {
                log.file
                    .read_exact_at(&mut data, e.data)
                    .unwrap_or_else(|err| fail(&format!("entry {k} data: {err}")));
                "write"
            };
            out.write_all_at(&data, e.sector * ss)
                .and_then(|()| out.sync_all())
                .unwrap_or_else(|err| fail(&format!("{dev}: {err}")));
            println!("{kind} {} {}", e.sector, e.sectors);
        }
        _ => {
            eprintln!("usage: replay_log LOG count | replay_log LOG apply K DEVICE");
            exit(2);
        }
    }
}
