/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Prototypes of the forwarders in rust/helpers/ (see helpers.c): out-of-line versions of
 * static inline functions and macros for dm-remap's Rust code. bindgen reads this file
 * through rust/bindings.h.
 */
#ifndef DM_REMAP_HELPERS_H
#define DM_REMAP_HELPERS_H

#include <linux/types.h>
#include <linux/blk_types.h>
#include <linux/bvec.h>
#include <linux/workqueue_types.h>

struct bio;
struct block_device;
struct maple_tree;
struct srcu_struct;
struct srcu_ctr;
struct workqueue_struct;
struct delayed_work;
struct attribute;

void dmr_bio_set_dev(struct bio *bio, struct block_device *bdev);
sector_t dmr_bdev_nr_sectors(struct block_device *bdev);
unsigned int dmr_bdev_logical_block_size(struct block_device *bdev);
struct mapped_device;
struct block_device *dmr_dm_disk_part0(struct mapped_device *md);
unsigned long dmr_part_stat_sectors(struct block_device *part);
unsigned long dmr_part_stat_write_sectors(struct block_device *part);
struct block_device *dmr_bdev_whole(struct block_device *bdev);
unsigned int dmr_disk_openers(struct mapped_device *md);
struct dm_table;
bool dmr_dm_disk_dead(struct mapped_device *md);
bool dmr_dm_writable(struct mapped_device *md, struct dm_table *t);

struct bio_vec dmr_bio_iter_iovec(struct bio *bio, const struct bvec_iter *iter);
void dmr_bio_advance_iter(const struct bio *bio, struct bvec_iter *iter, unsigned int bytes);
void dmr_bio_advance_iter_single(const struct bio *bio, struct bvec_iter *iter,
				 unsigned int bytes);
void dmr_memcpy_from_bvec(char *to, struct bio_vec *bvec);
void dmr_memcpy_to_bvec(struct bio_vec *bvec, const char *from);

void dmr_mt_init_flags(struct maple_tree *mt, unsigned int flags);
void dmr_mt_set_in_rcu(struct maple_tree *mt);
void dmr_mt_clear_in_rcu(struct maple_tree *mt);

int dmr_srcu_init(struct srcu_struct *ssp);
struct srcu_ctr __percpu *dmr_srcu_down_read(struct srcu_struct *ssp);
void dmr_srcu_up_read(struct srcu_struct *ssp, struct srcu_ctr __percpu *scp);

unsigned int dmr_memalloc_noio_save(void);
void dmr_memalloc_noio_restore(unsigned int flags);
struct page;
struct page *dmr_alloc_page_noretry(void);
unsigned long dmr_totalram_pages(void);

struct workqueue_struct *dmr_alloc_ordered_workqueue(const char *name);
struct workqueue_struct *dmr_alloc_unbound_workqueue(const char *name, int max_active);
void dmr_flush_workqueue(struct workqueue_struct *wq);
void dmr_init_delayed_work(struct delayed_work *dwork, work_func_t fn);

/*
 * Per-CPU arrays of u64 slots. Updates are this_cpu operations: one instruction on x86,
 * safe against preemption and interrupts on the same CPU (end_io may run in hard
 * interrupt context), with no shared cache line.
 */
void __percpu *dmr_alloc_percpu(size_t size, size_t align);
void dmr_this_cpu_add_u64(u64 __percpu *p, size_t i, u64 v);
u64 dmr_this_cpu_inc_return_u64(u64 __percpu *p, size_t i);
u64 dmr_this_cpu_read_u64(u64 __percpu *p, size_t i);
u64 dmr_this_cpu_cmpxchg_u64(u64 __percpu *p, size_t i, u64 old, u64 new);
u64 *dmr_per_cpu_ptr(u64 __percpu *p, unsigned int cpu);
unsigned int dmr_cpumask_next_possible(int n);

void dmr_attr_init(struct attribute *attr);

void dmr_wait_var_event_zero(int *var);
long dmr_wait_var_below(int *var, int below, unsigned long timeout);
void dmr_cond_resched(void);
struct notifier_block;
int dmr_register_pm_notifier(struct notifier_block *nb);
int dmr_unregister_pm_notifier(struct notifier_block *nb);

#endif /* DM_REMAP_HELPERS_H */
