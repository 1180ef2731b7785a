// SPDX-License-Identifier: GPL-2.0

//! Test helper: rewrites the superblock of every metadata copy of a spare image or device
//! (5 copies of 4 KiB blocks, a region from sector 0 of SPARE_SECTORS) in the layout of
//! format version 1, as a module of that version wrote it (version 1, nothing from byte 120
//! on, so no scanner cursor), to test the upgrade to version 2. Not part of the tool.
//!
//! `cargo run -p dm-remap-tool --example v1_superblocks -- IMAGE SPARE_SECTORS`

use dm_remap_logic::format::{self, crc32c_update_sw, Superblock};
use dm_remap_logic::layout::{SpareLayout, SUPERBLOCK_BYTES};
use std::os::unix::fs::FileExt;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, img, spare] = &args[..] else {
        eprintln!("usage: v1_superblocks IMAGE SPARE_SECTORS");
        std::process::exit(2);
    };
    let spare: u64 = spare.parse().expect("SPARE_SECTORS");
    let l = SpareLayout::new(0, spare, 4096, 5).expect("geometry");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(img)
        .expect("image");
    for i in 0..l.copies() {
        let off = l.block_sector(l.copy_start(i)) * 512;
        let mut b = vec![0u8; SUPERBLOCK_BYTES as usize];
        f.read_exact_at(&mut b, off).expect("read");
        if let Err(e) = Superblock::decode(&b, crc32c_update_sw) {
            eprintln!("copy {i}: {e:?}, left as it is");
            continue;
        }
        b[8..12].copy_from_slice(&1u32.to_le_bytes());
        b[12..16].fill(0);
        b[120..].fill(0);
        let crc = format::crc32c(crc32c_update_sw, &b);
        b[12..16].copy_from_slice(&crc.to_le_bytes());
        f.write_all_at(&b, off).expect("write");
    }
    f.sync_all().expect("sync");
}
