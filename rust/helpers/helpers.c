// SPDX-License-Identifier: GPL-2.0
/*
 * Out-of-line forwarders of the static inline functions and macros dm-remap's Rust code
 * calls, which bindgen cannot turn into callable functions. Each one only forwards its
 * arguments; all logic is in rust/, and exported functions are called from Rust directly.
 *
 * One file per subsystem, #included here so that they build as one object, as in the
 * kernel's rust/helpers/ (whose helpers Rust code reaches as kernel::bindings). Sorted
 * alphabetically; the prototypes are in helpers.h.
 */

#include "helpers.h"

#include "bio.c"
#include "blk.c"
#include "maple_tree.c"
#include "mm.c"
#include "percpu.c"
#include "srcu.c"
#include "sysfs.c"
#include "wait.c"
#include "workqueue.c"
