// SPDX-License-Identifier: GPL-2.0

#include <linux/maple_tree.h>

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
