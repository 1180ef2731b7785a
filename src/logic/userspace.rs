// SPDX-License-Identifier: GPL-2.0

//! Userspace build of the pure-logic files (`cargo test`, fuzzing, benchmarks).
//!
//! The kernel module includes `mod.rs` directly; this root only makes the same files a
//! `no_std` library crate so their tests run on the host.

#![no_std]

#[cfg(test)]
extern crate std;

#[path = "mod.rs"]
mod logic;

pub use logic::*;
