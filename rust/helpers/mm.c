// SPDX-License-Identifier: GPL-2.0

#include <linux/sched/mm.h>

unsigned int dmr_memalloc_noio_save(void)
{
	return memalloc_noio_save();
}

void dmr_memalloc_noio_restore(unsigned int flags)
{
	memalloc_noio_restore(flags);
}
