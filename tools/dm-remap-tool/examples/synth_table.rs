// SPDX-License-Identifier: GPL-2.0

//! Test helper: writes metadata holding `entries` remaps (main block `STRIDE * i` -> the
//! i-th spare data block; STRIDE defaults to 2) to a spare image or device, as the module
//! would after that many remaps, so load time and the I/O path with a large table can be
//! measured without performing them. Not part of the tool.
//!
//! `cargo run -p dm-remap-tool --example synth_table -- IMAGE SPARE_SECTORS MAIN_SECTORS ENTRIES [STRIDE]`

use dm_remap_logic::format::{self, crc32c_update_sw, CopyAreas, Identity, Superblock};
use dm_remap_logic::layout::{SpareLayout, SUPERBLOCK_BYTES};
use std::os::unix::fs::FileExt;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (img, spare, main, entries, stride) = match &args[..] {
        [_, img, spare, main, entries] => (img, spare, main, entries, "2"),
        [_, img, spare, main, entries, stride] => (img, spare, main, entries, stride.as_str()),
        _ => {
            eprintln!("usage: synth_table IMAGE SPARE_SECTORS MAIN_SECTORS ENTRIES [STRIDE]");
            std::process::exit(2);
        }
    };
    let stride: u64 = stride.parse().expect("STRIDE");
    let (spare, main, entries): (u64, u64, u64) = (
        spare.parse().expect("SPARE_SECTORS"),
        main.parse().expect("MAIN_SECTORS"),
        entries.parse().expect("ENTRIES"),
    );
    let l = SpareLayout::new(0, spare, 4096, 5).expect("geometry");
    let a = CopyAreas::new(&l);
    let data: Vec<u64> = (0..l.total_blocks())
        .filter(|&b| !l.is_metadata(b))
        .collect();
    assert!(
        stride > 0 && entries as usize <= data.len() && entries * stride <= main / 8,
        "too many entries"
    );
    let mut slot = vec![0u8; a.slot_bytes as usize];
    let (n, crc) = format::encode_checkpoint(
        &mut slot,
        (0..entries).map(|i| (stride * i, data[i as usize])),
        [].into_iter(),
        l.total_blocks(),
        crc32c_update_sw,
    )
    .expect("encode");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(img)
        .expect("image");
    let used = format::checkpoint_bytes(n, 512) as usize;
    for i in 0..5 {
        let off = l.block_sector(l.copy_start(i)) * 512;
        let sb = Superblock {
            version: format::VERSION,
            uuid: *b"synthetic-table!",
            seq: 1000,
            copy_index: i,
            active_slot: 0,
            identity: Identity {
                copies: 5,
                block_size: 4096,
                spare_start: 0,
                spare_len: spare,
                main_sectors: main,
                target_len: main,
                main_lbs: 512,
            },
            io_unit: 512,
            cp_entries: n,
            cp_crc: crc,
            journal_bytes: a.journal_bytes as u32,
            total_blocks: l.total_blocks(),
            scan: Default::default(),
        };
        let mut b = vec![0u8; SUPERBLOCK_BYTES as usize];
        sb.encode(&mut b, crc32c_update_sw).expect("superblock");
        f.write_all_at(&slot[..used], off + a.slots[0])
            .expect("write");
        f.write_all_at(&vec![0u8; a.journal_bytes as usize], off + a.journal)
            .expect("write");
        f.write_all_at(&b, off).expect("write");
    }
    // On a block device the writes sit in its page cache until synced; the module reads
    // the device directly.
    f.sync_all().expect("sync");
    println!("{entries} entries written to 5 copies of {img}");
}
