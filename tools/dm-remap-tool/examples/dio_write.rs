// SPDX-License-Identifier: GPL-2.0

//! Test helper: writes a file's bytes to a block device with O_DIRECT, and with O_DSYNC when
//! asked (the block layer then sends the write with FUA), in one write call. busybox dd
//! has no `oflag=dsync` and retries refused O_DIRECT writes through the page cache. Not
//! part of the tool.
//!
//! `dio_write DEVICE OFFSET_BYTES FILE [dsync]`; prints the error and exits 1 on failure.

use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::process::exit;

const O_DIRECT: i32 = 0o40000;
const O_DSYNC: i32 = 0o10000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (dev, offset, file, dsync) = match &args[1..] {
        [d, o, f] => (d, o, f, false),
        [d, o, f, s] if s == "dsync" => (d, o, f, true),
        _ => {
            eprintln!("usage: dio_write DEVICE OFFSET_BYTES FILE [dsync]");
            exit(2);
        }
    };
    let offset: u64 = offset.parse().unwrap_or_else(|_| {
        eprintln!("dio_write: OFFSET_BYTES must be a number");
        exit(2)
    });
    let data = std::fs::read(file).unwrap_or_else(|e| {
        eprintln!("dio_write: {file}: {e}");
        exit(2)
    });
    if data.is_empty() {
        eprintln!("dio_write: {file} is empty");
        exit(2);
    }
    let flags = O_DIRECT | if dsync { O_DSYNC } else { 0 };
    let out = OpenOptions::new()
        .write(true)
        .custom_flags(flags)
        .open(dev)
        .unwrap_or_else(|e| {
            eprintln!("dio_write: {dev}: {e}");
            exit(1)
        });
    // O_DIRECT needs an aligned buffer: the 4096-aligned part of a larger one.
    let mut v = vec![0u8; data.len() + 4096];
    let at = v.as_ptr().align_offset(4096);
    let buf = &mut v[at..at + data.len()];
    buf.copy_from_slice(&data);
    let r = out.write_all_at(buf, offset);
    if let Err(e) = r {
        eprintln!("dio_write: {dev} at {offset}: {e}");
        exit(1);
    }
}
