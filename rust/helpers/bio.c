// SPDX-License-Identifier: GPL-2.0

#include <linux/bio.h>
#include <linux/bvec.h>

void dmr_bio_set_dev(struct bio *bio, struct block_device *bdev)
{
	bio_set_dev(bio, bdev);
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
