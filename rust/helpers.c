// SPDX-License-Identifier: GPL-2.0
/*
 * C code for the Rust side: out-of-line forwarders of static inline functions and macros,
 * and, until they move to Rust (issue 13), the kobject type, the ticker, the dm-io request
 * builders, the bio copy loops and the per-CPU max loop. See helpers.h.
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/device-mapper.h>
#include <linux/dm-io.h>
#include <linux/maple_tree.h>
#include <linux/kobject.h>
#include <linux/mm.h>
#include <linux/percpu.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/wait.h>
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

void dmr_mt_set_in_rcu(struct maple_tree *mt, bool on)
{
	if (on)
		mt_set_in_rcu(mt);
	else
		mt_clear_in_rcu(mt);
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

/* The dm device's name (as dmsetup shows it) into name[DMR_NAME_LEN]. */
int dmr_target_name(struct dm_target *ti, char *name)
{
	return dm_copy_name_and_uuid(dm_table_get_md(ti->table), name, NULL);
}

struct mapped_device *dmr_target_md(struct dm_target *ti)
{
	return dm_table_get_md(ti->table);
}

u64 __percpu *dmr_percpu_alloc(size_t slots)
{
	return __alloc_percpu_gfp(slots * sizeof(u64), sizeof(u64), GFP_KERNEL);
}

void dmr_percpu_free(u64 __percpu *p)
{
	free_percpu(p);
}

void dmr_percpu_add(u64 __percpu *p, size_t i, u64 v)
{
	this_cpu_add(p[i], v);
}

u64 dmr_percpu_inc_return(u64 __percpu *p, size_t i)
{
	return this_cpu_inc_return(p[i]);
}

void dmr_percpu_max(u64 __percpu *p, size_t i, u64 v)
{
	u64 old = this_cpu_read(p[i]);

	/* this_cpu_cmpxchg is interrupt-safe; a retry only follows a local interrupt. */
	while (v > old) {
		u64 prev = this_cpu_cmpxchg(p[i], old, v);

		if (prev == old)
			break;
		old = prev;
	}
}

const u64 *dmr_percpu_cpu_ptr(u64 __percpu *p, unsigned int cpu)
{
	return per_cpu_ptr(p, cpu);
}

/* A store into another CPU's slot (maxima at reset); it may lose a racing update. */
void dmr_percpu_write(u64 __percpu *p, unsigned int cpu, size_t i, u64 v)
{
	WRITE_ONCE(per_cpu_ptr(p, cpu)[i], v);
}

/* The next possible CPU after prev (-1 for the first); -1 after the last. */
int dmr_next_possible_cpu(int prev)
{
	unsigned int cpu = cpumask_next(prev, cpu_possible_mask);

	return cpu < nr_cpu_ids ? cpu : -1;
}

struct dmr_kobj {
	struct kobject kobj;
	const void *data;
	dmr_show_fn show;
	dmr_store_fn store;
	dmr_release_fn release;
};

static ssize_t dmr_kobj_show(struct kobject *kobj, struct attribute *attr, char *buf)
{
	struct dmr_kobj *k = container_of(kobj, struct dmr_kobj, kobj);

	return k->show(k->data, container_of(attr, struct dmr_attribute, attr)->id, buf);
}

static ssize_t dmr_kobj_store(struct kobject *kobj, struct attribute *attr, const char *buf,
			      size_t len)
{
	struct dmr_kobj *k = container_of(kobj, struct dmr_kobj, kobj);

	return k->store(k->data, container_of(attr, struct dmr_attribute, attr)->id, buf, len);
}

static const struct sysfs_ops dmr_sysfs_ops = {
	.show = dmr_kobj_show,
	.store = dmr_kobj_store,
};

/*
 * Kobjects not released yet. A release may come after the directory is removed (with
 * CONFIG_DEBUG_KOBJECT_RELEASE always, seconds later); it runs this module's code, so
 * module exit waits for the last one (dmr_kobj_wait_released).
 */
static atomic_t dmr_kobjs_live = ATOMIC_INIT(0);
static DECLARE_WAIT_QUEUE_HEAD(dmr_kobjs_released);

static void dmr_kobj_release(struct kobject *kobj)
{
	struct dmr_kobj *k = container_of(kobj, struct dmr_kobj, kobj);

	if (k->release)
		k->release(k->data);
	kfree(k);
	if (atomic_dec_and_test(&dmr_kobjs_live))
		wake_up_all(&dmr_kobjs_released);
}

/* Waits until every kobject made by dmr_kobj_create has been released. */
void dmr_kobj_wait_released(void)
{
	wait_event(dmr_kobjs_released, atomic_read(&dmr_kobjs_live) == 0);
}

static const struct kobj_type dmr_ktype = {
	.release = dmr_kobj_release,
	.sysfs_ops = &dmr_sysfs_ops,
};

/* Attributes built at run time need a lockdep key (a no-op without lockdep). */
void dmr_attr_init(struct attribute *attr)
{
	sysfs_attr_init(attr);
}

/*
 * Adds directory `name` under `parent` (NULL: /sys/kernel) with `groups`. On success the
 * kobject owns `data` (release gets it); on failure *err is set, NULL is returned and
 * `data` stays the caller's.
 */
struct dmr_kobj *dmr_kobj_create(struct dmr_kobj *parent, const char *name,
				 const struct attribute_group *const *groups, const void *data,
				 dmr_show_fn show, dmr_store_fn store, dmr_release_fn release,
				 int *err)
{
	struct dmr_kobj *k = kzalloc(sizeof(*k), GFP_KERNEL);
	int r;

	if (!k) {
		*err = -ENOMEM;
		return NULL;
	}
	k->data = data;
	k->show = show;
	k->store = store;
	atomic_inc(&dmr_kobjs_live);
	kobject_init(&k->kobj, &dmr_ktype);
	r = kobject_add(&k->kobj, parent ? &parent->kobj : kernel_kobj, "%s", name);
	if (!r) {
		r = sysfs_create_groups(&k->kobj, groups);
		if (r)
			kobject_del(&k->kobj);
	}
	if (r) {
		/* release is still NULL: only k is freed. */
		kobject_put(&k->kobj);
		*err = r;
		return NULL;
	}
	k->release = release;
	kobject_uevent(&k->kobj, KOBJ_ADD);
	return k;
}

/*
 * Removes the directory: once this returns no show or store runs any more (sysfs waits
 * for those in progress); open files then fail with ENODEV. The data is released with
 * the last reference.
 */
void dmr_kobj_remove(struct dmr_kobj *k)
{
	kobject_uevent(&k->kobj, KOBJ_REMOVE);
	kobject_del(&k->kobj);
	kobject_put(&k->kobj);
}

int dmr_kobj_rename(struct dmr_kobj *k, const char *name)
{
	return kobject_rename(&k->kobj, name);
}

/* Wakes poll()ers of attribute `attr` in subdirectory `dir` (NULL: the directory itself). */
void dmr_kobj_notify(struct dmr_kobj *k, const char *dir, const char *attr)
{
	sysfs_notify(&k->kobj, dir, attr);
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
