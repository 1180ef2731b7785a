// SPDX-License-Identifier: GPL-2.0

#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>

unsigned int dmr_memalloc_noio_save(void)
{
	return memalloc_noio_save();
}

void dmr_memalloc_noio_restore(unsigned int flags)
{
	memalloc_noio_restore(flags);
}

/* One page, without hard reclaim and without invoking the OOM killer. */
struct page *dmr_alloc_page_noretry(void)
{
	return alloc_page(GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN);
}

/* totalram_pages() is inline. */
unsigned long dmr_totalram_pages(void)
{
	return totalram_pages();
}
