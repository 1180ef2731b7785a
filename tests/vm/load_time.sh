#!/bin/sh
# Loads a table of many remaps written by the synth_table example (/dev/vda main,
# /dev/vdb spare) and reports how long the constructor takes.
. /tests/vm/lib.sh
set -e
want=$1
insmod "$DMR_MODULE"
len=$(sectors /dev/vda)
t0=$(cut -d' ' -f1 /proc/uptime)
dmsetup create r0 --table "0 $len remap /dev/vda /dev/vdb 0 $(sectors /dev/vdb)"
t1=$(cut -d' ' -f1 /proc/uptime)
got=$(dmsetup message r0 0 count | awk '{print $1}')
echo "loaded $got remaps in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", (b - a) * 1000 }') ms (guest clock, TCG); status $(dmsetup status r0)"
if [ "$got" = "$want" ] && [ "$(dmsetup message r0 0 query 2)" = "2 spare $(dmsetup message r0 0 list 2 1 | awk '{print $3}')" ]; then
	result PASS "load:$want-remaps"
else
	result FAIL "load:$want-remaps" "got $got"
fi
# One more remap: the commit writes one record per copy, whatever the table size.
b0=$(status_meta r0 3)
dmsetup message r0 0 remap 1 >/dev/null
per_commit=$(($(status_meta r0 3) - b0))
echo "metadata bytes for one commit with $got entries: $per_commit"
if [ "$per_commit" = $((5 * 512)) ]; then
	result PASS "load:commit-size-$want"
else
	result FAIL "load:commit-size-$want" "$per_commit bytes"
fi
dmsetup remove r0
check_kernel_log || result FAIL "load:kernel-log"
