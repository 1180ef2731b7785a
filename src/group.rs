// SPDX-License-Identifier: GPL-2.0

//! A group: moves staged under the writer lock and committed together in one metadata
//! record, with the bios that wait for that commit (`moves.rs` stages and commits them).

use crate::dm::DeferredList;
use crate::logic::format::Change;
use crate::logic::route::Entry;
use crate::per_io::PerIo;
use kernel::prelude::*;

/// Moves a group holds at most; a journal record of them stays small (a few sectors).
const GROUP_MOVES: usize = 32;
/// Changes a group records at most: each move's remap and retirement, and room for spare
/// blocks retired because writing them failed.
const GROUP_CHANGES: usize = 3 * GROUP_MOVES;

/// Times the worker takes newly deferred bios into an open group before committing it.
pub(crate) const GROUP_ROUNDS: usize = 4;

/// A move whose data is written but whose remap is not committed yet.
#[derive(Clone, Copy)]
pub(crate) struct Staged {
    pub(crate) block: u64,
    pub(crate) spare: u64,
    /// The spare block the block leaves, retired once the move is committed (a write to
    /// it failed).
    pub(crate) retire: Option<u64>,
    /// The entry if the move is undone (`None`: no entry).
    pub(crate) undo: Option<Entry>,
    /// Made by the worker for a failed write (not by a message).
    pub(crate) auto: bool,
}

/// Staged moves, the changes that commit them and the bios waiting for that commit. Lives
/// in the writer state and is empty whenever the writer lock is free. Its vectors are
/// allocated once, with room for a full group.
pub(crate) struct Group {
    pub(crate) changes: KVec<Change>,
    pub(crate) moves: KVec<Staged>,
    pub(crate) held: DeferredList<PerIo>,
}

impl Group {
    /// An empty group.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            changes: KVec::with_capacity(GROUP_CHANGES, GFP_KERNEL)?,
            moves: KVec::with_capacity(GROUP_MOVES, GFP_KERNEL)?,
            held: DeferredList::new(),
        })
    }

    /// Whether nothing is staged or held.
    pub(crate) fn is_empty(&self) -> bool {
        self.moves.is_empty() && self.changes.is_empty() && self.held.is_empty()
    }

    /// Whether one more move may not fit.
    pub(crate) fn is_full(&self) -> bool {
        self.moves.len() == GROUP_MOVES || self.changes.len() + 2 > GROUP_CHANGES
    }

    /// Whether main block `block` has a staged move.
    pub(crate) fn stages(&self, block: u64) -> bool {
        self.moves.iter().any(|m| m.block == block)
    }

    /// Records `c` unless that would leave less than `keep` free places.
    pub(crate) fn record(&mut self, c: Change, keep: usize) {
        if self.changes.len() + keep < GROUP_CHANGES {
            // Within the capacity reserved at construction (checked above).
            let _ = self.changes.push_within_capacity(c);
        }
    }

    /// Stages `m`; the caller checked [`Group::is_full`].
    pub(crate) fn stage(&mut self, m: Staged) {
        let _ = self.moves.push_within_capacity(m);
    }
}
