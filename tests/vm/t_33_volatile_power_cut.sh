# Power cuts with volatile write caches on both devices: null_blk devices with
# memory_backed, cache_size and power (powering off drops what was not flushed).
# 1. FUA writes (asynchronous O_DIRECT|O_DSYNC, so no flush follows them) to failing blocks
#    of the main device, which are remapped, and to healthy ones: after the cut every
#    acknowledged FUA write reads back, although nothing was flushed.
# 2. ext4 with fsync while blocks fail and get remapped: after the cut, power on and
#    re-create, every fsynced file is intact and fsck is clean.
load_module
mkdir -p /mnt
main=$(nullb_create nb_m 128 memory_backed=1 cache_size=64)
spare=$(nullb_create nb_s 32 memory_backed=1 cache_size=32)
len=$(sectors "$main")
table() { echo "0 $len remap $1 $2 0 $(sectors "$2")"; }
dmsetup create r0 --table "$(table "$main" "$spare")"
bad="11 12 500 501 502 7000 20000 31000"
for b in $bad; do
	nullb_badblocks nb_m "$b" "$b"
done
for b in $bad 13 600 8000; do
	fua_write /dev/mapper/r0 "$b" $((b % 251 + 1))
	byte_block /tmp/dmr-b$b $((b % 251 + 1))
done
[ "$(status_field r0 5)" = 8 ] || fail "want 8 remaps: $(dmsetup status r0)"
nullb_power nb_m 0
nullb_power nb_s 0
dmsetup remove r0
main=$(nullb_power nb_m 1)
spare=$(nullb_power nb_s 1)
dmsetup create r0 --table "$(table "$main" "$spare")"
for b in $bad 13 600 8000; do
	block_of /dev/mapper/r0 "$b"
	cmp -s /tmp/dmr-blk /tmp/dmr-b$b || fail "acknowledged FUA write to block $b lost"
done
result PASS volatile_power_cut:fua_writes

# ext4: more failing blocks spread over the device, files written and fsynced.
for b in 1000 1001 1002 4000 9000 9001 15000 15500 16000 24000 24001 28000; do
	nullb_badblocks nb_m "$b" "$b"
done
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0,nodiscard /dev/mapper/r0 ||
	fail "mkfs.ext4 failed"
mount -t ext4 /dev/mapper/r0 /mnt
: >/tmp/dmr-sums
i=0
while [ "$i" -lt 24 ]; do
	dd if=/dev/urandom of=/tmp/dmr-src bs=256k count=$((1 + i % 8)) 2>/dev/null
	dd if=/tmp/dmr-src of=/mnt/f$i bs=64k conv=fsync 2>/dev/null || fail "writing file $i failed"
	echo "$(md5sum </tmp/dmr-src | cut -d' ' -f1) f$i" >>/tmp/dmr-sums
	i=$((i + 1))
done
sync
# Unsynced data after the last fsync may be lost; it is not checked.
dd if=/dev/urandom of=/mnt/unsynced bs=64k count=16 2>/dev/null
echo "remaps before the cut: $(dmsetup status r0)"
nullb_power nb_m 0
nullb_power nb_s 0
umount /mnt 2>/dev/null || umount -l /mnt
dmsetup remove r0
main=$(nullb_power nb_m 1)
spare=$(nullb_power nb_s 1)
dmsetup create r0 --table "$(table "$main" "$spare")"
mount -t ext4 /dev/mapper/r0 /mnt || fail "ext4 does not mount after the power cut"
while read -r sum f; do
	[ "$(md5sum </mnt/$f | cut -d' ' -f1)" = "$sum" ] || fail "fsynced file $f differs after the power cut"
done </tmp/dmr-sums
umount /mnt
e2fsck -fn /dev/mapper/r0 >/tmp/dmr-fsck.out 2>&1 || { cat /tmp/dmr-fsck.out; fail "fsck found errors"; }
result PASS volatile_power_cut:ext4_fsync
dmsetup remove r0
