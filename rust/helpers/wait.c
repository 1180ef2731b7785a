// SPDX-License-Identifier: GPL-2.0

#include <linux/sched.h>
#include <linux/suspend.h>
#include <linux/wait_bit.h>

/* wait_var_event is a macro over its condition: here, until *var is 0. */
void dmr_wait_var_event_zero(int *var)
{
	wait_var_event(var, READ_ONCE(*var) == 0);
}

/* Until *var is below @below, for at most @timeout jiffies; the time left (0: timed out). */
long dmr_wait_var_below(int *var, int below, unsigned long timeout)
{
	return wait_var_event_timeout(var, READ_ONCE(*var) < below, timeout);
}

void dmr_cond_resched(void)
{
	cond_resched();
}

/* register_pm_notifier is an inline stub without CONFIG_PM_SLEEP. */
int dmr_register_pm_notifier(struct notifier_block *nb)
{
	return register_pm_notifier(nb);
}

int dmr_unregister_pm_notifier(struct notifier_block *nb)
{
	return unregister_pm_notifier(nb);
}
