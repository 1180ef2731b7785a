// SPDX-License-Identifier: GPL-2.0

//! Sleepable RCU with semaphore-like readers (`srcu_down_read_fast`/`srcu_up_read_fast`).
//!
//! The I/O path enters a read section when it sends a write to the main device and leaves
//! it when the write completes (in another context). A writer that must know that every
//! write sent before some point has finished (to move a block safely) calls
//! [`Srcu::synchronize`]. Readers cost a per-CPU counter increment, no barrier and no
//! shared cache line.

use crate::rust::bindings;
use kernel::prelude::*;
use kernel::types::Opaque;

/// An SRCU domain.
///
/// # Invariants
///
/// `ssp` is initialised for the fast up/down flavour until drop.
#[repr(transparent)]
#[pin_data(PinnedDrop)]
pub(crate) struct Srcu {
    #[pin]
    ssp: Opaque<bindings::srcu_struct>,
}

// SAFETY: An `srcu_struct` has no thread affinity: it may be cleaned up (dropped) on any
// thread, and its per-CPU counters are its own allocation.
unsafe impl Send for Srcu {}
// SAFETY: The `&self` methods are SRCU's reader (`down_read`, `up_read`) and updater
// (`synchronize`) primitives, which SRCU is built to run concurrently on any CPU; readers
// touch only the current CPU's counters, and `synchronize` sleeps, which is its caller's
// documented duty.
unsafe impl Sync for Srcu {}

/// Proof of an SRCU read section entered with [`Srcu::down_read`], to be passed to
/// [`Srcu::up_read`] exactly once. It is `Copy` so it can live in per-bio data; using it
/// twice is a logic error (an early grace period), not memory unsafety.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SrcuToken(usize);

impl Srcu {
    /// A new SRCU domain.
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            // INVARIANT: The initialiser fails unless `init_srcu_struct_fast_updown`
            // succeeded, so every `Srcu` holds a domain initialised for that flavour.
            ssp <- Opaque::try_ffi_init(|slot| {
                // SAFETY: `slot` is valid for writes and pinned.
                kernel::error::to_result(unsafe { bindings::dmr_srcu_init(slot) })
            }),
        })
    }

    /// Enters a read section; may be left from another context.
    pub(crate) fn down_read(&self) -> SrcuToken {
        // SAFETY: `ssp` is initialised for this flavour (type invariant).
        SrcuToken(unsafe { bindings::dmr_srcu_down_read(self.ssp.get()) } as usize)
    }

    /// Leaves the read section `token` was returned for.
    pub(crate) fn up_read(&self, token: SrcuToken) {
        // SAFETY: `ssp` is initialised; `token` came from `down_read` on this domain (a
        // wrong or repeated token only miscounts readers).
        unsafe { bindings::dmr_srcu_up_read(self.ssp.get(), token.0 as *mut _) };
    }

    /// Waits until every read section entered before this call has been left. Sleeps.
    pub(crate) fn synchronize(&self) {
        // SAFETY: `ssp` is initialised.
        unsafe { bindings::synchronize_srcu(self.ssp.get()) };
    }
}

#[pinned_drop]
impl PinnedDrop for Srcu {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: `ssp` is initialised; no reader is left once the owner is dropped.
        unsafe { bindings::cleanup_srcu_struct(self.ssp.get()) };
    }
}
