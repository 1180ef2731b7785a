// SPDX-License-Identifier: GPL-2.0

//! Pure logic of dm-remap: no kernel types, only `core`.
//!
//! Every file under `src/logic/` builds both inside the kernel module (as the `logic`
//! module of the crate) and in userspace (the `dm-remap-logic` crate, see `userspace.rs`)
//! where `cargo test`, fuzzing and native benchmarks run against exactly the same code.

pub mod alloc;
pub mod args;
pub mod copies;
pub mod filter;
pub mod format;
pub mod histogram;
pub mod index;
pub mod layout;
pub mod message;
pub mod rng;
pub mod route;
pub mod scan;
pub mod stats;
pub mod stress;
