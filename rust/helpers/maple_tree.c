// SPDX-License-Identifier: GPL-2.0

#include <linux/maple_tree.h>

void dmr_mt_init_flags(struct maple_tree *mt, unsigned int flags)
{
	mt_init_flags(mt, flags);
}

void dmr_mt_set_in_rcu(struct maple_tree *mt)
{
	mt_set_in_rcu(mt);
}

void dmr_mt_clear_in_rcu(struct maple_tree *mt)
{
	mt_clear_in_rcu(mt);
}
