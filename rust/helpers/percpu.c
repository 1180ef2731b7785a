// SPDX-License-Identifier: GPL-2.0

#include <linux/cpumask.h>
#include <linux/percpu.h>

/* __alloc_percpu is a macro (it wraps pcpu_alloc_noprof in the allocation profiling hooks). */
void __percpu *dmr_alloc_percpu(size_t size, size_t align)
{
	return __alloc_percpu(size, align);
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
