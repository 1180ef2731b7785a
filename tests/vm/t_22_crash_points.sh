# A power cut at every write boundary of the spare device, including between the copies of
# one journal record and inside checkpoints: the spare is logged with dm-log-writes during
# automatic and manual remaps, then the log is replayed one write at a time onto a blank
# image. At every point the table loads, holds every remap acknowledged before that point,
# and the newest acknowledged block reads back its data. (Every metadata write is FUA, so a
# prefix of the completion-ordered log is exactly what a cut could leave.)
load_module
disk=$(make_disk disk 16)
spare=$(make_disk spare 2)
log=$(make_disk log 32)
len=$(sectors "$disk")
slen=$(sectors "$spare")
blocks=$((len / 8))
nbad=${DMR_TEST_CRASH_REMAPS:-36}
random_blocks $((nbad + nbad / 6)) "$blocks" 31 >/tmp/dmr-blocks
head -n "$nbad" /tmp/dmr-blocks >/tmp/dmr-bad
tail -n +$((nbad + 1)) /tmp/dmr-blocks >/tmp/dmr-good
main=$(bad_main badmain "$disk" $(cat /tmp/dmr-bad))
random_file /tmp/dmr-p "$blocks"
# The main device holds the same data (what a manual remap copies); its failing blocks
# fail every read and write anyway.
dd if=/tmp/dmr-p of="$disk" bs=1M oflag=direct 2>/dev/null
dmsetup create lw --table "0 $slen log-writes $spare $log"
dmsetup create r0 --table "0 $len remap $main /dev/mapper/lw 0 $slen"
# Acknowledged blocks in order; after each, a mark in the log with its count.
: >/tmp/dmr-acked
i=0
exec 3</tmp/dmr-good
while read -r b; do
	dd if=/tmp/dmr-p of=/dev/mapper/r0 bs=4096 skip="$b" seek="$b" count=1 oflag=direct \
		2>/dev/null || fail "write to failing block $b failed"
	echo "$b" >>/tmp/dmr-acked
	i=$((i + 1))
	dmsetup message lw 0 mark "ack-$i"
	# Every sixth step also a manual remap of a good block.
	if [ $((i % 6)) = 0 ] && read -r g <&3; then
		dmsetup message r0 0 remap "$g" >/dev/null || fail "manual remap of $g failed"
		echo "$g" >>/tmp/dmr-acked
		i=$((i + 1))
		dmsetup message lw 0 mark "ack-$i"
	fi
done </tmp/dmr-bad
exec 3<&-
echo "remapped: $(dmsetup message r0 0 count); status: $(dmsetup status r0)"
dmsetup remove r0
dmsetup remove lw
entries=$(replay_log "$log" count)
dd if=/dev/zero of=/tmp/dmr-replay bs=1M count=0 seek=2 2>/dev/null
acked=0
points=0
k=0
while [ "$k" -lt "$entries" ]; do
	what=$(replay_log "$log" apply "$k" /tmp/dmr-replay) || fail "replay of entry $k failed"
	k=$((k + 1))
	case $what in
	"mark ack-"*)
		acked=${what#mark ack-}
		continue
		;;
	write*) ;;
	*) continue ;;
	esac
	points=$((points + 1))
	cp /tmp/dmr-replay /tmp/dmr-cut.img
	lo=$(losetup -f)
	losetup "$lo" /tmp/dmr-cut.img
	dmsetup create rc --table "0 $len remap $main $lo 0 $slen" ||
		fail "after write $k of $entries ($acked acknowledged) the table does not load"
	dmsetup message rc 0 list >/tmp/dmr-have
	head -n "$acked" /tmp/dmr-acked >/tmp/dmr-want
	missing=$(awk 'NR == FNR { have[$1] = 1; next } !($1 in have)' /tmp/dmr-have /tmp/dmr-want | head -n 3)
	[ -z "$missing" ] || fail "after write $k ($acked acknowledged): lost remaps of $missing"
	if [ "$acked" -gt 0 ]; then
		b=$(sed -n "${acked}p" /tmp/dmr-acked)
		block_of /dev/mapper/rc "$b"
		cp /tmp/dmr-blk /tmp/dmr-got
		block_of /tmp/dmr-p "$b"
		cmp -s /tmp/dmr-got /tmp/dmr-blk || fail "after write $k ($acked acknowledged): block $b" \
			"($(dmsetup message rc 0 query "$b")) reads $(od -An -tx1 -N8 /tmp/dmr-got)," \
			"want $(od -An -tx1 -N8 /tmp/dmr-blk)"
	fi
	dmsetup remove rc
	losetup -d "$lo"
done
# More commits than the 32 records a 16 KiB journal holds: the log includes a checkpoint.
[ "$acked" -gt 32 ] || fail "only $acked commits: no checkpoint was cut"
[ "$acked" = "$(wc -l </tmp/dmr-acked)" ] || fail "the log holds $acked of $(wc -l </tmp/dmr-acked) acknowledgements"
echo "crash points: $points writes of $entries log entries, $acked acknowledged remaps"
dmsetup remove badmain
