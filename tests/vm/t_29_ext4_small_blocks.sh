# The issue's ext4 scenario: a 256 MiB main device whose every 197th 4 KiB block from 100
# fails (300 blocks, dm-dust: reads fail, writes fail 255 times), 64 MiB spare. With 512-byte
# sectors mke2fs chose 1 KiB blocks here and bios ended inside failing 4 KiB blocks: one file
# lost every run. Now the device has 4 KiB sectors; 40 files of 5 MiB written, unmounted,
# caches dropped, remounted: every checksum matches and fsck is clean.
load_module
disk=$(make_disk disk 256)
spare=$(make_disk spare 64)
len=$(sectors "$disk")
echo "0 $len dust $disk 0 4096" | dmsetup create dust
b=100
n=0
while [ "$n" -lt 300 ]; do
	dmsetup message dust 0 addbadblock "$b" 255 >/dev/null
	b=$((b + 197))
	n=$((n + 1))
done
dmsetup message dust 0 quiet >/dev/null
dmsetup message dust 0 enable >/dev/null
dmsetup create r0 --table "0 $len remap /dev/mapper/dust $spare 0 $(sectors "$spare")"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0,nodiscard /dev/mapper/r0 ||
	fail "mkfs.ext4 failed"
dumpe2fs_bs=$(blockdev --getss /dev/mapper/r0)
echo "device logical block size $dumpe2fs_bs"
mkdir -p /mnt
mount -t ext4 /dev/mapper/r0 /mnt
: >/tmp/dmr-sums
i=0
while [ "$i" -lt 40 ]; do
	dd if=/dev/urandom of=/tmp/dmr-src bs=1M count=5 2>/dev/null
	echo "$(md5sum </tmp/dmr-src | cut -d' ' -f1) f$i" >>/tmp/dmr-sums
	dd if=/tmp/dmr-src of=/mnt/f$i bs=64k 2>/dev/null || fail "writing file $i failed"
	i=$((i + 1))
done
rm -f /tmp/dmr-src
umount /mnt
echo 3 >/proc/sys/vm/drop_caches
mount -t ext4 /dev/mapper/r0 /mnt
while read -r sum f; do
	[ "$(md5sum </mnt/$f | cut -d' ' -f1)" = "$sum" ] || fail "file $f differs after remount"
done </tmp/dmr-sums
umount /mnt
e2fsck -fn /dev/mapper/r0 >/tmp/dmr-fsck.out 2>&1 || { cat /tmp/dmr-fsck.out; fail "fsck found errors"; }
echo "status: $(dmsetup status r0)"
[ "$(status_field r0 5)" -gt 0 ] || fail "no block was remapped: $(dmsetup status r0)"
klog_since_start=$(dmesg | grep -c 'I/O error' || true)
[ "$klog_since_start" = 0 ] || { dmesg | grep 'I/O error' | head; fail "I/O errors reached ext4"; }
dmsetup remove r0
dmsetup remove dust
