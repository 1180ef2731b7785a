# Background scanner over a slow region (a dm-delay segment, 400 ms per read, in a table
# of linear segments under the main device): its 8 blocks are found slow and relocated
# (`query` shows a spare block, the data is unchanged, reads no longer touch the region),
# while fio writes and verifies the blocks around them: 0 mismatches. Without a free
# spare block, a pass finds and reports the same blocks and relocates nothing.
load_module
disk=$(make_disk disk 32)
spare=$(make_disk spare 16)
len=$(sectors "$disk")
blocks=$((len / 8))
random_file /tmp/dmr-data "$blocks"
dd if=/tmp/dmr-data of="$disk" bs=1M conv=fsync 2>/dev/null
# slow_table KIND: blocks 1000-1007 are KIND ("delay": 400 ms reads; "error").
slow_table() {
	if [ "$1" = delay ]; then
		seg="delay $disk 8000 400 $disk 8000 0"
	else
		seg=error
	fi
	printf '0 8000 linear %s 0\n8000 64 %s\n8064 %s linear %s 8064\n' \
		"$disk" "$seg" $((len - 8064)) "$disk" >/tmp/dmr-slowtable
}
slow_table delay
dmsetup create slowmain /tmp/dmr-slowtable
dmsetup create r0 --table "0 $len remap /dev/mapper/slowmain $spare 0 $(sectors "$spare")"
s=/sys/kernel/dm_remap/r0/scanner
echo 100000 >$s/slow_threshold_us
# fio writes and verifies blocks 960-1039 (around the slow ones) while the scan runs.
fio --name=v --filename=/dev/mapper/r0 --rw=randwrite --bs=4k --direct=1 --ioengine=psync \
	--offset=$((960 * 4096)) --size=$((80 * 4096)) --verify=crc32c --do_verify=1 \
	--loops=3 --output=/tmp/dmr-fio.txt &
fio_pid=$!
echo start >$s/control
scan_wait_pass r0 1 600
wait $fio_pid || { cat /tmp/dmr-fio.txt; fail "fio verify failed"; }
grep -q 'verify' /tmp/dmr-fio.txt && grep -iq 'bad\|mismatch' /tmp/dmr-fio.txt && fail "fio: $(cat /tmp/dmr-fio.txt)"
[ "$(cat $s/slow)" = 8 ] || fail "slow $(cat $s/slow), want 8"
[ "$(cat $s/relocated)" = 8 ] || fail "relocated $(cat $s/relocated), want 8"
[ "$(cat $s/unreadable)" = 0 ] || fail "unreadable $(cat $s/unreadable)"
for b in 1000 1001 1002 1003 1004 1005 1006 1007; do
	dmsetup message r0 0 query "$b" | grep -q "^$b spare " || fail "block $b: $(dmsetup message r0 0 query "$b")"
done
# The data outside fio's blocks is unchanged, and the slow blocks' data is what fio
# wrote last or, for those it did not write, the original: checked through a read of
# the region with the slow segment turned into dm-error: reads no longer touch it.
dd if=/dev/mapper/r0 of=/tmp/dmr-got bs=4096 count=960 iflag=direct 2>/dev/null
dd if=/tmp/dmr-data of=/tmp/dmr-want bs=4096 count=960 2>/dev/null
cmp /tmp/dmr-got /tmp/dmr-want || fail "data before block 960 changed"
dd if=/dev/mapper/r0 of=/tmp/dmr-before bs=4096 skip=1000 count=8 iflag=direct 2>/dev/null
slow_table error
dmsetup suspend slowmain
dmsetup reload slowmain /tmp/dmr-slowtable
dmsetup resume slowmain
dd if=/dev/mapper/r0 of=/tmp/dmr-after bs=4096 skip=1000 count=8 iflag=direct 2>/dev/null ||
	fail "relocated blocks still read from the slow region"
cmp /tmp/dmr-before /tmp/dmr-after || fail "relocated blocks changed"
dmsetup remove r0

# No free spare block: the same region is found and reported, nothing relocated.
slow_table delay
dmsetup suspend slowmain
dmsetup reload slowmain /tmp/dmr-slowtable
dmsetup resume slowmain
small=$(make_disk small 1)
dmsetup create r1 --table "0 $len remap /dev/mapper/slowmain $small 0 $(sectors "$small")"
b=2000
while dmsetup message r1 0 remap $b >/dev/null 2>&1; do b=$((b + 1)); done
[ "$(cat /sys/kernel/dm_remap/r1/remaps/exhausted)" = 1 ] || fail "spare not exhausted"
remapped=$(cat /sys/kernel/dm_remap/r1/remaps/remapped)
s=/sys/kernel/dm_remap/r1/scanner
echo 100000 >$s/slow_threshold_us
echo start >$s/control
scan_wait_pass r1 1 600
[ "$(cat $s/slow)" = 8 ] && [ "$(cat $s/relocated)" = 0 ] ||
	fail "no spare: slow $(cat $s/slow), relocated $(cat $s/relocated)"
[ "$(cat /sys/kernel/dm_remap/r1/remaps/remapped)" = "$remapped" ] || fail "remapped changed"
for b in 1000 1007; do
	[ "$(dmsetup message r1 0 query "$b")" = "$b main" ] || fail "block $b: $(dmsetup message r1 0 query "$b")"
done
dmsetup remove r1
dmsetup remove slowmain
