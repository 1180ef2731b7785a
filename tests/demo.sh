#!/bin/sh
# Guest side of scripts/demo: a remap device over two loop devices, used like a disk.
set -e
run() {
	echo "# $*"
	"$@"
}
dd if=/dev/zero of=/tmp/main.img bs=1M count=0 seek=256 2>/dev/null
dd if=/dev/zero of=/tmp/spare.img bs=1M count=0 seek=32 2>/dev/null
run losetup /dev/loop0 /tmp/main.img
run losetup /dev/loop1 /tmp/spare.img
run insmod "$DMR_MODULE"
run dmsetup targets
len=$(blockdev --getsz /dev/loop0)
echo "# echo \"0 $len remap /dev/loop0 /dev/loop1 0 65536\" | dmsetup create demo"
echo "0 $len remap /dev/loop0 /dev/loop1 0 65536" | dmsetup create demo
run dmsetup table demo
run dmsetup status demo
run dmsetup message demo 0 help
echo "# write 4 MiB of random data through /dev/mapper/demo and compare with the main device"
dd if=/dev/urandom of=/tmp/data bs=1M count=4 2>/dev/null
dd if=/tmp/data of=/dev/mapper/demo bs=1M oflag=direct 2>/dev/null
dd if=/dev/loop0 of=/tmp/back bs=1M count=4 iflag=direct 2>/dev/null
run cmp /tmp/data /tmp/back && echo "identical"
run mkfs.ext4 -q -F /dev/mapper/demo
mkdir -p /mnt/demo
run mount -t ext4 /dev/mapper/demo /mnt/demo
run cp /tmp/data /mnt/demo/file
run df -h /mnt/demo
run umount /mnt/demo
run e2fsck -f -n /dev/mapper/demo
echo "# a bad table line is refused with a reason in the kernel log"
echo "0 $len remap /dev/loop0 /dev/loop1 0 0" | dmsetup create bad 2>&1 || true
dmesg | grep 'remap:' | tail -n 1
run dmsetup remove demo
run rmmod dm_remap
echo "demo finished"
