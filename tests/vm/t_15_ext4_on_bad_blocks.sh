# mkfs.ext4 on a main device with 64 bad blocks succeeds; files written and read back
# match; e2fsck -f is clean.
load_module
disk=$(make_disk disk 128)
spare=$(make_disk spare 16)
len=$(sectors "$disk")
main=$(bad_main badmain "$disk" $(random_blocks 64 $((len / 8)) 7))
dmsetup create r0 --table "0 $len remap $main $spare 0 $(sectors "$spare")"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 /dev/mapper/r0
mkdir -p /mnt/r0
mount -t ext4 /dev/mapper/r0 /mnt/r0
for i in 1 2 3 4 5 6; do
	dd if=/dev/urandom of="/tmp/dmr-f$i" bs=64k count=$((i * 32)) 2>/dev/null
	cp "/tmp/dmr-f$i" "/mnt/r0/f$i"
done
sync
umount /mnt/r0
e2fsck -f -n /dev/mapper/r0
mount -t ext4 -o ro /dev/mapper/r0 /mnt/r0
for i in 1 2 3 4 5 6; do
	cmp "/tmp/dmr-f$i" "/mnt/r0/f$i" || fail "f$i differs after remount"
done
umount /mnt/r0
echo "status: $(dmsetup status r0)"
dmsetup remove r0
dmsetup remove badmain
