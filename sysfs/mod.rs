// SPDX-License-Identifier: GPL-2.0

//! The `/sys/kernel/dm_remap` tree (every file is described in
//! `docs/ABI/sysfs-kernel-dm_remap`).
//!
//! `/sys/kernel/dm_remap` exists while the module is loaded and holds `version`, `devices`,
//! `performance_stats` and `lookup_benchmark`, and one directory per dm device that has a
//! `remap` target (with the device's stress engine under `stress/`),
//! named as `dmsetup` names the device. A device's directory and counters belong to the
//! device, not to one table: a reload constructs the new target while the old one still
//! exists, and both register with the same device, so the counters go on across reloads
//! and the directory goes away with the device's last target. A rename is picked up by
//! the once-a-second ticker, which also ends statistics windows and announces regression
//! flips (a dm event on the device and a `poll()` wake-up on `baseline/regression`).
//!
//! Locking: removing a directory waits for its running `show`s, so the root, whose
//! `devices` and `performance_stats` take the registry lock, is removed without holding
//! it; a device's files never take the registry lock.

mod files;

use crate::dm::{TargetHandle, NAME_LEN};
use crate::kobject::{self, AttrTables, Dir};
use crate::logic::stress::StopReason;
use crate::stats::DeviceStats;
use crate::stress::Stress;
use crate::table::TableView;
use crate::workqueue::{Tick, Ticker};
use kernel::prelude::*;
use kernel::sync::{new_mutex, Arc, Mutex};

pub(crate) use files::Root;

/// How often the ticker runs.
const TICK_MS: u32 = 1000;

/// A dm device with `remap` targets: what its directory's files read.
#[pin_data]
pub(crate) struct Device {
    #[pin]
    pub(crate) stats: DeviceStats,
    /// The remap table of the newest target (for `remaps/` and `metadata/`).
    #[pin]
    table: Mutex<TableView>,
    /// The device's stress engine (`stress/`).
    #[pin]
    pub(crate) stress: Stress,
}

/// A registered device.
struct Entry {
    /// `TargetHandle::device_id` of its targets.
    id: usize,
    /// Its directory's current name.
    name: [u8; NAME_LEN],
    dev: Arc<Device>,
    dir: Dir<Device>,
    /// Its live targets, oldest first.
    targets: KVec<Link>,
    /// A rename to the device's new name failed and was reported.
    rename_failed: bool,
}

struct Link {
    serial: u64,
    handle: TargetHandle,
    table: TableView,
}

/// The tree's global state.
pub(crate) struct Registry {
    root: Option<Dir<Root>>,
    device_tables: Option<KBox<AttrTables>>,
    devices: KVec<Entry>,
    next_serial: u64,
}

crate::global::global_mutex! {
    /// The tree's registry, initialised by `Tree::new` in the module initialiser before
    /// any target can be constructed.
    static REGISTRY: Mutex<Registry> = Registry {
        root: None,
        device_tables: None,
        devices: KVec::new(),
        next_serial: 0,
    };
}

/// The tree, from module load to unload.
pub(crate) struct Tree {
    ticker: Option<Ticker<Ticking>>,
    root_tables: Option<KBox<AttrTables>>,
}

/// What the ticker runs.
struct Ticking;

impl Tree {
    /// Creates `/sys/kernel/dm_remap` and starts the ticker. Called once, from the
    /// module initialiser.
    pub(crate) fn new() -> Result<Self> {
        REGISTRY::init();
        let root_tables = KBox::new(AttrTables::new::<Root>()?, GFP_KERNEL)?;
        let device_tables = KBox::new(AttrTables::new::<Device>()?, GFP_KERNEL)?;
        let root = Dir::new::<Root>(None, c"dm_remap", &root_tables, Arc::new(Root, GFP_KERNEL)?)
            .inspect_err(|_| {
            // A failed directory is still released (later, with
            // `CONFIG_DEBUG_KOBJECT_RELEASE`), in this module's code.
            kobject::wait_all_released();
        })?;
        {
            let mut reg = REGISTRY::lock();
            reg.root = Some(root);
            reg.device_tables = Some(device_tables);
        }
        let mut tree = Self {
            ticker: None,
            root_tables: Some(root_tables),
        };
        tree.ticker = Some(Ticker::start(Arc::new(Ticking, GFP_KERNEL)?, TICK_MS)?);
        Ok(tree)
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        // No target exists any more (the target type is unregistered first).
        drop(self.ticker.take());
        let (root, tables, devices) = {
            let mut reg = REGISTRY::lock();
            // Empty (every device went with its targets), but the static keeps its
            // capacity otherwise.
            let devices = core::mem::take(&mut reg.devices);
            (reg.root.take(), reg.device_tables.take(), devices)
        };
        drop(devices);
        // Outside the lock: removing the root waits for readers of `devices`, which take it.
        drop(root);
        // Releases may still be pending (they run the module's code): wait for them before
        // the module goes.
        kobject::wait_all_released();
        drop(tables);
        drop(self.root_tables.take());
    }
}

impl Tick for Ticking {
    fn tick(&self) {
        let mut reg = REGISTRY::lock();
        for e in reg.devices.iter_mut() {
            e.tick();
        }
    }
}

impl Device {
    /// The remap table of the device's newest target.
    pub(crate) fn table(&self) -> TableView {
        self.table.lock().clone()
    }
}

impl Entry {
    fn name(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.name).unwrap_or(c"?")
    }

    fn tick(&mut self) {
        let stats = &self.dev.stats;
        stats.tick();
        if stats.take_flip() {
            self.dir.notify(c"baseline", c"regression");
            for t in self.targets.iter() {
                t.handle.raise_event();
            }
        }
        self.follow_rename();
    }

    /// Renames the directory after `dmsetup rename`.
    fn follow_rename(&mut self) {
        let Some(t) = self.targets.last() else {
            return;
        };
        let mut buf = [0u8; NAME_LEN];
        let Ok(now) = t.handle.device_name(&mut buf) else {
            return;
        };
        if now.to_bytes() == self.name().to_bytes() {
            return;
        }
        match self.dir.rename(now) {
            Ok(()) => {
                self.name = buf;
                self.rename_failed = false;
            }
            Err(e) if !self.rename_failed => {
                self.rename_failed = true;
                pr_warn!(
                    "cannot rename /sys/kernel/dm_remap/{} to {}: error {}\n",
                    self.name().to_str().unwrap_or("?"),
                    now.to_str().unwrap_or("?"),
                    e.to_errno()
                );
            }
            Err(_) => {}
        }
    }
}

/// Stops every device's stress run and waits for it, at reboot. Sleeps.
pub(crate) fn stop_all_stress_reboot() {
    stop_all_stress(StopReason::Reboot);
}

/// The same before a system suspend or hibernation.
pub(crate) fn stop_all_stress_sleep() {
    stop_all_stress(StopReason::Sleep);
}

fn stop_all_stress(why: StopReason) {
    let devices = {
        let reg = REGISTRY::lock();
        let mut v = KVec::new();
        for e in reg.devices.iter() {
            // Without memory the device is skipped; its run ends at its deadline.
            let _ = v.push(e.dev.clone(), GFP_KERNEL);
        }
        v
    };
    // Outside the registry lock: the runs' last tasks do not take it, but a device's
    // directory may be going away meanwhile.
    for d in devices.iter() {
        d.stress.stop(why);
    }
}

/// A target's membership of its device's directory; leaving (on drop) removes the
/// directory with the device's last target.
pub(crate) struct Registration {
    id: usize,
    serial: u64,
    dev: Arc<Device>,
}

impl Registration {
    /// The device's counters and files.
    pub(crate) fn device(&self) -> &Arc<Device> {
        &self.dev
    }
}

fn nomem<E>(_: E) -> (Error, &'static CStr) {
    (ENOMEM, c"Cannot allocate memory for statistics")
}

/// Registers target `handle` (with its remap table) with its dm device, creating
/// the device's directory for its first target, with instrumentation on if `stats_on`
/// (a reloaded table's choice applies when it is resumed, see `RemapTarget::resume`).
/// Sleeps.
pub(crate) fn register(
    handle: &TargetHandle,
    table: TableView,
    stats_on: bool,
) -> Result<Registration, (Error, &'static CStr)> {
    let id = handle.device_id();
    let mut reg = REGISTRY::lock();
    let reg = &mut *reg;
    let serial = reg.next_serial;
    reg.next_serial += 1;
    let link = Link {
        serial,
        handle: handle.clone(),
        table: table.clone(),
    };
    if let Some(e) = reg.devices.iter_mut().find(|e| e.id == id) {
        e.targets.push(link, GFP_KERNEL).map_err(nomem)?;
        *e.dev.table.lock() = table;
        return Ok(Registration {
            id,
            serial,
            dev: e.dev.clone(),
        });
    }
    let (Some(root), Some(tables)) = (&reg.root, &reg.device_tables) else {
        return Err((ENODEV, c"The module is being unloaded"));
    };
    let mut name = [0u8; NAME_LEN];
    handle
        .device_name(&mut name)
        .map_err(|e| (e, c"Cannot find the dm device's name"))?;
    let dev = Arc::pin_init(
        try_pin_init!(Device {
            stats <- DeviceStats::new(stats_on),
            table <- new_mutex!(table),
            stress <- Stress::new(),
        }),
        GFP_KERNEL,
    )
    .map_err(nomem)?;
    let mut targets = KVec::new();
    targets.push(link, GFP_KERNEL).map_err(nomem)?;
    reg.devices.reserve(1, GFP_KERNEL).map_err(nomem)?;
    let dir_name = CStr::from_bytes_until_nul(&name).map_err(|_| (EINVAL, c"Bad device name"))?;
    let dir = Dir::new(Some(root), dir_name, tables, dev.clone())
        .map_err(|e| (e, c"Cannot create /sys/kernel/dm_remap/<device>"))?;
    let entry = Entry {
        id,
        name,
        dev: dev.clone(),
        dir,
        targets,
        rename_failed: false,
    };
    // Capacity was reserved above. (Dropping an entry under the lock is fine: its
    // directory's files do not take the lock.)
    reg.devices
        .push_within_capacity(entry)
        .map_err(|_| (ENOMEM, c"Cannot allocate memory for statistics"))?;
    Ok(Registration { id, serial, dev })
}

impl Drop for Registration {
    fn drop(&mut self) {
        let gone = {
            let mut reg = REGISTRY::lock();
            let Some(i) = reg.devices.iter().position(|e| e.id == self.id) else {
                return;
            };
            let e = &mut reg.devices[i];
            e.targets.retain(|t| t.serial != self.serial);
            match e.targets.last() {
                Some(newest) => {
                    *e.dev.table.lock() = newest.table.clone();
                    None
                }
                None => reg.devices.remove(i).ok(),
            }
        };
        // Outside the lock, though the device's files do not take it either.
        drop(gone);
    }
}
