// SPDX-License-Identifier: GPL-2.0

//! The tool against image files: format, dump, check, corrupt, repair.

use dm_remap_logic::format::{
    self, crc32c_update_sw, Change, CopyAreas, ScanCursor, ScanState, Superblock,
};
use dm_remap_logic::layout::SpareLayout;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const SPARE_LEN: u64 = 16384; // sectors: 2048 blocks of 4 KiB

fn image(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let p = dir.join(name);
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(SPARE_LEN * 512).unwrap();
    p
}

fn tool(args: &[&str], img: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dm-remap-tool"))
        .args(args)
        .arg(img)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// `format` of the test geometry for a main device of `main_sectors`.
fn format(img: &Path, main_sectors: &str) -> (i32, String) {
    let spare_len = SPARE_LEN.to_string();
    tool(
        &[
            "format",
            "--spare-len",
            &spare_len,
            "--block-size",
            "4096",
            "--main-sectors",
            main_sectors,
        ],
        img,
    )
}

fn format_image(img: &Path) {
    let (code, out) = format(img, "1048576");
    assert_eq!(code, 0, "{out}");
}

fn layout() -> SpareLayout {
    SpareLayout::new(0, SPARE_LEN, 4096, 5).unwrap()
}

/// Appends a journal record with `changes` to the copies in `copies`, as the module does.
fn commit(img: &Path, copies: &[u32], seq: u64, tail: u64, changes: &[Change]) {
    let l = layout();
    let a = CopyAreas::new(&l);
    let f = OpenOptions::new().read(true).write(true).open(img).unwrap();
    for &i in copies {
        let off = l.block_sector(l.copy_start(i)) * 512;
        let mut sbb = vec![0u8; 4096];
        f.read_exact_at(&mut sbb, off).unwrap();
        let sb = Superblock::decode(&sbb, crc32c_update_sw).unwrap();
        let mut rec = vec![0u8; 512];
        let n = format::encode_record(
            &mut rec,
            seq,
            sb.seq,
            &sb.uuid,
            changes,
            crc32c_update_sw,
            512,
        )
        .unwrap();
        f.write_all_at(&rec[..n], off + a.journal + tail).unwrap();
    }
}

fn corrupt_superblock(img: &Path, i: u32) {
    let l = layout();
    let f = OpenOptions::new().read(true).write(true).open(img).unwrap();
    let off = l.block_sector(l.copy_start(i)) * 512 + 100;
    f.write_all_at(b"garbage", off).unwrap();
}

/// Switches copy `i` to a checkpoint at `seq` that cannot be read (its CRC does not match
/// the slot): what a copy whose new slot was lost after its superblock was written holds.
fn newer_unreadable_checkpoint(img: &Path, i: u32, seq: u64) {
    let l = layout();
    let f = OpenOptions::new().read(true).write(true).open(img).unwrap();
    let off = l.block_sector(l.copy_start(i)) * 512;
    let mut sbb = vec![0u8; 4096];
    f.read_exact_at(&mut sbb, off).unwrap();
    let sb = Superblock::decode(&sbb, crc32c_update_sw).unwrap();
    let newer = Superblock {
        seq,
        active_slot: 1 - sb.active_slot,
        cp_entries: 1,
        cp_crc: 0x1234_5678,
        ..sb
    };
    newer.encode(&mut sbb, crc32c_update_sw).unwrap();
    f.write_all_at(&sbb, off).unwrap();
}

/// Rewrites every copy's superblock in the version 1 layout (version 1, nothing after byte
/// 120), as a module of that version wrote it.
fn make_version_1(img: &Path) {
    let l = layout();
    let f = OpenOptions::new().read(true).write(true).open(img).unwrap();
    for i in 0..5 {
        let off = l.block_sector(l.copy_start(i)) * 512;
        let mut b = vec![0u8; 4096];
        f.read_exact_at(&mut b, off).unwrap();
        b[8..12].copy_from_slice(&1u32.to_le_bytes());
        b[12..16].fill(0);
        b[120..].fill(0);
        let crc = format::crc32c(crc32c_update_sw, &b);
        b[12..16].copy_from_slice(&crc.to_le_bytes());
        f.write_all_at(&b, off).unwrap();
    }
}

/// The superblock of copy `i`.
fn superblock(img: &Path, i: u32) -> Superblock {
    let l = layout();
    let f = OpenOptions::new().read(true).open(img).unwrap();
    let mut b = vec![0u8; 4096];
    f.read_exact_at(&mut b, l.block_sector(l.copy_start(i)) * 512)
        .unwrap();
    Superblock::decode(&b, crc32c_update_sw).unwrap()
}

#[test]
fn format_dump_check() {
    let img = image("fresh.img");
    format_image(&img);
    let (code, out) = tool(&["check"], &img);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("all 5 copies valid at seq 1"), "{out}");
    let (code, out) = tool(&["dump", "--json"], &img);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["remaps"].as_array().unwrap().len(), 0);
    assert_eq!(v["seq"], 1);
    assert_eq!(
        v["scanner"],
        serde_json::json!({"position": 0, "passes": 0, "state": "idle"})
    );
    assert_eq!(superblock(&img, 0).version, format::VERSION);
    // Formatting over valid metadata needs --force.
    let (code, out) = format(&img, "8");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--force"), "{out}");
}

#[test]
fn journal_entries_corruption_and_repair() {
    let img = image("repair.img");
    format_image(&img);
    commit(
        &img,
        &[0, 1, 2, 3, 4],
        2,
        0,
        &[Change::Remap {
            main: 7,
            spare: 500,
        }],
    );
    commit(
        &img,
        &[0, 1, 2, 3, 4],
        3,
        512,
        &[Change::Retire { spare: 501 }],
    );
    let (code, out) = tool(&["dump"], &img);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("7 spare 500") && out.contains("retired 501"),
        "{out}"
    );
    assert_eq!(tool(&["check"], &img).0, 0);

    // A commit that reached only two copies: the newest wins, the rest are stale.
    commit(
        &img,
        &[0, 3],
        4,
        1024,
        &[Change::Remap {
            main: 9,
            spare: 502,
        }],
    );
    corrupt_superblock(&img, 2);
    let (code, out) = tool(&["check"], &img);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("copy 2 at byte") && out.contains("checksum mismatch"),
        "{out}"
    );
    let (code, out) = tool(&["dump", "--json"], &img);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["seq"], 4);
    assert_eq!(v["remaps"], serde_json::json!([[7, 500], [9, 502]]));

    let (code, out) = tool(&["repair"], &img);
    assert_eq!(code, 0, "{out}");
    let (code, out) = tool(&["check"], &img);
    assert_eq!(code, 0, "{out}");
    // Repair writes a checkpoint at a new sequence number, as the module does.
    assert!(out.contains("all 5 copies valid at seq 5"), "{out}");
    let (_, out) = tool(&["dump"], &img);
    assert!(
        out.contains("9 spare 502") && out.contains("retired 501"),
        "{out}"
    );
}

/// With copy 0's superblock corrupt the tool finds the other copies by itself: their
/// places follow from the region (here the whole image) and the copy count.
#[test]
fn a_corrupt_copy_0_is_found_around() {
    let img = image("copy0.img");
    format_image(&img);
    commit(
        &img,
        &[0, 1, 2, 3, 4],
        2,
        0,
        &[Change::Remap {
            main: 7,
            spare: 500,
        }],
    );
    corrupt_superblock(&img, 0);
    let (code, out) = tool(&["check"], &img);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("copy 0 is unusable (checksum mismatch); geometry from copy"),
        "{out}"
    );
    assert!(out.contains("copy 0 at byte 0: checksum mismatch"), "{out}");
    let (code, out) = tool(&["dump"], &img);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("7 spare 500"), "{out}");
    let (code, out) = tool(&["repair"], &img);
    assert_eq!(code, 0, "{out}");
    let (code, out) = tool(&["check"], &img);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("all 5 copies valid at seq 3"), "{out}");
    // Copy 0 is whole again: the geometry comes from it.
    assert!(!out.contains("geometry from"), "{out}");
}

#[test]
fn nothing_valid_is_reported() {
    let img = image("dead.img");
    format_image(&img);
    for i in 0..5 {
        corrupt_superblock(&img, i);
    }
    let (code, out) = tool(&["check"], &img);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("give --spare-len"), "{out}");
    let (code, out) = tool(
        &[
            "check",
            "--spare-len",
            "16384",
            "--block-size",
            "4096",
            "--copies",
            "5",
        ],
        &img,
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no valid copy"), "{out}");
    assert_eq!(
        tool(
            &[
                "repair",
                "--spare-len",
                "16384",
                "--block-size",
                "4096",
                "--copies",
                "5"
            ],
            &img
        )
        .0,
        2
    );
}

/// A copy holding a newer state than every valid copy, but that cannot be read: as the
/// module refuses to load the older state, the tool refuses to dump it or to repair from
/// it (which would overwrite the newer state), and check says why.
#[test]
fn a_newer_copy_that_cannot_be_read_is_not_overwritten() {
    let img = image("newer.img");
    format_image(&img);
    commit(
        &img,
        &[0, 1, 2, 3, 4],
        2,
        0,
        &[Change::Remap {
            main: 7,
            spare: 500,
        }],
    );
    newer_unreadable_checkpoint(&img, 3, 5);
    let before = std::fs::read(&img).unwrap();
    let message = "the newest metadata copy cannot be read and no readable copy holds its state";
    let (code, out) = tool(&["check"], &img);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("copy 3 at byte"), "{out}");
    assert!(
        out.contains("copy 3 holds a newer checkpoint (seq 5)") && out.contains(message),
        "{out}"
    );
    let (code, out) = tool(&["dump"], &img);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(message) && !out.contains("7 spare 500"),
        "{out}"
    );
    let (code, out) = tool(&["repair"], &img);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains(message), "{out}");
    assert!(
        std::fs::read(&img).unwrap() == before,
        "repair wrote to the image"
    );
    // Once that copy is given up on (here: its superblock is corrupt), the newest state
    // left is the older one, and repair rewrites every copy from it.
    corrupt_superblock(&img, 3);
    let (code, out) = tool(&["check"], &img);
    assert_eq!(code, 1, "{out}");
    let (code, out) = tool(&["repair"], &img);
    assert_eq!(code, 0, "{out}");
    let (code, out) = tool(&["check"], &img);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("all 5 copies valid at seq 3"), "{out}");
}

/// The scanner's cursor: the journal's last one is dumped, and repair keeps it in the
/// superblocks it writes.
#[test]
fn the_scanner_cursor_is_dumped_and_kept_by_repair() {
    let img = image("scanner.img");
    format_image(&img);
    let all = [0, 1, 2, 3, 4];
    let first = ScanCursor {
        position: 1000,
        passes: 2,
        state: ScanState::Running,
    };
    let last = ScanCursor {
        position: 123_456_789,
        passes: 3,
        state: ScanState::Paused,
    };
    commit(&img, &all, 2, 0, &[Change::Scan(first)]);
    let remap = Change::Remap {
        main: 7,
        spare: 500,
    };
    commit(&img, &all, 3, 512, &[remap, Change::Scan(last)]);
    let (code, out) = tool(&["dump"], &img);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("\nscanner position 123456789 passes 3 state paused\n"),
        "{out}"
    );
    assert!(out.contains("7 spare 500"), "{out}");
    let (code, out) = tool(&["dump", "--json"], &img);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let want = serde_json::json!({"position": 123456789, "passes": 3, "state": "paused"});
    assert_eq!(v["scanner"], want);

    // Repair writes checkpoints; their superblocks hold the cursor.
    let (code, out) = tool(&["repair"], &img);
    assert_eq!(code, 0, "{out}");
    for i in all {
        assert_eq!(superblock(&img, i).scan, last, "copy {i}");
    }
    let (code, out) = tool(&["dump", "--json"], &img);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((&v["scanner"], v["seq"].as_u64()), (&want, Some(4)));
}

/// Metadata of format version 1 is read (with the default cursor) and repaired into
/// version 2.
#[test]
fn version_1_is_read_and_repaired_into_version_2() {
    let img = image("v1.img");
    format_image(&img);
    let remap = Change::Remap {
        main: 7,
        spare: 500,
    };
    commit(&img, &[0, 1, 2, 3, 4], 2, 0, &[remap]);
    make_version_1(&img);
    assert_eq!(superblock(&img, 0).version, 1);
    let (code, out) = tool(&["check"], &img);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("copy 0 at byte 0: valid, format version 1,"),
        "{out}"
    );
    let (code, out) = tool(&["dump"], &img);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("scanner position 0 passes 0 state idle") && out.contains("7 spare 500"),
        "{out}"
    );
    let (code, out) = tool(&["repair"], &img);
    assert_eq!(code, 0, "{out}");
    for i in 0..5 {
        let sb = superblock(&img, i);
        assert_eq!(
            (sb.version, sb.scan),
            (2, ScanCursor::default()),
            "copy {i}"
        );
    }
    let (code, out) = tool(&["check"], &img);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("format version"), "{out}");
}
