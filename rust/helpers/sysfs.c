// SPDX-License-Identifier: GPL-2.0

#include <linux/sysfs.h>

/* Attributes built at run time need a lockdep key (a no-op without lockdep). */
void dmr_attr_init(struct attribute *attr)
{
	sysfs_attr_init(attr);
}
