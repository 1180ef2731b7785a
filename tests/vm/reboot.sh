#!/bin/sh
# Remaps survive a reboot: run once with "write", then in a new VM with "verify", with the
# same three disk images: /dev/vda main, /dev/vdb spare, /dev/vdc reference data. So does
# a running background scan, cut by the reboot without a clean removal: it goes on after
# it from the position it saved (every 30 s of scanning), not from block 0. A stress run
# going on at the reboot is stopped by it (run_tests.sh finds its end in the console log).
. /tests/vm/lib.sh
set -e
phase=$1
insmod "$DMR_MODULE"
len=$(sectors /dev/vda)
main=$(bad_main badmain /dev/vda 3 77 1000 4000)
table="0 $len remap $main /dev/vdb 0 $(sectors /dev/vdb)"
dmsetup create r0 --table "$table"
scan=/sys/kernel/dm_remap/r0/scanner
# Where a scan cut by the reboot goes on from (read before it moves).
pos_at_create=$(cat $scan/position)
state_at_create=$(cat $scan/state)
blocks=$((len / 8))
case "$phase" in
write)
	random_file /tmp/dmr-p "$blocks"
	dd if=/tmp/dmr-p of=/dev/mapper/r0 bs=64k oflag=direct 2>/dev/null
	dmsetup message r0 0 remap 12 >/dev/null
	dmsetup message r0 0 list >/tmp/dmr-list
	dd if=/tmp/dmr-p of=/dev/vdc bs=64k oflag=direct 2>/dev/null
	dd if=/tmp/dmr-list of=/dev/vdc bs=4096 seek="$blocks" conv=sync oflag=direct 2>/dev/null
	echo "remaps before reboot: $(wc -l </tmp/dmr-list)"
	dmsetup remove r0
	result PASS reboot:write
	# A scan at 1 MiB/s, running when the VM goes down (no removal): more than 30 s, so
	# its position was saved once at least.
	dmsetup create r0 --table "$table"
	echo 1024 >$scan/speed_max_kib_s
	echo start >$scan/control
	sleep 35
	# The cursor on disk now (saved after 30 s); the scan goes on (and saves again) until
	# the VM goes down.
	saved=$(dm-remap-tool dump /dev/vdb | awk '/^scanner position/ { print $3 }')
	echo "$saved" | dd of=/dev/vdc bs=4096 seek=$((blocks + 1)) conv=sync oflag=direct 2>/dev/null
	echo "scan position before the reboot: $(cat $scan/position), saved: $saved"
	[ "${saved:-0}" -gt 0 ] && result PASS reboot:scan-write || result FAIL reboot:scan-write
	# A read run of 10 minutes, going on when the VM reboots: the reboot stops it, and its
	# end goes to the console.
	echo 7 >/proc/sys/kernel/printk
	echo "1 4 600000 8" >/sys/kernel/dm_remap/r0/stress/stress_test_start
	sleep 1
	grep -q '^running' /sys/kernel/dm_remap/r0/stress/stress_test_status &&
		result PASS reboot:stress-running || result FAIL reboot:stress-running
	sync
	;;
verify)
	dd if=/dev/vdc of=/tmp/dmr-p bs=4096 count="$blocks" 2>/dev/null
	dd if=/dev/vdc bs=4096 skip="$blocks" count=1 2>/dev/null | tr -d '\000' >/tmp/dmr-list
	dmsetup message r0 0 list >/tmp/dmr-list2
	echo "remaps after reboot: $(wc -l </tmp/dmr-list2)"
	saved=$(dd if=/dev/vdc bs=4096 skip=$((blocks + 1)) count=1 2>/dev/null | tr -d '\000')
	echo "scan after reboot: $state_at_create from $pos_at_create (saved $saved before the reboot)"
	if [ "$state_at_create" = running ] && [ "$pos_at_create" -ge "$saved" ] &&
		[ "$saved" -gt 0 ]; then
		result PASS reboot:scan-resumes
	else
		result FAIL reboot:scan-resumes
	fi
	if [ "$(wc -l </tmp/dmr-list)" = 5 ] && cmp -s /tmp/dmr-list /tmp/dmr-list2 &&
		dd if=/dev/mapper/r0 bs=64k iflag=direct 2>/dev/null | cmp -s - /tmp/dmr-p; then
		result PASS reboot:verify
	else
		cat /tmp/dmr-list /tmp/dmr-list2
		result FAIL reboot:verify
	fi
	;;
esac
if check_kernel_log; then :; else result FAIL "reboot:$phase:kernel-log"; fi
