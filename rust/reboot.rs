// SPDX-License-Identifier: GPL-2.0

//! A reboot notifier (`register_reboot_notifier`): a function called before the machine
//! restarts, halts or powers off, while devices still work. The `kernel` crate has no
//! wrapper for it.

use crate::rust::bindings;
use kernel::prelude::*;
use kernel::types::Opaque;

/// Calls a function at reboot while registered (until dropped).
pub(crate) struct RebootNotifier {
    block: Pin<KBox<Block>>,
}

/// # Invariants
///
/// `nb` is registered on the reboot chain with [`call`] as its function from
/// `RebootNotifier::register` until `RebootNotifier`'s drop.
#[pin_data]
struct Block {
    #[pin]
    nb: Opaque<bindings::notifier_block>,
    f: fn(),
}

// SAFETY: The notifier may be unregistered (dropped) on any thread; `f` is a plain function.
unsafe impl Send for RebootNotifier {}
// SAFETY: `RebootNotifier` has no `&self` methods.
unsafe impl Sync for RebootNotifier {}

impl RebootNotifier {
    /// Registers `f` to run (in process context, may sleep) when the system reboots.
    pub(crate) fn register(f: fn()) -> Result<Self> {
        let block = KBox::pin_init(
            pin_init!(Block {
                // SAFETY: `slot` is valid for writes; a zeroed notifier block with its
                // function set is what the notifier chain expects (priority 0).
                nb <- Opaque::ffi_init(|slot: *mut bindings::notifier_block| unsafe {
                    slot.write_bytes(0, 1);
                    (*slot).notifier_call = Some(call);
                }),
                f,
            }),
            GFP_KERNEL,
        )?;
        // INVARIANT: registered here, unregistered in `drop`.
        // SAFETY: `nb` is initialised and pinned in its box, which `drop` frees only after
        // unregistering it.
        kernel::error::to_result(unsafe { bindings::register_reboot_notifier(block.nb.get()) })?;
        Ok(Self { block })
    }
}

impl Drop for RebootNotifier {
    fn drop(&mut self) {
        // SAFETY: `nb` was registered (type invariant); unregistering waits for a running
        // call (the chain's rwsem), so the box may be freed afterwards.
        unsafe { bindings::unregister_reboot_notifier(self.block.nb.get()) };
    }
}

/// The notifier function of a [`Block`].
///
/// # Safety
///
/// Called by the reboot notifier chain with the `nb` of a registered `Block`.
unsafe extern "C" fn call(
    nb: *mut bindings::notifier_block,
    _event: c_ulong,
    _data: *mut c_void,
) -> c_int {
    // SAFETY: `nb` is the `nb` field of a registered, hence live, `Block` (function safety
    // requirement); `Opaque<T>` has the layout of `T`.
    let block = unsafe { &*kernel::container_of!(Opaque::cast_from(nb).cast_mut(), Block, nb) };
    (block.f)();
    bindings::DMR_NOTIFY_DONE
}
