# Remaps made together are committed together: one 1 MiB write over several failing blocks
# costs one journal record, and concurrent failing writes (fio, queue depth 32) share
# records too. Every remap is durable: the table re-created from the spare lists them all
# and the data reads back.
load_module
disk=$(make_disk disk 64)
spare=$(make_disk spare 16)
len=$(sectors "$disk")
blocks=$((len / 8))
# Part 1: 160 failing blocks in the first half, written by 1 MiB direct writes (256
# blocks each); each write is one bio that the worker takes whole.
half=$((blocks / 2))
bad=$(random_blocks 160 "$half" 21)
# Part 2: 160 more in the second half, written by fio at queue depth 32.
bad2=$(random_blocks 160 "$half" 22 | awk -v h="$half" '{print $1 + h}')
main=$(bad_main badmain "$disk" $bad $bad2)
dmsetup create r0 --table "0 $len remap $main $spare 0 $(sectors "$spare")"
seq0=$(status_meta r0 2)
random_file /tmp/dmr-p "$half"
dd if=/tmp/dmr-p of=/dev/mapper/r0 bs=1M oflag=direct 2>/dev/null || fail "1 MiB writes failed"
seq1=$(status_meta r0 2)
remapped=$(dmsetup message r0 0 count | awk '{print $1}')
[ "$remapped" = 160 ] || fail "remapped $remapped of 160"
# 1 MiB writes that contain at least one failing block.
chunks=$(printf '%s\n' $bad | awk '{print int($1 / 256)}' | sort -u | wc -l)
echo "1 MiB writes: 160 remaps in $((seq1 - seq0)) commits ($chunks writes hit a failing block)"
[ $((seq1 - seq0)) -le "$chunks" ] || fail "$((seq1 - seq0)) commits for $chunks writes"
same_bytes /dev/mapper/r0 0 /tmp/dmr-p
fio --name=w --filename=/dev/mapper/r0 --rw=randwrite --bs=4k --offset=$((half * 4096)) \
	--size=$((half * 4096)) --ioengine=io_uring --direct=1 --iodepth=32 --verify=crc32c \
	--do_verify=1 --verify_fatal=1 --output=/tmp/dmr-fio.txt || { cat /tmp/dmr-fio.txt; fail "fio failed"; }
grep -q 'err= 0' /tmp/dmr-fio.txt || { cat /tmp/dmr-fio.txt; fail "fio err != 0"; }
seq2=$(status_meta r0 2)
remapped=$(dmsetup message r0 0 count | awk '{print $1}')
[ "$remapped" = 320 ] || fail "remapped $remapped of 320"
echo "fio QD32: 160 remaps in $((seq2 - seq1)) commits; metadata bytes $(status_meta r0 3)"
[ $((seq2 - seq1)) -lt 160 ] || fail "no two concurrent remaps shared a commit"
# Everything is on the spare: a new table lists the same remaps, the data reads back.
dmsetup message r0 0 list >/tmp/dmr-list1
dd if=/dev/mapper/r0 of=/tmp/dmr-all bs=1M iflag=direct 2>/dev/null || fail "read back failed"
dmsetup remove r0
dmsetup create r0 --table "0 $len remap $main $spare 0 $(sectors "$spare")"
dmsetup message r0 0 list >/tmp/dmr-list2
cmp -s /tmp/dmr-list1 /tmp/dmr-list2 || fail "the table changed across re-creation"
same_bytes /dev/mapper/r0 0 /tmp/dmr-all
dmsetup remove r0
dmsetup remove badmain
