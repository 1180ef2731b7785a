// SPDX-License-Identifier: GPL-2.0

//! The `remap` target.
//!
//! Table line:
//! `<start> <len> remap <main_dev> <spare_dev> <spare_start> <spare_len> [<#feature_args> <feature_arg>...]`.
//!
//! This version validates the table line and maps every bio to the main device; the
//! remapping I/O path comes next.

use crate::dm::{
    Bio, CtrError, DeviceIter, DmDev, MapResult, MessageError, Operations, ReqOp, ResultBuf,
    StatusType, TargetCtx, FEATURE_NOWAIT,
};
use crate::logic::args::{self, DeviceGeometry, Features};
use core::fmt::Write;
use kernel::prelude::*;

/// Which flush bio goes where: device-mapper sends `FLUSH_BIOS` empty flushes per flush,
/// numbered by `target_bio_nr`.
/// Number 0 goes to the main device, number 1 to the spare device.
const FLUSH_BIO_MAIN: u32 = 0;
const FLUSH_BIOS: u32 = 2;

/// One `remap` target: a main device mapped from sector 0, and a spare region.
pub(crate) struct RemapTarget {
    main: DmDev,
    spare: DmDev,
    /// First sector of the target in the dm device (`ti->begin`).
    begin: u64,
    /// Length of the target in sectors; it maps main sectors `0..len`.
    len: u64,
    spare_start: u64,
    spare_len: u64,
    features: Features,
}

impl RemapTarget {
    /// Sector on the main device of dm-device sector `sector`.
    fn main_sector(&self, sector: u64) -> u64 {
        sector - self.begin
    }
}

#[vtable]
impl Operations for RemapTarget {
    const NAME: &'static CStr = c"remap";
    const VERSION: [u32; 3] = [0, 1, 0];
    // Not PASSES_INTEGRITY, PASSES_CRYPTO, ZONED_HM or ATOMIC_WRITES as dm-linear is:
    // remapped blocks live on another device at another offset, and a bio may be split.
    const FEATURES: u64 = FEATURE_NOWAIT;

    type PerIo = ();

    fn new(ctx: &mut TargetCtx<'_>, argv: &[&CStr]) -> Result<Pin<KBox<Self>>, CtrError> {
        let nomem = |_| CtrError::new(ENOMEM, c"Cannot allocate memory");
        let mut words = KVec::with_capacity(argv.len(), GFP_KERNEL).map_err(nomem)?;
        for a in argv {
            words.push(a.to_bytes(), GFP_KERNEL).map_err(nomem)?;
        }
        let invalid = |e: args::ArgError| CtrError::invalid(e.message());
        let parsed = args::parse_table_args(&words).map_err(invalid)?;

        let main = ctx
            .get_device(argv[0])
            .map_err(|e| CtrError::new(e, c"Cannot open main device"))?;
        let spare = ctx
            .get_device(argv[1])
            .map_err(|e| CtrError::new(e, c"Cannot open spare device"))?;
        let geometry = DeviceGeometry {
            target_len: ctx.len(),
            main_sectors: main.sectors(),
            spare_sectors: spare.sectors(),
            same_device: main.is_same_device(&spare),
            logical_block_size: main.logical_block_size().max(spare.logical_block_size()),
        };
        args::validate_geometry(&parsed, &geometry).map_err(invalid)?;

        ctx.set_num_flush_bios(FLUSH_BIOS);
        ctx.set_num_discard_bios(1);
        ctx.set_num_write_zeroes_bios(1);

        KBox::pin(
            Self {
                main,
                spare,
                begin: ctx.begin(),
                len: ctx.len(),
                spare_start: parsed.spare_start,
                spare_len: parsed.spare_len,
                features: parsed.features,
            },
            GFP_KERNEL,
        )
        .map_err(nomem)
    }

    fn map(&self, bio: &mut Bio, _io: &mut ()) -> MapResult {
        if bio.sectors() == 0 {
            // An empty flush (the data of a REQ_PREFLUSH write comes separately): one copy
            // for each device, so data on either is durable when the flush completes.
            let dev = if bio.target_bio_nr() == FLUSH_BIO_MAIN {
                &self.main
            } else {
                &self.spare
            };
            bio.set_dev(dev);
            return MapResult::Remapped;
        }
        match bio.op() {
            ReqOp::Read | ReqOp::Write | ReqOp::Discard | ReqOp::WriteZeroes => {
                bio.set_dev(&self.main);
                bio.set_sector(self.main_sector(bio.sector()));
                MapResult::Remapped
            }
            // Secure erase is not enabled (num_secure_erase_bios is 0) and zone operations
            // cannot reach a target that does not declare zone support.
            _ => MapResult::Kill,
        }
    }

    fn status(&self, kind: StatusType, out: &mut ResultBuf<'_>) {
        // A full buffer makes device-mapper retry with a larger one; nothing to handle.
        let _ = match kind {
            // The remapping I/O path adds its counters here.
            StatusType::Info => Ok(()),
            StatusType::Table => self.write_table(out),
            StatusType::Ima => self.write_ima(out),
        };
    }

    fn message(&self, argv: &[&CStr], out: &mut ResultBuf<'_>) -> Result<(), MessageError> {
        match argv.first().map(|a| a.to_bytes()) {
            Some(b"help") if argv.len() == 1 => {
                let _ = out.write_str("help");
                Ok(())
            }
            Some(b"help") => Err(MessageError::invalid(c"help takes no arguments")),
            _ => Err(MessageError::invalid(
                c"unknown message; 'help' lists the supported messages",
            )),
        }
    }

    fn iterate_devices(&self, iter: &mut DeviceIter<'_>) -> c_int {
        match iter.visit(&self.main, 0, self.len) {
            0 => iter.visit(&self.spare, self.spare_start, self.spare_len),
            r => r,
        }
    }
}

impl RemapTarget {
    fn write_table(&self, out: &mut ResultBuf<'_>) -> core::fmt::Result {
        write!(
            out,
            "{} {} {} {}",
            self.main.name().to_str().unwrap_or("?"),
            self.spare.name().to_str().unwrap_or("?"),
            self.spare_start,
            self.spare_len
        )?;
        self.features.write_table_args(out)
    }

    fn write_ima(&self, out: &mut ResultBuf<'_>) -> core::fmt::Result {
        let [a, b, c] = Self::VERSION;
        write!(
            out,
            "target_name=remap,target_version={a}.{b}.{c},main_device_name={},spare_device_name={},spare_start={},spare_len={},block_size={};",
            self.main.name().to_str().unwrap_or("?"),
            self.spare.name().to_str().unwrap_or("?"),
            self.spare_start,
            self.spare_len,
            self.features.block_size()
        )
    }
}
