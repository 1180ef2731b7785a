// SPDX-License-Identifier: GPL-2.0

//! Module-wide mutexes (the registries) that need no `unsafe` to set up or use.
//!
//! The `kernel` crate's `global_lock!` makes a static lock whose `unsafe fn init` must run
//! exactly once before its first use. [`global_mutex!`] wraps one in a module with a safe
//! `init`, which initialises the lock on its first call and does nothing on later ones, and
//! a `lock` that refuses (panics) before `init` has completed: a bug in the module's
//! initialiser, found on the first load, instead of a lock used uninitialised.

/// Declares `mod NAME` holding a global `Mutex<T>`: `NAME::init()` (call it from the module
/// initialiser, before anything can lock it) and `NAME::lock()`.
///
/// The type and the initial value are resolved in the invoking module.
macro_rules! global_mutex {
    ($(#[$meta:meta])* $vis:vis static $name:ident: Mutex<$ty:ty> = $value:expr;) => {
        $(#[$meta])*
        #[allow(non_snake_case)]
        $vis mod $name {
            #[allow(unused_imports)]
            use super::*;
            use kernel::sync::atomic::{Acquire, Atomic, Full, Release};

            kernel::sync::global_lock! {
                // SAFETY: `init` below initialises it once, and `lock` reaches it only after
                // that initialisation completed.
                pub(crate) unsafe(uninit) static LOCK: Mutex<$ty> = $value;
            }

            /// 0: not initialised, 1: being initialised, 2: ready.
            static STATE: Atomic<i32> = Atomic::new(0);

            /// Initialises the lock; later calls do nothing.
            pub(crate) fn init() {
                if STATE.cmpxchg(0, 1, Full).is_ok() {
                    // The one use of `unsafe` that this macro puts into the module using it
                    // (`src/dm_remap.rs` denies `unsafe_code` there): the argument is here.
                    #[allow(unsafe_code)]
                    // SAFETY: Only the caller that moved `STATE` from 0 to 1 gets here, so
                    // this runs once, and `lock` does not touch `LOCK` before `STATE` is 2.
                    unsafe {
                        LOCK.init()
                    };
                    STATE.store(2, Release);
                }
            }

            /// Locks the mutex. Panics if [`init`] has not completed.
            pub(crate) fn lock() -> kernel::sync::lock::GlobalGuard<LOCK> {
                assert!(
                    STATE.load(Acquire) == 2,
                    "global mutex locked before the module initialised it"
                );
                LOCK.lock()
            }
        }
    };
}
pub(crate) use global_mutex;
