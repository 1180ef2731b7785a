/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers for dm-remap's Rust code: thin out-of-line wrappers around static inline
 * functions and macros that bindgen cannot turn into callable Rust functions.
 */
#ifndef DM_REMAP_HELPERS_H
#define DM_REMAP_HELPERS_H

#include <linux/types.h>

struct bio;
struct block_device;
struct dm_target;

void dmr_bio_set_dev(struct bio *bio, struct block_device *bdev);
sector_t dmr_bdev_nr_sectors(struct block_device *bdev);
unsigned int dmr_bdev_logical_block_size(struct block_device *bdev);
blk_mode_t dmr_target_mode(struct dm_target *ti);
void dmr_target_event(struct dm_target *ti);

#endif /* DM_REMAP_HELPERS_H */
