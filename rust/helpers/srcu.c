// SPDX-License-Identifier: GPL-2.0

#include <linux/srcu.h>

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
