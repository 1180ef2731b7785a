// SPDX-License-Identifier: GPL-2.0

#include <linux/device-mapper.h>

blk_mode_t dmr_target_mode(struct dm_target *ti)
{
	return dm_table_get_mode(ti->table);
}

void dmr_target_event(struct dm_target *ti)
{
	dm_table_event(ti->table);
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
