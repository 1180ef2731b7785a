// SPDX-License-Identifier: GPL-2.0
/*
 * C code for the Rust side: out-of-line forwarders of static inline functions and macros,
 * and, until they move to Rust (issue 13), the kobject type, the ticker, the dm-io request
 * builders, the bio copy loops and the per-CPU max loop. See helpers.h.
 *
 * One file per subsystem, #included here so that they build as one object (as in the
 * kernel's rust/helpers/). Sorted alphabetically.
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
