# Power cut during a remap storm: at a random moment every later write to the spare device
# is lost (dm-flakey drop_writes, switched in while the device is suspended, so everything
# completed before is on it). After the "crash" the table always loads and every remap
# acknowledged before the cut is there with its data. Repeated for several cut points.
load_module
disk=$(make_disk disk 64)
sparedisk=$(make_disk spare 16)
len=$(sectors "$disk")
slen=$(sectors "$sparedisk")
blocks=$((len / 8))
random_blocks 400 "$blocks" 3 >/tmp/dmr-bad
main=$(bad_main badmain "$disk" $(cat /tmp/dmr-bad))
random_file /tmp/dmr-p "$blocks"
rounds=${DMR_TEST_POWER_CUT_ROUNDS:-4}
checked=0
for round in $(seq 1 "$rounds"); do
	# A fresh spare region each round.
	dd if=/dev/zero of="$sparedisk" bs=1M count=16 conv=notrunc 2>/dev/null
	echo "0 $slen linear $sparedisk 0" | dmsetup create sparefl
	table="0 $len remap $main /dev/mapper/sparefl 0 $slen"
	dmsetup create r0 --table "$table"
	: >/tmp/dmr-acked
	rm -f /tmp/dmr-stop
	# Four writers, each over its own share of the bad blocks, one block per write.
	for w in 0 1 2 3; do
		(
			awk -v w=$w 'NR % 4 == w' /tmp/dmr-bad | while read -r b; do
				[ -e /tmp/dmr-stop ] && break
				dd if=/tmp/dmr-p of=/dev/mapper/r0 bs=4096 skip="$b" seek="$b" count=1 \
					oflag=direct 2>/dev/null && echo "$b" >>/tmp/dmr-acked
			done
		) &
	done
	sleep "$(awk -v r=$round 'BEGIN { srand(r); printf "%.1f", 0.3 + rand() * 2 }')"
	dmsetup suspend sparefl
	echo CUT >>/tmp/dmr-acked
	echo "0 $slen flakey $sparedisk 0 0 1 1 drop_writes" | dmsetup reload sparefl
	dmsetup resume sparefl
	sleep 1
	# Crash: stop the writers, drop the device (nothing more reaches the spare).
	touch /tmp/dmr-stop
	wait
	dmsetup remove r0
	echo "0 $slen linear $sparedisk 0" | dmsetup reload sparefl
	dmsetup resume sparefl
	# Recovery.
	dmsetup create r0 --table "$table" || fail "round $round: the table does not load"
	n=0
	for b in $(sed '/^CUT$/q' /tmp/dmr-acked | grep -v CUT); do
		dmsetup message r0 0 query "$b" | grep -q "^$b spare " || fail "round $round: acknowledged remap of block $b lost"
		block_of /tmp/dmr-p "$b"
		cp /tmp/dmr-blk /tmp/dmr-want
		block_of /dev/mapper/r0 "$b"
		cmp -s /tmp/dmr-blk /tmp/dmr-want || fail "round $round: block $b has wrong data"
		n=$((n + 1))
	done
	echo "round $round: $n acknowledged remaps before the cut, all present; status $(dmsetup status r0)"
	checked=$((checked + n))
	dmsetup remove r0
	dmsetup remove sparefl
done
echo "power cut points tried: $rounds, acknowledged remaps checked: $checked"
[ "$checked" -gt 0 ] || fail "no remap was acknowledged before any cut"
dmsetup remove badmain
