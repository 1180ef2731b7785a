// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers over the kernel C APIs that the `kernel` crate lacks or does not serve
//! (each file says why): device-mapper and bios (`dm`), kobjects, per-CPU memory, the
//! maple tree with lock-free readers, an RCU-protected box, SRCU, workqueues, CRC32C,
//! random bytes, the clock.
//!
//! All FFI of dm-remap is here: [`bindings`] is private to this module, so code outside
//! `rust/` cannot name it, and the crate root denies `unsafe_code` in every other module
//! (`src/dm_remap.rs`, with its one documented exception).

mod bindings;

pub(crate) mod clock;
pub(crate) mod countdown;
pub(crate) mod crc;
pub(crate) mod dm;
pub(crate) mod global;
pub(crate) mod kobject;
pub(crate) mod maple;
pub(crate) mod notifier;
pub(crate) mod pages;
pub(crate) mod percpu;
pub(crate) mod random;
pub(crate) mod rcu;
pub(crate) mod srcu;
pub(crate) mod workqueue;
