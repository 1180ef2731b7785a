// SPDX-License-Identifier: GPL-2.0

#include <linux/dm-io.h>
#include <linux/mm.h>

/* Synchronous I/O of count sectors between buf (kmalloc or vmalloc memory) and bdev. */
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
