// SPDX-License-Identifier: GPL-2.0

#include <linux/cpumask.h>
#include <linux/percpu.h>

/* __alloc_percpu is a macro (it wraps pcpu_alloc_noprof in the allocation profiling hooks). */
void __percpu *dmr_alloc_percpu(size_t size, size_t align)
{
	return __alloc_percpu(size, align);
}

void dmr_this_cpu_add_u64(u64 __percpu *p, size_t i, u64 v)
{
	this_cpu_add(p[i], v);
}

u64 dmr_this_cpu_inc_return_u64(u64 __percpu *p, size_t i)
{
	return this_cpu_inc_return(p[i]);
}

u64 dmr_this_cpu_read_u64(u64 __percpu *p, size_t i)
{
	return this_cpu_read(p[i]);
}

u64 dmr_this_cpu_cmpxchg_u64(u64 __percpu *p, size_t i, u64 old, u64 new)
{
	return this_cpu_cmpxchg(p[i], old, new);
}

u64 *dmr_per_cpu_ptr(u64 __percpu *p, unsigned int cpu)
{
	return per_cpu_ptr(p, cpu);
}

unsigned int dmr_cpumask_next_possible(int n)
{
	return cpumask_next(n, cpu_possible_mask);
}
