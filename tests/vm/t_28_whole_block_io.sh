# The block size is the device's logical block size, so no bio can start or end inside a
# block: a write never needs the rest of a block that cannot be read (docs/design.md,
# "Whole-block I/O"). Smaller direct I/O is refused by the block layer; 512-byte blocks
# keep 512-byte sectors; a target that does not start on a block boundary is refused.
load_module
main=$(make_disk main 16)
spare=$(make_disk spare 8)
len=$(sectors "$main")
slen=$(sectors "$spare")
for bs in 512 4096 8192; do
	dmsetup create r0 --table "0 $len remap $main $spare 0 $slen 3 block_size $bs format"
	[ "$(blockdev --getss /dev/mapper/r0)" = "$bs" ] ||
		fail "block_size $bs: logical block size $(blockdev --getss /dev/mapper/r0)"
	dd if=/dev/urandom of=/tmp/dmr-p bs="$bs" count=3 2>/dev/null
	dd if=/tmp/dmr-p of=/dev/mapper/r0 bs="$bs" seek=5 oflag=direct 2>/dev/null ||
		fail "block_size $bs: aligned direct write failed"
	dd if=/dev/mapper/r0 of=/tmp/dmr-got bs="$bs" skip=5 count=3 iflag=direct 2>/dev/null
	cmp /tmp/dmr-p /tmp/dmr-got || fail "block_size $bs: data differs"
	if [ "$bs" -gt 512 ]; then
		err=$(io_error /dev/mapper/r0 write 512 512)
		[ "$err" = "Invalid argument" ] || fail "block_size $bs: 512-byte direct write: $err"
		err=$(io_error /dev/mapper/r0 read 512 512)
		[ "$err" = "Invalid argument" ] || fail "block_size $bs: 512-byte direct read: $err"
	fi
	dmsetup remove r0
done
# A remap target after an 8-sector linear target: not on a 4 KiB boundary is refused...
klog_mark
expect_fail dmsetup create r0 --table "0 8 linear $spare 0
8 $((len - 16)) remap $main $spare 16 $((slen - 16)) 2 block_size 8192"
klog_since | grep -q 'remap: Target start is not a multiple of the block size' ||
	fail "misaligned target start not reported: $(klog_since)"
# ... on one it works.
dmsetup create r0 --table "0 8 linear $spare 0
8 $((len - 8)) remap $main $spare 16 $((slen - 16)) 1 format"
[ "$(blockdev --getss /dev/mapper/r0)" = 4096 ] || fail "mixed table: logical block size"
dmsetup remove r0
