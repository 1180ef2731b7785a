// SPDX-License-Identifier: GPL-2.0

#include <linux/bio.h>
#include <linux/bvec.h>

void dmr_bio_set_dev(struct bio *bio, struct block_device *bdev)
{
	bio_set_dev(bio, bdev);
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
