#!/bin/sh
# Guest side of scripts/demo: a remap device whose main disk has failing blocks, used like
# a disk; the failing blocks are moved to the spare, and the table survives re-creation.
set -e
run() {
	echo "# $*"
	"$@"
}
dd if=/dev/zero of=/tmp/main.img bs=1M count=0 seek=256 2>/dev/null
dd if=/dev/zero of=/tmp/spare.img bs=1M count=0 seek=32 2>/dev/null
run losetup /dev/loop0 /tmp/main.img
run losetup /dev/loop1 /tmp/spare.img
echo "# make 4 KiB blocks 1000 and 5000 of the main disk fail (dm-error segments)"
cat >/tmp/main.table <<TABLE
0 8000 linear /dev/loop0 0
8000 8 error
8008 31992 linear /dev/loop0 8008
40000 8 error
40008 484280 linear /dev/loop0 40008
TABLE
dmsetup create failing /tmp/main.table
run insmod "$DMR_MODULE"
len=$(blockdev --getsz /dev/mapper/failing)
table="0 $len remap /dev/mapper/failing /dev/loop1 0 65536"
echo "# echo \"$table\" | dmsetup create demo"
echo "$table" | dmsetup create demo
run dmsetup table demo
run dmsetup status demo
echo "# reading failing block 1000 before it was ever written: an error, not made-up data"
dd if=/dev/mapper/demo of=/dev/null bs=4096 skip=1000 count=1 iflag=direct 2>&1 | tail -n 1 || true
echo "# write 32 MiB of random data through /dev/mapper/demo (covers both failing blocks)"
dd if=/dev/urandom of=/tmp/data bs=1M count=32 2>/dev/null
run dd if=/tmp/data of=/dev/mapper/demo bs=1M oflag=direct
dd if=/dev/mapper/demo of=/tmp/back bs=1M count=32 iflag=direct 2>/dev/null
run cmp /tmp/data /tmp/back && echo "read back: identical"
run dmsetup status demo
run dmsetup message demo 0 list
echo "# the table is on the spare disk: remove the device and create it again"
run dmsetup remove demo
echo "$table" | dmsetup create demo
run dmsetup message demo 0 list
dd if=/dev/mapper/demo of=/tmp/back bs=1M count=32 iflag=direct 2>/dev/null
run cmp /tmp/data /tmp/back && echo "read back after re-creation: identical"
run mkfs.ext4 -q -F /dev/mapper/demo
mkdir -p /mnt/demo
run mount -t ext4 /dev/mapper/demo /mnt/demo
run cp /tmp/data /mnt/demo/file
run umount /mnt/demo
run e2fsck -f -n /dev/mapper/demo
run dmsetup message demo 0 help
echo "# what dm-remap measured (/sys/kernel/dm_remap, docs/ABI/sysfs-kernel-dm_remap)"
run ls /sys/kernel/dm_remap /sys/kernel/dm_remap/demo
run cat /sys/kernel/dm_remap/demo/stats/summary
run cat /sys/kernel/dm_remap/demo/remaps/remapped /sys/kernel/dm_remap/demo/metadata/sequence
echo "# baseline, then 2 ms more latency from dm-delay under the device: a regression"
echo 1 >/sys/kernel/dm_remap/demo/stats/window_secs
dd if=/dev/mapper/demo of=/dev/null bs=4k count=60000 iflag=direct 2>/dev/null &
reader=$!
sleep 3
run sh -c 'echo 1 >/sys/kernel/dm_remap/demo/baseline/capture'
kill $reader
wait $reader 2>/dev/null || true
dmsetup suspend failing
sed 's/linear \/dev\/loop0 \([0-9]*\)$/delay \/dev\/loop0 \1 2/' /tmp/main.table | dmsetup reload failing
dmsetup resume failing
dd if=/dev/mapper/demo of=/dev/null bs=4k count=60000 iflag=direct 2>/dev/null &
reader=$!
sleep 3
run cat /sys/kernel/dm_remap/demo/baseline/comparison
run cat /sys/kernel/dm_remap/demo/baseline/regression
kill $reader
wait $reader 2>/dev/null || true
echo "# block 60000 of the main disk goes bad behind dm-remap's back; a background scan finds it"
sed 's|^40008 484280 linear /dev/loop0 40008$|40008 439992 linear /dev/loop0 40008\n480000 8 error\n480008 44280 linear /dev/loop0 480008|' \
	/tmp/main.table >/tmp/main2.table
dmsetup suspend failing
dmsetup reload failing /tmp/main2.table
dmsetup resume failing
run dmsetup message demo 0 scan start
i=0
while [ "$(cat /sys/kernel/dm_remap/demo/scanner/passes)" = 0 ] && [ "$i" -lt 300 ]; do
	i=$((i + 1))
	sleep 1
done
run cat /sys/kernel/dm_remap/demo/scanner/unreadable
run dmsetup message demo 0 query 60000
run dmsetup status demo
echo "# a write to the failing block remaps it; then the in-kernel stress engine checks the device"
dd if=/dev/zero of=/dev/mapper/demo bs=4k seek=60000 count=1 oflag=direct 2>/dev/null
run dmsetup message demo 0 query 60000
echo 1 >/sys/kernel/dm_remap/demo/stress/allow_writes
run sh -c 'echo "4 8 5000 16" >/sys/kernel/dm_remap/demo/stress/stress_test_start'
while grep -q '^running' /sys/kernel/dm_remap/demo/stress/stress_test_status; do sleep 1; done
run cat /sys/kernel/dm_remap/demo/stress/stress_test_status
grep -E '^(type_name|workers|queue_depth|ios|reads|writes|read_iops|write_iops|latency_p99_ns|errors|verify_mismatches|verified_blocks)' \
	/sys/kernel/dm_remap/demo/stress/stress_test_results
dmesg | grep 'stress run' | tail -n 2
echo "# a bad table line is refused with a reason in the kernel log"
echo "0 $len remap /dev/mapper/failing /dev/loop1 0 0" | dmsetup create bad 2>&1 || true
dmesg | grep 'remap:' | tail -n 1
run dmsetup remove demo
run rmmod dm_remap
echo "demo finished"
