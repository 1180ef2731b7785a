// SPDX-License-Identifier: GPL-2.0

//! The data device-mapper keeps with each bio of a remap target, from `map` to `end_io`
//! and, for a bio the worker takes, until the worker completes it.

use crate::dm::{BioDetails, BlkStatus};
use crate::srcu::{Srcu, SrcuToken};
use crate::stats::IoTiming;

/// Per-bio data.
#[derive(Clone, Copy, Default)]
pub(crate) struct PerIo {
    /// The bio as `map` accepted it (dm sector, data iterator), for retries and remaps.
    pub(crate) details: BioDetails,
    /// The SRCU read section of a write or a spare-block I/O, held from `map` to `end_io`.
    token: SrcuToken,
    has_token: bool,
    /// The worker owns the bio; its second `end_io` only passes the status on.
    pub(crate) owned: bool,
    /// Whether the bio asked for FUA when `map` saw it (the block layer may strip the
    /// flag from the clone on its way down); the worker's writes for it keep it.
    pub(crate) fua: bool,
    /// For a bio the worker holds until its remaps are committed: the status of
    /// everything else it asked for.
    pub(crate) pieces_status: BlkStatus,
    /// Instrumentation: when `map` started, what kind of I/O this is.
    pub(crate) timing: IoTiming,
}

impl PerIo {
    /// Keeps the SRCU read section `token` until [`Self::release`] (in `end_io`).
    pub(crate) fn hold(&mut self, token: SrcuToken) {
        self.token = token;
        self.has_token = true;
    }

    /// Leaves the read section this bio holds, if any (once).
    pub(crate) fn release(&mut self, srcu: &Srcu) {
        if self.has_token {
            self.has_token = false;
            srcu.up_read(self.token);
        }
    }
}
