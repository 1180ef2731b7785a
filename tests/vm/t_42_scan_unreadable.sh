# Background scanner over unreadable blocks (dm-dust, 4 KiB blocks): one pass finds every
# one (exact count), marks each `failing` (never moved: its data is lost), raises a dm
# event; reads of them keep failing, and a later write remaps them. A second pass reads
# them from their spare blocks and finds nothing new.
load_module
disk=$(make_disk disk 64)
spare=$(make_disk spare 16)
len=$(sectors "$disk")
blocks=$((len / 8))
random_file /tmp/dmr-data "$blocks"
dd if=/tmp/dmr-data of="$disk" bs=1M conv=fsync 2>/dev/null
echo "0 $len dust $disk 0 4096" | dmsetup create dust
bad=$(random_blocks 7 "$blocks" 42)
for b in $bad; do dmsetup message dust 0 addbadblock "$b" >/dev/null; done
dmsetup message dust 0 quiet >/dev/null
dmsetup message dust 0 enable >/dev/null
dmsetup create r0 --table "0 $len remap /dev/mapper/dust $spare 0 $(sectors "$spare")"
s=/sys/kernel/dm_remap/r0/scanner
[ "$(cat $s/state)" = idle ] || fail "state $(cat $s/state)"
[ "$(cat $s/position)" = 0 ] && [ "$(cat $s/passes)" = 0 ] || fail "fresh scanner"
[ "$(cat $s/eta_s)" = - ] || fail "eta_s of an idle scanner: $(cat $s/eta_s)"
events() { dmsetup info r0 | awk '/Event number/ { print $3 }'; }
ev=$(events)
echo start >$s/control
scan_wait_pass r0 1 300
[ "$(cat $s/state)" = idle ] || fail "state after the pass: $(cat $s/state)"
[ "$(cat $s/position)" = 0 ] || fail "position after the pass: $(cat $s/position)"
[ "$(cat $s/unreadable)" = 7 ] || fail "unreadable $(cat $s/unreadable), want 7"
[ "$(cat $s/slow)" = 0 ] && [ "$(cat $s/relocated)" = 0 ] || fail "slow $(cat $s/slow) relocated $(cat $s/relocated)"
[ "$(cat $s/blocks_scanned)" = "$blocks" ] || fail "blocks_scanned $(cat $s/blocks_scanned), want $blocks"
[ "$(events)" -gt "$ev" ] || fail "no dm event"
# Status: ... <state> <position> <passes> <unreadable> <slow> <relocated> at the end.
st=$(dmsetup status r0)
echo "$st" | grep -q ' idle 0 1 7 0 0$' || fail "status: $st"
[ "$(status_field r0 7)" = 7 ] || fail "failing count in status: $st"
for b in $bad; do
	[ "$(dmsetup message r0 0 query "$b")" = "$b failing" ] || fail "block $b: $(dmsetup message r0 0 query "$b")"
	expect_fail dd if=/dev/mapper/r0 of=/dev/null bs=4096 skip="$b" count=1 iflag=direct
done
# A write remaps a failing block; its new data reads back.
random_file /tmp/dmr-new 1
for b in $bad; do
	dd if=/tmp/dmr-new of=/dev/mapper/r0 bs=4096 seek="$b" count=1 oflag=direct conv=notrunc 2>/dev/null
	dmsetup message r0 0 query "$b" | grep -q "^$b spare " || fail "block $b not remapped by a write"
	same_bytes /dev/mapper/r0 "$b" /tmp/dmr-new
done
# The rest of the data is unchanged.
b1=$(echo "$bad" | sort -n | head -1)
dd if=/dev/mapper/r0 of=/tmp/dmr-got bs=4096 count="$b1" iflag=direct 2>/dev/null
dd if=/tmp/dmr-data of=/tmp/dmr-want bs=4096 count="$b1" 2>/dev/null
cmp /tmp/dmr-got /tmp/dmr-want || fail "data before block $b1 changed"
# A second pass reads the remapped blocks from their spare blocks: nothing new.
echo start >$s/control
scan_wait_pass r0 2 300
[ "$(cat $s/unreadable)" = 7 ] || fail "second pass: unreadable $(cat $s/unreadable)"
[ "$(cat $s/blocks_scanned)" = $((2 * blocks)) ] || fail "second pass: blocks_scanned $(cat $s/blocks_scanned)"
dmsetup message r0 0 scan start
dmsetup remove r0
dmsetup remove dust
