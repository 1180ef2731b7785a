// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers over the kernel's device-mapper target API (`include/linux/device-mapper.h`).
//!
//! The `kernel` crate has no device-mapper support, so this module provides what a
//! bio-based target needs: [`Registration`] of a target type, the [`Operations`] trait a
//! target implements, constructor access through [`TargetCtx`], open devices as [`DmDev`],
//! and the [`Bio`] being mapped. The device-mapper and block-layer FFI lives here; the other
//! C APIs are wrapped in the sibling files of `rust/`.
//!
//! Ownership: the constructor returns the target state as `Pin<KBox<T>>`; it is stored in
//! `ti->private` and dropped by the destructor. Every callback borrows it for the duration
//! of the call, which device-mapper guarantees ends before the destructor runs.

mod bio;
mod device;
mod io;
mod result;
mod slots;
mod target;

pub(crate) use bio::{Bio, BioDetails, BioQueue, BlkStatus, DeferredBio, DeferredList, ReqOp};
pub(crate) use device::{DeviceIter, DmDev, QueueLimits, MAX_LOGICAL_BLOCK_SIZE};
pub(crate) use io::{rw_block, BlockBuffer, DataOp, DmIo, IoBuffer, NoIo};
pub(crate) use result::ResultBuf;
pub(crate) use slots::{IoSlots, Reaped, SlotOp, MAX_SLOT_BYTES};

// The pure logic (`src/logic`, also built for userspace) keeps its own copy of the sector
// size; it must be the block layer's.
const _: () = assert!(crate::logic::args::SECTOR_SIZE == kernel::block::SECTOR_SIZE as u64);
pub(crate) use target::{
    CtrError, EndIoResult, MapResult, MessageError, Operations, Registration, StatusType,
    TargetCtx, TargetHandle, FEATURE_NOWAIT, NAME_LEN,
};
