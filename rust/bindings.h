/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Everything dm-remap's Rust code calls in C: bindgen turns the allowlisted parts of
 * these headers into rust/bindings_generated.rs (see Kbuild).
 */
#include <linux/bio.h>
#include <linux/crc32.h>
#include <linux/random.h>
#include <linux/reboot.h>
#include <linux/suspend.h>
#include <linux/blk_types.h>
#include <linux/blkdev.h>
#include <linux/device-mapper.h>
#include <linux/dm-io.h>
#include <linux/ioprio.h>
#include <linux/maple_tree.h>
#include <linux/part_stat.h>
#include <linux/srcu.h>
#include <linux/sysfs.h>
#include <linux/workqueue.h>

#include "helpers/helpers.h"

/*
 * Macros with casts that bindgen cannot evaluate, exposed as typed constants
 * (the same trick as the kernel's own rust/bindings/bindings_helper.h).
 */
const blk_opf_t DMR_REQ_OP_MASK = REQ_OP_MASK;
const blk_opf_t DMR_REQ_FUA = REQ_FUA;
const blk_opf_t DMR_REQ_OP_READ = REQ_OP_READ;
const blk_opf_t DMR_REQ_OP_WRITE = REQ_OP_WRITE;
const blk_opf_t DMR_REQ_OP_FLUSH = REQ_OP_FLUSH;
const blk_opf_t DMR_REQ_OP_DISCARD = REQ_OP_DISCARD;
const blk_opf_t DMR_REQ_OP_SECURE_ERASE = REQ_OP_SECURE_ERASE;
const blk_opf_t DMR_REQ_OP_WRITE_ZEROES = REQ_OP_WRITE_ZEROES;
const blk_status_t DMR_BLK_STS_OK = BLK_STS_OK;
const blk_status_t DMR_BLK_STS_IOERR = BLK_STS_IOERR;
const blk_status_t DMR_BLK_STS_NOSPC = BLK_STS_NOSPC;
const blk_opf_t DMR_REQ_SYNC = REQ_SYNC;
const blk_status_t DMR_BLK_STS_MEDIUM = BLK_STS_MEDIUM;
const blk_status_t DMR_BLK_STS_TIMEOUT = BLK_STS_TIMEOUT;
const blk_status_t DMR_BLK_STS_TRANSPORT = BLK_STS_TRANSPORT;
const blk_status_t DMR_BLK_STS_OFFLINE = BLK_STS_OFFLINE;
const blk_status_t DMR_BLK_STS_TARGET = BLK_STS_TARGET;
const blk_status_t DMR_BLK_STS_PROTECTION = BLK_STS_PROTECTION;
const blk_status_t DMR_BLK_STS_INVAL = BLK_STS_INVAL;
const blk_status_t DMR_BLK_STS_RESOURCE = BLK_STS_RESOURCE;
/* Largest logical block size this kernel accepts (64 KiB with large folios, else a page). */
const unsigned int DMR_BLK_MAX_BLOCK_SIZE = BLK_MAX_BLOCK_SIZE;
const gfp_t DMR_GFP_NOIO = GFP_NOIO;
const int DMR_WORK_CPU_UNBOUND = WORK_CPU_UNBOUND;
/*
 * IOPRIO_DEFAULT is IOPRIO_PRIO_VALUE(IOPRIO_CLASS_NONE, 0), a call of an inline function
 * that cannot initialise a constant; this is the value it returns (class NONE, level 0,
 * no hint).
 */
const unsigned short DMR_IOPRIO_DEFAULT = IOPRIO_CLASS_NONE << IOPRIO_CLASS_SHIFT;
/* IOPRIO_PRIO_VALUE(IOPRIO_CLASS_IDLE, 0): the background scanner's reads. */
const unsigned short DMR_IOPRIO_IDLE = IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT;
const int DMR_NOTIFY_DONE = NOTIFY_DONE;
const unsigned long DMR_PM_SUSPEND_PREPARE = PM_SUSPEND_PREPARE;
const unsigned long DMR_PM_HIBERNATION_PREPARE = PM_HIBERNATION_PREPARE;
