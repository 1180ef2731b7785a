#!/bin/sh
# Remaps survive a reboot: run once with "write", then in a new VM with "verify", with the
# same three disk images: /dev/vda main, /dev/vdb spare, /dev/vdc reference data.
. /tests/vm/lib.sh
set -e
phase=$1
insmod "$DMR_MODULE"
len=$(sectors /dev/vda)
main=$(bad_main badmain /dev/vda 3 77 1000 4000)
table="0 $len remap $main /dev/vdb 0 $(sectors /dev/vdb)"
dmsetup create r0 --table "$table"
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
	;;
verify)
	dd if=/dev/vdc of=/tmp/dmr-p bs=4096 count="$blocks" 2>/dev/null
	dd if=/dev/vdc bs=4096 skip="$blocks" count=1 2>/dev/null | tr -d '\000' >/tmp/dmr-list
	dmsetup message r0 0 list >/tmp/dmr-list2
	echo "remaps after reboot: $(wc -l </tmp/dmr-list2)"
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
