// SPDX-License-Identifier: GPL-2.0

#include <linux/workqueue.h>

struct workqueue_struct *dmr_alloc_ordered_workqueue(const char *name)
{
	return alloc_ordered_workqueue("%s", WQ_MEM_RECLAIM, name);
}

struct workqueue_struct *dmr_alloc_unbound_workqueue(const char *name, int max_active)
{
	return alloc_workqueue("%s", WQ_UNBOUND, max_active, name);
}

void dmr_flush_workqueue(struct workqueue_struct *wq)
{
	flush_workqueue(wq);
}

void dmr_init_delayed_work(struct delayed_work *dwork, work_func_t fn)
{
	INIT_DELAYED_WORK(dwork, fn);
}
