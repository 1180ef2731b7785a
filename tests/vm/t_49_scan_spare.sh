# The scanner reads remapped blocks from their spare blocks: a slow spare block (a
# dm-delay segment, 400 ms per read) is moved to another spare block and retired, with
# its data; an unreadable one (dm-error) is counted (spare_errors, unreadable) and stays
# where it is, its reads failing, its data lost.
load_module
disk=$(make_disk disk 32)
sfile=$(make_disk spare 16)
len=$(sectors "$disk")
slen=$(sectors "$sfile")
random_file /tmp/dmr-data $((len / 8))
dd if=/tmp/dmr-data of="$disk" bs=1M conv=fsync 2>/dev/null
# spare_table KIND SECTOR: the spare region, with KIND (delay, error or linear) over the
# spare block at SECTOR.
spare_table() {
	case $1 in
	delay) seg="delay $sfile $2 400 $sfile $2 0" ;;
	error) seg=error ;;
	*) seg="linear $sfile $2" ;;
	esac
	{
		[ "$2" = 0 ] || echo "0 $2 linear $sfile 0"
		echo "$2 8 $seg"
		echo "$(($2 + 8)) $((slen - $2 - 8)) linear $sfile $(($2 + 8))"
	} >/tmp/dmr-sparetable
}
dmsetup create sparedev --table "0 $slen linear $sfile 0"
dmsetup create r0 --table "0 $len remap $disk /dev/mapper/sparedev 0 $slen"
s=/sys/kernel/dm_remap/r0/scanner
echo 100000 >$s/slow_threshold_us
sp1=$(dmsetup message r0 0 remap 100 | awk '{ print $3 }')
sp2=$(dmsetup message r0 0 remap 200 | awk '{ print $3 }')
[ -n "$sp1" ] && [ -n "$sp2" ] || fail "manual remaps"
# reload_spare KIND SPARE_BLOCK
reload_spare() {
	spare_table "$1" $(($2 * 8))
	dmsetup suspend sparedev
	dmsetup reload sparedev /tmp/dmr-sparetable
	dmsetup resume sparedev
}
retired=$(cat /sys/kernel/dm_remap/r0/remaps/spare_retired)
reload_spare delay "$sp1"
echo start >$s/control
scan_wait_pass r0 1 300
[ "$(cat $s/slow)" = 1 ] && [ "$(cat $s/relocated)" = 1 ] ||
	fail "slow spare block: slow $(cat $s/slow), relocated $(cat $s/relocated)"
new=$(dmsetup message r0 0 query 100 | awk '{ print $3 }')
[ -n "$new" ] && [ "$new" != "$sp1" ] || fail "block 100 still on spare block $sp1: $(dmsetup message r0 0 query 100)"
[ "$(cat /sys/kernel/dm_remap/r0/remaps/spare_retired)" = $((retired + 1)) ] || fail "old spare block not retired"
dd if=/tmp/dmr-data of=/tmp/dmr-want bs=4096 skip=100 count=1 2>/dev/null
same_bytes /dev/mapper/r0 100 /tmp/dmr-want
# An unreadable spare block: found and counted, nothing moved.
reload_spare error "$sp2"
errors=$(status_field r0 8)
echo start >$s/control
scan_wait_pass r0 2 300
[ "$(cat $s/unreadable)" = 1 ] && [ "$(cat $s/relocated)" = 1 ] ||
	fail "unreadable spare block: unreadable $(cat $s/unreadable), relocated $(cat $s/relocated)"
[ "$(status_field r0 8)" -gt "$errors" ] || fail "spare_errors not counted: $(dmsetup status r0)"
[ "$(dmsetup message r0 0 query 200)" = "200 spare $sp2" ] || fail "block 200 moved: $(dmsetup message r0 0 query 200)"
expect_fail dd if=/dev/mapper/r0 of=/dev/null bs=4096 skip=200 count=1 iflag=direct
dmsetup remove r0
dmsetup remove sparedev
