// SPDX-License-Identifier: GPL-2.0
/*
 * Out-of-line wrappers for static inline functions and macros used from Rust.
 * Each one only forwards its arguments; see helpers.h.
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/device-mapper.h>

#include "helpers.h"

void dmr_bio_set_dev(struct bio *bio, struct block_device *bdev)
{
	bio_set_dev(bio, bdev);
}

sector_t dmr_bdev_nr_sectors(struct block_device *bdev)
{
	return bdev_nr_sectors(bdev);
}

unsigned int dmr_bdev_logical_block_size(struct block_device *bdev)
{
	return bdev_logical_block_size(bdev);
}

blk_mode_t dmr_target_mode(struct dm_target *ti)
{
	return dm_table_get_mode(ti->table);
}

void dmr_target_event(struct dm_target *ti)
{
	dm_table_event(ti->table);
}
