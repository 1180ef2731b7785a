// SPDX-License-Identifier: GPL-2.0

#include <linux/bio.h>
#include <linux/bvec.h>

void dmr_bio_set_dev(struct bio *bio, struct block_device *bdev)
{
	bio_set_dev(bio, bdev);
}

struct bio_vec dmr_bio_iter_iovec(struct bio *bio, const struct bvec_iter *iter)
{
	return bio_iter_iovec(bio, *iter);
}

void dmr_bio_advance_iter(const struct bio *bio, struct bvec_iter *iter, unsigned int bytes)
{
	bio_advance_iter(bio, iter, bytes);
}

void dmr_bio_advance_iter_single(const struct bio *bio, struct bvec_iter *iter,
				 unsigned int bytes)
{
	bio_advance_iter_single(bio, iter, bytes);
}

void dmr_memcpy_from_bvec(char *to, struct bio_vec *bvec)
{
	memcpy_from_bvec(to, bvec);
}

void dmr_memcpy_to_bvec(struct bio_vec *bvec, const char *from)
{
	memcpy_to_bvec(bvec, from);
}
