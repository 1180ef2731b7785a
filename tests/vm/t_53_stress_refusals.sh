# Stress engine refusals: every control file refuses bad input with EINVAL and changes
# nothing; types that write are refused with EPERM until allow_writes is 1, and with EBUSY
# while the device is open (held by a process, mounted); reads are allowed then, and find
# nothing to check after someone else wrote; a second run while one goes on is EBUSY, a
# stop with none ESRCH, a start while suspended ENODEV; a device opened during a run that
# writes fails the run; a region too small for the workers is refused.
load_module
disk=$(make_disk disk 64)
spare=$(make_disk spare 16)
len=$(sectors "$disk")
dmsetup create r0 --table "0 $len remap $disk $spare 0 $(sectors "$spare")"
s=/sys/kernel/dm_remap/r0/stress
# expect_errno FILE VALUE TEXT: writing VALUE fails with the error whose message has TEXT.
expect_errno() {
	if echo -n "$2" >"$1" 2>/tmp/dmr-werr; then
		fail "writing '$2' to $1 succeeded"
	fi
	grep -q "$3" /tmp/dmr-werr || fail "writing '$2' to $1: $(cat /tmp/dmr-werr), not $3"
}
klog_mark
for v in " " x "1 2" "6 1 1" "0 0 1" "0 33 1" "0 1 0" "0 1 3600001" "0 1 1 0" \
	"0 1 1 257" "0 1 1 1 0" "0 1 1 1 3" "0 1 1 1 1025" "0 32 1 256" "0 32 1 64 64" \
	"1 2 3 4 5 6" "-1 1 1" "0 1 1.5" "0 1 99999999999999999999"; do
	expect_einval $s/stress_test_start "$v"
done
# The reason is in the kernel log.
klog_since | grep -q 'stress test not started: workers must be 1 to 32' || fail "no reason logged"
for v in 0 2 x "1 1"; do
	expect_einval $s/stress_test_stop "$v"
	expect_einval $s/quick_validation "$v"
done
for v in 0 2 x resetx " 1"; do expect_einval $s/regression_test "$v"; done
for v in " " 64 "0 10" "1 0" "1 2 3" "a 1" "1048577 1" "1 3600001"; do
	expect_einval $s/memory_pressure_test "$v"
done
for v in 2 -1 yes " "; do expect_einval $s/allow_writes "$v"; done
[ "$(cat $s/allow_writes)" = 0 ] || fail "allow_writes changed"
[ "$(cat $s/stress_test_status)" = idle ] && [ -z "$(cat $s/stress_test_results)" ] &&
	[ "$(cat $s/regression_test)" = none ] || fail "a refused write changed something"
expect_errno $s/stress_test_stop 1 'No such process'
# Unarmed: every type that writes is refused; reads are not.
for t in "2 1 100" "3 1 100" "4 1 100" "5 1 100"; do
	expect_errno $s/stress_test_start "$t" 'Operation not permitted'
done
expect_errno $s/quick_validation 1 'Operation not permitted'
expect_errno $s/memory_pressure_test "1 100" 'Operation not permitted'
echo "1 1 300" >$s/stress_test_start
expect_errno $s/stress_test_start "0 1 300" 'Device or resource busy'
stress_wait
[ "$(cat $s/stress_test_status)" = done ] || fail "read run unarmed"
echo 1 >$s/allow_writes
# A write run, then someone else writes through the device: a read run checks nothing
# (no false mismatches) and says why.
echo "2 2 1000" >$s/stress_test_start
stress_wait
dd if=/dev/zero of=/dev/mapper/r0 bs=4096 count=1 seek=5 oflag=direct 2>/dev/null
klog_mark
echo "1 2 500" >$s/stress_test_start
stress_wait
[ "$(stress_res verified_blocks)" = 0 ] && [ "$(stress_res verify_mismatches)" = 0 ] &&
	[ "$(cat $s/stress_test_status)" = done ] || fail "stamps kept after a foreign write"
klog_since | grep -q 'was written since the last run' || fail "no log of dropped stamps"
# Open by a process: writes EBUSY, reads fine.
exec 3</dev/mapper/r0
expect_errno $s/stress_test_start "3 1 100" 'Device or resource busy'
expect_errno $s/quick_validation 1 'Device or resource busy'
echo "0 1 200" >$s/stress_test_start
stress_wait
[ "$(cat $s/stress_test_status)" = done ] || fail "read run while open"
exec 3<&-
# Mounted: the same.
mkfs.ext4 -q -b 4096 /dev/mapper/r0
mount /dev/mapper/r0 /mnt
expect_errno $s/stress_test_start "4 1 100" 'Device or resource busy'
echo "1 2 300" >$s/stress_test_start
stress_wait
[ "$(cat $s/stress_test_status)" = done ] && [ "$(stress_res verify_mismatches)" = 0 ] ||
	fail "read run while mounted"
umount /mnt
# Opened while a run writes: the run fails, says why.
echo "3 2 30000" >$s/stress_test_start
sleep 0.5
exec 3</dev/mapper/r0
stress_wait 30
exec 3<&-
case "$(cat $s/stress_test_status)" in
"failed: the device was opened during a run that writes") ;;
*) fail "opened during a write run: $(cat $s/stress_test_status)" ;;
esac
[ "$(stress_res elapsed_ms)" -lt 30000 ] || fail "the run went on"
# Suspended: ENODEV; after resume it works.
dmsetup suspend r0
expect_errno $s/stress_test_start "0 1 100" 'No such device'
dmsetup resume r0
echo "0 1 100" >$s/stress_test_start
stress_wait
dmsetup remove r0
# A region with fewer I/O units than workers.
small=$(make_disk small 4)
spare2=$(make_disk spare2 2)
dmsetup create r1 --table "0 $(sectors "$small") remap $small $spare2 0 $(sectors "$spare2")"
expect_einval /sys/kernel/dm_remap/r1/stress/stress_test_start "0 8 100 1 1024"
echo "0 4 100 1 1024" >/sys/kernel/dm_remap/r1/stress/stress_test_start
stress_wait 120 r1
dmsetup remove r1
