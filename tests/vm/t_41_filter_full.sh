# The lookup filter (a Bloom filter in front of the remap table) is sized for the spare
# region; far more distinct blocks than that (here failing blocks of the main device) fill
# it with ones. Before and after, every read goes where its block's data is: remapped
# blocks from the spare, others from the main device, failing ones fail; and a write to a
# failing block is remapped. Reads of blocks without an entry also take the path that
# skips the table (checked by the data they return next to remapped blocks).
load_module
disk=$(make_disk disk 64)
spare=$(make_disk spare 1)
len=$(sectors "$disk")
# 1024 sectors: 128 blocks, ~93 of them for data; the filter takes 64 words (4096 bits)
# and is full after 2048 blocks.
slen=1024
bad0=4096
nbad=2304
cat >/tmp/dmr-t41 <<T
0 $((bad0 * 8)) linear $disk 0
$((bad0 * 8)) $((nbad * 8)) error
$(((bad0 + nbad) * 8)) $((len - (bad0 + nbad) * 8)) linear $disk $(((bad0 + nbad) * 8))
T
dmsetup create t41main /tmp/dmr-t41
dmsetup create r0 --table "0 $len remap /dev/mapper/t41main $spare 0 $slen"
random_file /tmp/dmr-p 64
dd if=/tmp/dmr-p of=/dev/mapper/r0 bs=4096 count=64 oflag=direct 2>/dev/null
for b in 2 3 4 30 31; do
	dmsetup message r0 0 remap "$b" >/dev/null
done
# New data: the main device keeps the old contents of the remapped blocks, so a read
# sent there by mistake returns the wrong data.
random_file /tmp/dmr-p 64
dd if=/tmp/dmr-p of=/dev/mapper/r0 bs=4096 count=64 oflag=direct 2>/dev/null
check_reads() { # what
	# One bio per block, then bios of 16 blocks with and without remapped ones.
	for b in 0 1 2 3 4 5 30 31 32 63; do
		block_of /tmp/dmr-p "$b"
		dd if=/dev/mapper/r0 of=/tmp/dmr-got bs=4096 skip="$b" count=1 iflag=direct 2>/dev/null ||
			fail "$1: read of block $b failed"
		cmp -s /tmp/dmr-got /tmp/dmr-blk || fail "$1: block $b read wrong data"
	done
	dd if=/dev/mapper/r0 of=/tmp/dmr-got bs=64k count=4 iflag=direct 2>/dev/null ||
		fail "$1: 64 KiB reads failed"
	cmp -s /tmp/dmr-got /tmp/dmr-p || fail "$1: 64 KiB reads returned wrong data"
	expect_fail dd if=/dev/mapper/r0 of=/tmp/dmr-got bs=4096 skip=$((bad0 + 7)) count=1 iflag=direct
}
check_reads "filter in use"
klog_mark
# Reading the bad region marks each of its blocks failing (one 1 MiB read at a time; each
# fails).
i=0
while [ "$i" -lt $((nbad / 256)) ]; do
	expect_fail dd if=/dev/mapper/r0 of=/dev/null bs=1M skip=$((bad0 / 256 + i)) count=1 iflag=direct
	i=$((i + 1))
done
[ "$(dmsetup message r0 0 count)" = "5 $nbad" ] || fail "count: $(dmsetup message r0 0 count), want 5 $nbad"
klog_since | grep -q 'lookup filter full' || fail "the filter did not report being full"
check_reads "filter full"
# A failing block is remapped by a write and then reads back; so is a fresh remap.
block_of /tmp/dmr-p 7
write_block /dev/mapper/r0 $((bad0 + 100)) /tmp/dmr-blk
dd if=/dev/mapper/r0 of=/tmp/dmr-got bs=4096 skip=$((bad0 + 100)) count=1 iflag=direct 2>/dev/null ||
	fail "read of the rewritten failing block failed"
cmp -s /tmp/dmr-got /tmp/dmr-blk || fail "the rewritten failing block read wrong data"
dmsetup message r0 0 remap 5 >/dev/null
random_file /tmp/dmr-p 64
dd if=/tmp/dmr-p of=/dev/mapper/r0 bs=4096 count=64 oflag=direct 2>/dev/null
check_reads "after more remaps"
dmsetup remove r0
dmsetup remove t41main
