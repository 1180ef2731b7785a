// SPDX-License-Identifier: GPL-2.0

#include <linux/blkdev.h>
#include <linux/device-mapper.h>
#include <linux/part_stat.h>

sector_t dmr_bdev_nr_sectors(struct block_device *bdev)
{
	return bdev_nr_sectors(bdev);
}

unsigned int dmr_bdev_logical_block_size(struct block_device *bdev)
{
	return bdev_logical_block_size(bdev);
}

struct block_device *dmr_dm_disk_part0(struct mapped_device *md)
{
	return dm_disk(md)->part0;
}

unsigned long dmr_part_stat_sectors(struct block_device *part)
{
	return part_stat_read_accum(part, sectors);
}

struct block_device *dmr_bdev_whole(struct block_device *bdev)
{
	return bdev_whole(bdev);
}

unsigned int dmr_disk_openers(struct mapped_device *md)
{
	return disk_openers(dm_disk(md));
}

/* Sectors written and discarded: what can change the data. */
unsigned long dmr_part_stat_write_sectors(struct block_device *part)
{
	return part_stat_read(part, sectors[STAT_WRITE]) +
	       part_stat_read(part, sectors[STAT_DISCARD]);
}

/* Whether the dm device's disk is dead (del_gendisk, or dm marking it before removal). */
bool dmr_dm_disk_dead(struct mapped_device *md)
{
	return test_bit(GD_DEAD, &dm_disk(md)->state);
}

/* Whether the dm device may be written: not read-only, and its table opened for writing. */
bool dmr_dm_writable(struct mapped_device *md, struct dm_table *t)
{
	return !bdev_read_only(dm_disk(md)->part0) && (dm_table_get_mode(t) & BLK_OPEN_WRITE);
}
