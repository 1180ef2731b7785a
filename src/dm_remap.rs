// SPDX-License-Identifier: GPL-2.0

//! dm-remap: a device-mapper target that keeps a degrading disk usable by redirecting
//! failing blocks of a main device to a spare device.
//!
//! Crate layout: `rust/` holds the safe wrappers over C APIs the `kernel` crate lacks
//! (device-mapper, bio, kobjects, per-CPU memory) with all FFI and `unsafe`; its
//! `bindings` are private to it. `src/logic/` holds pure `core`-only logic shared with the
//! userspace tests. `sysfs/` is the `/sys/kernel/dm_remap` tree. The target's modules, each
//! answering one question (docs/design.md, "Module map"):
//!
//! - where a bio is routed: `map` (the dm callbacks themselves are in `target`);
//! - where a failing write becomes a remap: `worker` (`write_piece`), then `moves`;
//! - how a block moves (for the worker, messages and scans): `moves`;
//! - where the table is committed: `metadata` (`Metadata::commit`);
//! - the table in memory, and who shares it: `table`, `registry`;
//! - `dmsetup message`: `message`; one target's shared parts: `instance`; per-bio data:
//!   `per_io`; staged moves: `group`; instrumentation: `stats`;
//! - the background scanner: `scanner` (the scan), `scan` (its state, kept with the table);
//! - `/sys/kernel/dm_remap/lookup_benchmark`: `lookup_bench`.

#[path = "../rust/mod.rs"]
mod rust;
use rust::{
    clock, countdown, crc, dm, global, kobject, maple, notifier, pages, percpu, random, rcu, srcu,
    workqueue,
};

// Every module outside `rust/` denies `unsafe_code` (the crate root itself cannot: the
// `module!` macro expands to unsafe code here). The exceptions, each with its argument:
// `src/table.rs`, the table load's switch of the tree out of RCU mode (`ValueTree::exclusive`),
// and the `init` that `global_mutex!` (`rust/global.rs`) generates. `make check` verifies
// that there are no others.
// The pure-logic files are also the public API of the userspace crate (tests, tools), hence
// `pub` items unreachable from here and items only the userspace side uses.
#[deny(unsafe_code)]
mod group;
#[deny(unsafe_code)]
mod index;
#[deny(unsafe_code)]
mod instance;
#[allow(unreachable_pub, dead_code)]
#[deny(unsafe_code)]
mod logic;
#[deny(unsafe_code)]
mod lookup_bench;
#[deny(unsafe_code)]
mod map;
#[deny(unsafe_code)]
mod message;
#[deny(unsafe_code)]
mod metadata;
#[deny(unsafe_code)]
mod moves;
#[deny(unsafe_code)]
mod per_io;
#[deny(unsafe_code)]
mod registry;
#[deny(unsafe_code)]
mod scan;
#[deny(unsafe_code)]
mod scanner;
#[deny(unsafe_code)]
mod stats;
#[deny(unsafe_code)]
mod stress;
#[deny(unsafe_code)]
#[path = "../sysfs/mod.rs"]
mod sysfs;
#[deny(unsafe_code)]
mod table;
#[deny(unsafe_code)]
mod target;
#[cfg(dmr_test_hooks)]
#[deny(unsafe_code)]
mod test_hooks;
#[deny(unsafe_code)]
mod worker;

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
    /// Dropped after the target type is unregistered.
    _registry: registry::Guard,
    #[pin]
    test_targets: TestTargets,
    /// Stop stress runs at reboot and before a system sleep; dropped before the tree.
    _reboot: notifier::Notifier,
    _sleep: notifier::Notifier,
    sysfs: sysfs::Tree,
}

impl kernel::InPlaceModule for DmRemapModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        registry::init();
        lookup_bench::init();
        // Initialised in this order: the tree exists before a target can be constructed.
        try_pin_init!(Self {
            sysfs: sysfs::Tree::new()?,
            _reboot: notifier::Notifier::register(notifier::Chain::Reboot, sysfs::stop_all_stress_reboot)?,
            _sleep: notifier::Notifier::register(notifier::Chain::Sleep, sysfs::stop_all_stress_sleep)?,
            target <- dm::Registration::new(module),
            _registry: registry::Guard,
            test_targets <- TestTargets::new(module),
        })
    }
}
