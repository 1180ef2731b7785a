// SPDX-License-Identifier: GPL-2.0

#include <linux/wait_bit.h>

/* wait_var_event is a macro over its condition: here, until *var is 0. */
void dmr_wait_var_event_zero(int *var)
{
	wait_var_event(var, READ_ONCE(*var) == 0);
}
