// SPDX-License-Identifier: GPL-2.0

//! Notifiers for the machine going down or to sleep: a function called before a reboot,
//! halt or power-off (`register_reboot_notifier`), or before a system suspend or
//! hibernation (`register_pm_notifier`, its `*_PREPARE` events), while devices still work.
//! The `kernel` crate has no wrapper for either.

use crate::rust::bindings;
use kernel::prelude::*;
use kernel::types::Opaque;

/// Which notifier chain.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chain {
    /// Reboot, halt, power-off.
    Reboot,
    /// System suspend and hibernation (called at their preparation).
    Sleep,
}

/// Calls a function on a chain's events while registered (until dropped).
pub(crate) struct Notifier {
    block: Pin<KBox<Block>>,
}

/// # Invariants
///
/// `nb` is registered on `chain` with [`call`] as its function from `Notifier::register`
/// until `Notifier`'s drop.
#[pin_data]
struct Block {
    #[pin]
    nb: Opaque<bindings::notifier_block>,
    chain: Chain,
    f: fn(),
}

// SAFETY: The notifier may be unregistered (dropped) on any thread; `f` is a plain function.
unsafe impl Send for Notifier {}
// SAFETY: `Notifier` has no `&self` methods.
unsafe impl Sync for Notifier {}

impl Notifier {
    /// Registers `f` to run (in process context, may sleep) on `chain`'s events.
    pub(crate) fn register(chain: Chain, f: fn()) -> Result<Self> {
        let block = KBox::pin_init(
            pin_init!(Block {
                // SAFETY: `slot` is valid for writes; a zeroed notifier block with its
                // function set is what a notifier chain expects (priority 0).
                nb <- Opaque::ffi_init(|slot: *mut bindings::notifier_block| unsafe {
                    slot.write_bytes(0, 1);
                    (*slot).notifier_call = Some(call);
                }),
                chain,
                f,
            }),
            GFP_KERNEL,
        )?;
        let nb = block.nb.get();
        // INVARIANT: registered here, unregistered in `drop`.
        // SAFETY: `nb` is initialised and pinned in its box, which `drop` frees only after
        // unregistering it.
        let r = unsafe {
            match chain {
                Chain::Reboot => bindings::register_reboot_notifier(nb),
                Chain::Sleep => bindings::dmr_register_pm_notifier(nb),
            }
        };
        kernel::error::to_result(r)?;
        Ok(Self { block })
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        let nb = self.block.nb.get();
        // SAFETY: `nb` was registered on its chain (type invariant); unregistering waits for
        // a running call (the chain's rwsem), so the box may be freed afterwards.
        unsafe {
            match self.block.chain {
                Chain::Reboot => bindings::unregister_reboot_notifier(nb),
                Chain::Sleep => bindings::dmr_unregister_pm_notifier(nb),
            }
        };
    }
}

/// The notifier function of a [`Block`].
///
/// # Safety
///
/// Called by a notifier chain with the `nb` of a registered `Block`.
unsafe extern "C" fn call(
    nb: *mut bindings::notifier_block,
    event: c_ulong,
    _data: *mut c_void,
) -> c_int {
    // SAFETY: `nb` is the `nb` field of a registered, hence live, `Block` (function safety
    // requirement); `Opaque<T>` has the layout of `T`.
    let block = unsafe { &*kernel::container_of!(Opaque::cast_from(nb).cast_mut(), Block, nb) };
    let wanted = match block.chain {
        Chain::Reboot => true,
        Chain::Sleep => {
            event == bindings::DMR_PM_SUSPEND_PREPARE
                || event == bindings::DMR_PM_HIBERNATION_PREPARE
        }
    };
    if wanted {
        (block.f)();
    }
    bindings::DMR_NOTIFY_DONE
}
