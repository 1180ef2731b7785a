// SPDX-License-Identifier: GPL-2.0

//! Which spare region has which remap table, shared by every target instance that uses it.
//!
//! A table reload constructs the new target while the old one still serves I/O, and the
//! old one may remap blocks until it is suspended. Both must see one table, so tables are
//! keyed by their devices and spare region and kept here (as dm-thin keeps its pools): the
//! constructor takes the existing table or makes one ([`acquire`]), the destructor drops
//! its reference ([`TableRef`]). Regions that overlap without being the same are refused.

use crate::logic::layout::SpareLayout;
use crate::table::{RemapTable, TableView};
use kernel::prelude::*;
use kernel::sync::Arc;

/// What identifies a spare region and the data it describes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct RegionKey {
    pub(crate) main: u32,
    pub(crate) spare: u32,
    pub(crate) spare_start: u64,
    pub(crate) spare_len: u64,
    pub(crate) block_size: u32,
    pub(crate) copies: u32,
}

impl RegionKey {
    fn overlaps(&self, other: &RegionKey) -> bool {
        self.spare == other.spare
            && self.spare_start < other.spare_start + other.spare_len
            && other.spare_start < self.spare_start + self.spare_len
    }
}

/// Why a spare region cannot be used.
pub(crate) enum AcquireError {
    /// Overlaps a region another remap device uses differently.
    Conflict,
    /// Out of memory.
    NoMemory,
}

/// A table in use, with the region it describes and how many targets use it.
pub(crate) struct Registered {
    key: RegionKey,
    table: Arc<RemapTable>,
    users: usize,
}

crate::global::global_mutex! {
    /// The registry of spare-region states.
    static REGISTRY: Mutex<KVec<Registered>> = KVec::new();
}

/// Initialises the registry; called from the module initialiser.
pub(crate) fn init() {
    REGISTRY::init();
}

/// Frees the registry's memory when dropped (at module unload, after the target type is
/// unregistered): it is empty then, but a static is never dropped, so the capacity its
/// first table left would leak (kmemleak found it).
pub(crate) struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        *REGISTRY::lock() = KVec::new();
    }
}

/// A reference to a registered table, released when dropped.
pub(crate) struct TableRef(Arc<RemapTable>);

impl TableRef {
    /// A read-only view of the table, for holders that must not count as its users (a
    /// sysfs file may outlive the target).
    pub(crate) fn view(&self) -> TableView {
        TableView::new(self.0.clone())
    }
}

impl core::ops::Deref for TableRef {
    type Target = RemapTable;

    fn deref(&self) -> &RemapTable {
        &self.0
    }
}

/// The table of the spare region described by `key`: the one already in use (a table
/// reload) or a new one, not loaded yet (see [`RemapTable::load`]).
pub(crate) fn acquire(key: RegionKey, layout: SpareLayout) -> Result<TableRef, AcquireError> {
    let mut reg = REGISTRY::lock();
    for r in reg.iter_mut() {
        if r.key == key {
            r.users += 1;
            return Ok(TableRef(r.table.clone()));
        }
        if r.key.overlaps(&key) {
            return Err(AcquireError::Conflict);
        }
    }
    let table = RemapTable::new(layout, key.block_size).map_err(|_| AcquireError::NoMemory)?;
    reg.push(
        Registered {
            key,
            table: table.clone(),
            users: 1,
        },
        GFP_KERNEL,
    )
    .map_err(|_| AcquireError::NoMemory)?;
    Ok(TableRef(table))
}

impl Drop for TableRef {
    fn drop(&mut self) {
        let mut reg = REGISTRY::lock();
        if let Some(i) = reg.iter().position(|r| Arc::ptr_eq(&r.table, &self.0)) {
            reg[i].users -= 1;
            if reg[i].users == 0 {
                // The last user: drop it (the table lives on in the spare region).
                let _ = reg.remove(i);
            }
        }
    }
}
