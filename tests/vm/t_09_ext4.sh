# mkfs.ext4 on a remap device, files written and read back, e2fsck -f clean.
load_module
main=$(make_disk main 128)
spare=$(make_disk spare 8)
dmsetup create r0 --table "0 $(sectors "$main") remap $main $spare 0 2048"
mkfs.ext4 -q -F /dev/mapper/r0
mkdir -p /mnt/r0
mount -t ext4 /dev/mapper/r0 /mnt/r0
for i in 1 2 3 4; do
	dd if=/dev/urandom of="/tmp/dmr-f$i" bs=64k count=$((i * 8)) 2>/dev/null
	cp "/tmp/dmr-f$i" "/mnt/r0/f$i"
done
umount /mnt/r0
e2fsck -f -n /dev/mapper/r0
mount -t ext4 -o ro /dev/mapper/r0 /mnt/r0
for i in 1 2 3 4; do
	cmp "/tmp/dmr-f$i" "/mnt/r0/f$i" || fail "f$i differs after remount"
done
umount /mnt/r0
dmsetup remove r0
