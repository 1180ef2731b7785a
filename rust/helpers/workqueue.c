// SPDX-License-Identifier: GPL-2.0

#include <linux/slab.h>
#include <linux/workqueue.h>

struct workqueue_struct *dmr_alloc_ordered_workqueue(const char *name)
{
	return alloc_ordered_workqueue("%s", WQ_MEM_RECLAIM, name);
}

void dmr_flush_workqueue(struct workqueue_struct *wq)
{
	flush_workqueue(wq);
}

struct dmr_ticker {
	struct delayed_work work;
	void (*fn)(const void *data);
	const void *data;
	unsigned long period;
};

static void dmr_ticker_run(struct work_struct *w)
{
	struct dmr_ticker *t = container_of(to_delayed_work(w), struct dmr_ticker, work);

	t->fn(t->data);
	queue_delayed_work(system_dfl_wq, &t->work, t->period);
}

struct dmr_ticker *dmr_ticker_start(void (*fn)(const void *data), const void *data,
				    unsigned int period_ms)
{
	struct dmr_ticker *t = kzalloc(sizeof(*t), GFP_KERNEL);

	if (!t)
		return NULL;
	t->fn = fn;
	t->data = data;
	t->period = msecs_to_jiffies(period_ms);
	INIT_DELAYED_WORK(&t->work, dmr_ticker_run);
	queue_delayed_work(system_dfl_wq, &t->work, t->period);
	return t;
}

/* Stops the ticker; once this returns fn is not running and will not run again. */
void dmr_ticker_stop(struct dmr_ticker *t)
{
	/* Also stops a work item that queues itself again. */
	cancel_delayed_work_sync(&t->work);
	kfree(t);
}
