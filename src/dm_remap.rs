// SPDX-License-Identifier: GPL-2.0

//! dm-remap: a device-mapper target that keeps a degrading disk usable by redirecting
//! failing blocks of a main device to a spare device.
//!
//! Crate layout: `rust/` holds the safe wrappers over C APIs the `kernel` crate lacks
//! (device-mapper, bio, kobjects, per-CPU memory) with all FFI; `src/logic/` holds pure
//! `core`-only logic shared with the userspace tests; `src/target.rs` is the target
//! itself; `sysfs/` is the `/sys/kernel/dm_remap` tree.

#[path = "../rust/bindings.rs"]
mod bindings;
#[path = "../rust/clock.rs"]
mod clock;
#[path = "../rust/crc.rs"]
mod crc;
#[path = "../rust/dm/mod.rs"]
mod dm;
#[path = "../rust/kobject.rs"]
mod kobject;
#[path = "../rust/maple.rs"]
mod maple;
#[path = "../rust/percpu.rs"]
mod percpu;
#[path = "../rust/random.rs"]
mod random;
#[path = "../rust/srcu.rs"]
mod srcu;
#[path = "../rust/workqueue.rs"]
mod workqueue;
// The pure-logic files are also the public API of the userspace crate (tests, tools), hence
// `pub` items unreachable from here and items only the userspace side uses.
#[allow(unreachable_pub, dead_code)]
mod logic;
mod metadata;
mod remap;
mod state;
mod stats;
#[path = "../sysfs/mod.rs"]
mod sysfs;
mod target;
#[cfg(dmr_test_hooks)]
mod test_hooks;

use kernel::prelude::*;

/// Target types registered only in test builds (`make DMR_TEST_HOOKS=1`).
#[cfg(dmr_test_hooks)]
type TestTargets = dm::Registration<test_hooks::StatusTarget>;
#[cfg(not(dmr_test_hooks))]
type TestTargets = NoTestTargets;

/// What a normal build registers for the tests: nothing.
#[cfg(not(dmr_test_hooks))]
#[pin_data]
struct NoTestTargets {}

#[cfg(not(dmr_test_hooks))]
impl NoTestTargets {
    fn new(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {})
    }
}

module! {
    type: DmRemapModule,
    name: "dm_remap",
    authors: ["dm-remap developers"],
    description: "device-mapper target that remaps failing blocks to a spare device",
    license: "GPL v2",
}

/// The module: registers the `remap` target type and `/sys/kernel/dm_remap` for as long
/// as it is loaded.
#[pin_data]
struct DmRemapModule {
    /// Declared (and so dropped) first: no target exists when the tree goes.
    #[pin]
    target: dm::Registration<target::RemapTarget>,
    #[pin]
    test_targets: TestTargets,
    sysfs: sysfs::Tree,
}

impl kernel::InPlaceModule for DmRemapModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        state::registry_init();
        // Initialised in this order: the tree exists before a target can be constructed.
        try_pin_init!(Self {
            sysfs: sysfs::Tree::new()?,
            target <- dm::Registration::new(module),
            test_targets <- TestTargets::new(module),
        })
    }
}
