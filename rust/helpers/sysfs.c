// SPDX-License-Identifier: GPL-2.0

#include <linux/kobject.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/wait.h>

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
