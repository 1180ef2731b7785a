// SPDX-License-Identifier: GPL-2.0
/*
 * Out-of-line wrappers for static inline functions and macros used from Rust.
 * Each one only forwards its arguments; see helpers.h.
 */
#include <linux/bio.h>
#include <linux/crc32.h>
#include <linux/blkdev.h>
#include <linux/device-mapper.h>
#include <linux/dm-io.h>
#include <linux/maple_tree.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/srcu.h>
#include <linux/workqueue.h>

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

dev_t dmr_bdev_devt(struct block_device *bdev)
{
	return bdev->bd_dev;
}

blk_mode_t dmr_target_mode(struct dm_target *ti)
{
	return dm_table_get_mode(ti->table);
}

void dmr_target_event(struct dm_target *ti)
{
	dm_table_event(ti->table);
}

const char *dmr_target_device_name(struct dm_target *ti)
{
	return dm_device_name(dm_table_get_md(ti->table));
}

void dmr_bio_record(struct dmr_bio_details *bd, struct bio *bio)
{
	bd->bi_bdev = bio->bi_bdev;
	bd->bi_flags = bio->bi_flags;
	bd->bi_iter = bio->bi_iter;
	bd->bi_remaining = atomic_read(&bio->__bi_remaining);
	bd->bi_end_io = bio->bi_end_io;
}

void dmr_bio_restore(const struct dmr_bio_details *bd, struct bio *bio)
{
	bio->bi_bdev = bd->bi_bdev;
	bio->bi_flags = bd->bi_flags;
	bio->bi_iter = bd->bi_iter;
	atomic_set(&bio->__bi_remaining, bd->bi_remaining);
	bio->bi_end_io = bd->bi_end_io;
}

/* Copies len bytes of the bio's data, starting skip bytes into iter, to buf. */
void dmr_bio_copy_from(struct bio *bio, const struct bvec_iter *iter, unsigned int skip,
		       void *buf, unsigned int len)
{
	struct bvec_iter it = *iter;
	struct bio_vec bv;
	char *p = buf;

	bio_advance_iter(bio, &it, skip);
	it.bi_size = len;
	__bio_for_each_segment(bv, bio, it, it) {
		memcpy_from_bvec(p, &bv);
		p += bv.bv_len;
	}
}

/* Copies len bytes from buf into the bio's data, starting skip bytes into iter. */
void dmr_bio_copy_to(struct bio *bio, const struct bvec_iter *iter, unsigned int skip,
		     const void *buf, unsigned int len)
{
	struct bvec_iter it = *iter;
	struct bio_vec bv;
	const char *p = buf;

	bio_advance_iter(bio, &it, skip);
	it.bi_size = len;
	__bio_for_each_segment(bv, bio, it, it) {
		memcpy_to_bvec(&bv, p);
		p += bv.bv_len;
	}
}

void dmr_bio_endio(struct bio *bio, u8 status)
{
	bio->bi_status = status;
	bio_endio(bio);
}

/* Synchronous I/O of count sectors between buf (kmalloc or vmalloc memory) and bdev. */
int dmr_io_sync(struct dm_io_client *client, struct block_device *bdev, sector_t sector,
		sector_t count, blk_opf_t opf, void *buf)
{
	struct dm_io_region region = { .bdev = bdev, .sector = sector, .count = count };
	struct dm_io_request req = {
		.bi_opf = opf,
		.mem.type = is_vmalloc_addr(buf) ? DM_IO_VMA : DM_IO_KMEM,
		.mem.ptr.addr = buf,
		.client = client,
	};

	return dm_io(&req, 1, &region, NULL, NULL, IOPRIO_DEFAULT);
}

/*
 * The same buffer to n regions of bdev (at most DMR_MAX_COPIES), in parallel; bit i of
 * *error_bits is set when region i failed. Returns 0 or the first error.
 */
int dmr_io_sync_regions(struct dm_io_client *client, struct block_device *bdev,
			const sector_t *sectors, unsigned int n, sector_t count, blk_opf_t opf,
			void *buf, unsigned long *error_bits)
{
	struct dm_io_region regions[DMR_MAX_COPIES];
	struct dm_io_request req = {
		.bi_opf = opf,
		.mem.type = is_vmalloc_addr(buf) ? DM_IO_VMA : DM_IO_KMEM,
		.mem.ptr.addr = buf,
		.client = client,
	};
	unsigned int i;

	if (n == 0 || n > DMR_MAX_COPIES)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		regions[i].bdev = bdev;
		regions[i].sector = sectors[i];
		regions[i].count = count;
	}
	*error_bits = 0;
	return dm_io(&req, n, regions, error_bits, NULL, IOPRIO_DEFAULT);
}

/* The standard CRC32C (inverted at both ends), check value 0xe3069283. */
u32 dmr_crc32c(const void *p, size_t len)
{
	return ~crc32c(~0U, p, len);
}

void dmr_mt_init(struct maple_tree *mt)
{
	mt_init_flags(mt, MT_FLAGS_USE_RCU);
}

/*
 * Destroys a tree nobody reads any more. RCU mode is switched off first so the nodes are
 * freed at once instead of by RCU callbacks walking a dead tree (that walk crashed on a
 * 100,000-entry tree in 7.3.4: mte_dead_walk() from mt_free_walk()).
 */
void dmr_mt_destroy(struct maple_tree *mt)
{
	mt_clear_in_rcu(mt);
	mtree_destroy(mt);
}

int dmr_srcu_init(struct srcu_struct *ssp)
{
	return init_srcu_struct_fast_updown(ssp);
}

struct srcu_ctr __percpu *dmr_srcu_down_read(struct srcu_struct *ssp)
{
	return srcu_down_read_fast(ssp);
}

void dmr_srcu_up_read(struct srcu_struct *ssp, struct srcu_ctr __percpu *scp)
{
	srcu_up_read_fast(ssp, scp);
}

unsigned int dmr_memalloc_noio_save(void)
{
	return memalloc_noio_save();
}

void dmr_memalloc_noio_restore(unsigned int flags)
{
	memalloc_noio_restore(flags);
}

struct workqueue_struct *dmr_alloc_ordered_workqueue(const char *name)
{
	return alloc_ordered_workqueue("%s", WQ_MEM_RECLAIM, name);
}

void dmr_flush_workqueue(struct workqueue_struct *wq)
{
	flush_workqueue(wq);
}
