# remap/unremap/query/list/count by message on a live device: data is copied first, I/O
# follows the table (1 MiB direct I/O across remapped blocks), bad input is refused.
load_module
main=$(make_disk main 64)
spare=$(make_disk spare 16)
len=$(sectors "$main")
dmsetup create r0 --table "0 $len remap $main $spare 0 $(sectors "$spare")"
blocks=$((len / 8))
random_file /tmp/dmr-p1 "$blocks"
dd if=/tmp/dmr-p1 of=/dev/mapper/r0 bs=1M oflag=direct 2>/dev/null
for b in 5 6 100 1000 4095; do
	r=$(dmsetup message r0 0 remap $b)
	echo "remap $b -> $r"
	echo "$r" | grep -Eq "^$b spare [0-9]+$" || fail "remap reply: $r"
done
# The copies kept the data.
same_bytes /dev/mapper/r0 0 /tmp/dmr-p1
[ "$(dmsetup message r0 0 query 7)" = "7 main" ] || fail "query 7"
s100=$(dmsetup message r0 0 query 100 | awk '{print $3}')
[ "$(dmsetup message r0 0 count)" = "5 0" ] || fail "count: $(dmsetup message r0 0 count)"
[ "$(dmsetup message r0 0 list | awk '{print $1}' | tr '\n' ' ')" = "5 6 100 1000 4095 " ] ||
	fail "list: $(dmsetup message r0 0 list)"
[ "$(dmsetup message r0 0 list 6 2 | awk '{print $1}' | tr '\n' ' ')" = "6 100 " ] ||
	fail "list 6 2: $(dmsetup message r0 0 list 6 2)"
[ "$(status_field r0 1)" = "5/$(status_field r0 1 | cut -d/ -f2)" ] || fail "status: $(dmsetup status r0)"
[ "$(status_field r0 6)" = 5 ] || fail "manual remaps: $(dmsetup status r0)"
# New data in 1 MiB direct writes crossing the remapped blocks.
random_file /tmp/dmr-p2 "$blocks"
dd if=/tmp/dmr-p2 of=/dev/mapper/r0 bs=1M oflag=direct 2>/dev/null
same_bytes /dev/mapper/r0 0 /tmp/dmr-p2
dd if=/dev/mapper/r0 of=/tmp/dmr-back bs=1M iflag=direct 2>/dev/null
cmp /tmp/dmr-back /tmp/dmr-p2 || fail "1 MiB direct reads differ"
# Remapped blocks were written to the spare, not to main.
block_of /tmp/dmr-p1 100
cp /tmp/dmr-blk /tmp/dmr-old100
block_of "$main" 100
cmp /tmp/dmr-blk /tmp/dmr-old100 || fail "main block 100 was written"
block_of /tmp/dmr-p2 100
cp /tmp/dmr-blk /tmp/dmr-new100
dd if="$spare" of=/tmp/dmr-blk bs=512 skip=$((s100 * 8)) count=8 2>/dev/null
cmp /tmp/dmr-blk /tmp/dmr-new100 || fail "spare block $s100 does not hold block 100"
# unremap copies back.
[ "$(dmsetup message r0 0 unremap 100)" = "100 main" ] || fail "unremap reply"
block_of "$main" 100
cmp /tmp/dmr-blk /tmp/dmr-new100 || fail "unremap did not copy block 100 back"
same_bytes /dev/mapper/r0 0 /tmp/dmr-p2
[ "$(dmsetup message r0 0 count)" = "4 0" ] || fail "count after unremap"
# Bad input.
expect_fail dmsetup message r0 0 remap 5
expect_fail dmsetup message r0 0 unremap 7
expect_fail dmsetup message r0 0 remap $blocks
expect_fail dmsetup message r0 0 query x
expect_fail dmsetup message r0 0 list 1 2 3
dmesg | grep -q 'remap: the block is already remapped' || fail "reason not logged"
dmesg | grep -q 'unremap: the block is not remapped' || fail "reason not logged"
dmesg | grep -q 'block number is beyond the end of the target' || fail "reason not logged"
dmsetup remove r0
