/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C helpers for dm-remap's Rust code: thin out-of-line wrappers around static inline
 * functions and macros that bindgen cannot turn into callable Rust functions.
 */
#ifndef DM_REMAP_HELPERS_H
#define DM_REMAP_HELPERS_H

#include <linux/types.h>
#include <linux/bvec.h>

/* Most metadata copies a target may keep (one dm-io region each). */
#define DMR_MAX_COPIES 16

struct bio;
struct block_device;
struct dm_target;
struct dm_io_client;
struct maple_tree;
struct srcu_struct;
struct srcu_ctr;
struct workqueue_struct;

/*
 * The parts of a bio the lower layers change while they process it, saved before the bio
 * is submitted so a failed bio can be re-read or completed again (the same fields as
 * drivers/md/dm-bio-record.h, which is private to drivers/md).
 */
struct dmr_bio_details {
	struct block_device *bi_bdev;
	unsigned long bi_flags;
	struct bvec_iter bi_iter;
	void *bi_end_io;
	int bi_remaining;
};

void dmr_bio_set_dev(struct bio *bio, struct block_device *bdev);
sector_t dmr_bdev_nr_sectors(struct block_device *bdev);
unsigned int dmr_bdev_logical_block_size(struct block_device *bdev);
dev_t dmr_bdev_devt(struct block_device *bdev);
blk_mode_t dmr_target_mode(struct dm_target *ti);
void dmr_target_event(struct dm_target *ti);
const char *dmr_target_device_name(struct dm_target *ti);

void dmr_bio_record(struct dmr_bio_details *bd, struct bio *bio);
void dmr_bio_restore(const struct dmr_bio_details *bd, struct bio *bio);
void dmr_bio_copy_from(struct bio *bio, const struct bvec_iter *iter, unsigned int skip,
		       void *buf, unsigned int len);
void dmr_bio_copy_to(struct bio *bio, const struct bvec_iter *iter, unsigned int skip,
		     const void *buf, unsigned int len);
void dmr_bio_endio(struct bio *bio, u8 status);

int dmr_io_sync(struct dm_io_client *client, struct block_device *bdev, sector_t sector,
		sector_t count, blk_opf_t opf, void *buf);

int dmr_io_sync_regions(struct dm_io_client *client, struct block_device *bdev,
			const sector_t *sectors, unsigned int n, sector_t count, blk_opf_t opf,
			void *buf, unsigned long *error_bits);
u32 dmr_crc32c(const void *p, size_t len);

void dmr_mt_init(struct maple_tree *mt);
void dmr_mt_destroy(struct maple_tree *mt);

int dmr_srcu_init(struct srcu_struct *ssp);
struct srcu_ctr __percpu *dmr_srcu_down_read(struct srcu_struct *ssp);
void dmr_srcu_up_read(struct srcu_struct *ssp, struct srcu_ctr __percpu *scp);

unsigned int dmr_memalloc_noio_save(void);
void dmr_memalloc_noio_restore(unsigned int flags);

struct workqueue_struct *dmr_alloc_ordered_workqueue(const char *name);
void dmr_flush_workqueue(struct workqueue_struct *wq);

#endif /* DM_REMAP_HELPERS_H */
