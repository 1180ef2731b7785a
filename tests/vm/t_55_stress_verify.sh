# Stress engine data checks: blocks changed behind the target's back (written on the main
# device directly) are reported as mismatches with their block number, in the status, the
# results and the kernel log; an older copy of a block put back is reported as an older
# write, another block's data as that block's; the main copy of a remapped block is not
# what is read (no mismatch); the rest of the region verifies.
load_module
disk=$(make_disk disk 4)
spare=$(make_disk spare 2)
len=$(sectors "$disk")
dmsetup create r0 --table "0 $len remap $disk $spare 0 $(sectors "$spare")"
s=/sys/kernel/dm_remap/r0/stress
echo 1 >$s/allow_writes
dmsetup message r0 0 remap 300 >/dev/null
# The whole region (1,024 blocks) written at least once, twice for block 78.
echo "2 1 60000 4" >$s/stress_test_start
while [ "$(($(cat /sys/kernel/dm_remap/r0/stats/writes)))" -lt 1024 ]; do sleep 0.2; done
echo 1 >$s/stress_test_stop
dd if="$disk" of=/tmp/dmr-old78 bs=4096 skip=78 count=1 iflag=direct 2>/dev/null
echo "2 1 60000 4" >$s/stress_test_start
while [ "$(($(cat /sys/kernel/dm_remap/r0/stats/writes)))" -lt 2048 ]; do sleep 0.2; done
echo 1 >$s/stress_test_stop
[ "$(stress_res errors)" = 0 ] || fail "write runs"
# Clean read first: everything verifies.
echo "0 1 60000 4" >$s/stress_test_start
while [ "$(($(cat /sys/kernel/dm_remap/r0/stats/reads)))" -lt 1024 ]; do sleep 0.2; done
echo 1 >$s/stress_test_stop
[ "$(stress_res verify_mismatches)" = 0 ] && [ "$(stress_res unverified_blocks)" = 0 ] &&
	[ "$(stress_res verified_blocks)" -ge 1024 ] || fail "clean read: $(cat $s/stress_test_status)"
# Behind the target's back: block 77 random, 78 its older copy, 79's data on 80, and the
# main copy of remapped block 300.
dd if=/dev/urandom of="$disk" bs=4096 seek=77 count=1 conv=notrunc oflag=direct 2>/dev/null
dd if=/tmp/dmr-old78 of="$disk" bs=4096 seek=78 count=1 conv=notrunc oflag=direct 2>/dev/null
dd if="$disk" of="$disk" bs=4096 skip=79 seek=80 count=1 conv=notrunc iflag=direct oflag=direct 2>/dev/null
dd if=/dev/zero of="$disk" bs=4096 seek=300 count=1 conv=notrunc oflag=direct 2>/dev/null
klog_mark
echo "0 1 60000 4" >$s/stress_test_start
r0=$(cat /sys/kernel/dm_remap/r0/stats/reads)
while [ $(($(cat /sys/kernel/dm_remap/r0/stats/reads) - r0)) -lt 1024 ]; do sleep 0.2; done
echo 1 >$s/stress_test_stop
cat $s/stress_test_status
grep '^mismatch' $s/stress_test_results
n=$(stress_res verify_mismatches)
[ "$n" -ge 3 ] || fail "$n mismatches"
# Each bad block once per pass over the region: exactly 3 per pass, and no other block.
[ "$(grep -c '^mismatch' $s/stress_test_results)" -ge 3 ] || fail "mismatches not listed"
grep '^mismatch' $s/stress_test_results | grep -qv -e '^mismatch block 77 ' \
	-e '^mismatch block 78 ' -e '^mismatch block 80 ' && fail "another block reported"
grep -q '^mismatch block 77 sector 0: expected run 2 gen [0-9]*, found data the engine did not write$' \
	$s/stress_test_results || fail "block 77"
grep -q '^mismatch block 78 sector 0: expected run 2 gen [0-9]*, found an older write (run 1 gen [0-9]*)$' \
	$s/stress_test_results || fail "block 78"
grep -q "^mismatch block 80 sector 0: expected run 2 gen [0-9]*, found block 79's data (run 2 gen [0-9]*)$" \
	$s/stress_test_results || fail "block 80"
case "$(cat $s/stress_test_status)" in
"failed: $n data mismatches (first at block 77)") ;;
*) fail "status: $(cat $s/stress_test_status)" ;;
esac
klog_since | grep -q 'stress run 4: mismatch: block 77 sector 0' || fail "not logged"
klog_since | grep -q 'stress run 4: End of test: FAILURE' || fail "no FAILURE"
dmsetup remove r0
