# Writes to 200 failing blocks of the main device all succeed: each block is remapped
# exactly once, the whole device reads back, and the spare holds those blocks. An
# unreadable block that was never rewritten returns EIO, not zeroes.
load_module
disk=$(make_disk disk 64)
spare=$(make_disk spare 16)
len=$(sectors "$disk")
blocks=$((len / 8))
bad=$(awk -v n="$blocks" 'BEGIN { srand(42); while (c < 200) { b = int(rand() * (n - 2)) + 1; if (!(b in s)) { s[b] = 1; c++; print b } } }')
set -- $bad
nbad=$#
[ "$nbad" = 200 ] || fail "test set-up: $nbad bad blocks"
main=$(bad_main badmain "$disk" $bad)
dmsetup create r0 --table "0 $len remap $main $spare 0 $(sectors "$spare")"
# Reading a bad block that was never written fails (never zeroes or stale data).
first=$1
if dd if=/dev/mapper/r0 of=/tmp/dmr-x bs=4096 skip="$first" count=1 iflag=direct 2>/dev/null; then
	fail "read of unreadable block $first succeeded"
fi
[ "$(dmsetup message r0 0 query "$first")" = "$first failing" ] || fail "block $first not failing"
[ "$(status_field r0 3)" = 1 ] && [ "$(status_field r0 7)" = 1 ] || fail "status: $(dmsetup status r0)"
# clear_errors forgets the mark and the counters; the block still cannot be read.
dmsetup message r0 0 clear_errors
[ "$(status_field r0 3)" = 0 ] && [ "$(status_field r0 7)" = 0 ] || fail "after clear_errors: $(dmsetup status r0)"
expect_fail dd if=/dev/mapper/r0 of=/tmp/dmr-x bs=4096 skip="$first" count=1 iflag=direct
random_file /tmp/dmr-p "$blocks"
dd if=/tmp/dmr-p of=/dev/mapper/r0 bs=64k oflag=direct 2>/dev/null || fail "writes failed"
same_bytes /dev/mapper/r0 0 /tmp/dmr-p
[ "$(dmsetup message r0 0 count)" = "$nbad 0" ] || fail "count: $(dmsetup message r0 0 count), want $nbad 0"
dmsetup message r0 0 list >/tmp/dmr-list
[ "$(awk '{print $1}' /tmp/dmr-list | sort -n | tr '\n' ' ')" = "$(printf '%s\n' $bad | sort -n | tr '\n' ' ')" ] ||
	fail "remapped blocks differ from the bad blocks"
[ "$(awk '{print $3}' /tmp/dmr-list | sort -u | wc -l)" = "$nbad" ] || fail "a spare block is used twice"
# No spare data block lies in a metadata copy.
slen=$(sectors "$spare")
total=$((slen / 8))
cb=$(copy_blocks "$slen")
for s in $(awk '{print $3}' /tmp/dmr-list); do
	for i in 0 1 2 3 4; do
		start=$((i * total / 5))
		if [ "$s" -ge "$start" ] && [ "$s" -lt $((start + cb)) ]; then
			fail "spare block $s is in metadata copy $i"
		fi
	done
done
# Each bad block's data is in its spare block.
while read -r b _ s; do
	block_of /tmp/dmr-p "$b"
	cp /tmp/dmr-blk /tmp/dmr-want
	dd if="$spare" of=/tmp/dmr-blk bs=512 skip=$((s * 8)) count=8 2>/dev/null
	cmp -s /tmp/dmr-blk /tmp/dmr-want || fail "spare block $s does not hold block $b"
done </tmp/dmr-list
# Rewriting the same data does not remap anything again.
dd if=/tmp/dmr-p of=/dev/mapper/r0 bs=64k oflag=direct 2>/dev/null
[ "$(dmsetup message r0 0 count)" = "$nbad 0" ] || fail "blocks remapped twice"
echo "status: $(dmsetup status r0)"
# Every bad block but the one already known to fail was written to main first.
[ "$(status_field r0 4)" = $((nbad - 1)) ] || fail "write errors: $(dmsetup status r0)"
[ "$(status_field r0 5)" = "$nbad" ] || fail "automatic remaps: $(dmsetup status r0)"
dmsetup remove r0
dmsetup remove badmain
