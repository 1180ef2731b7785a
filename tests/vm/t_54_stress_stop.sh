# Stress runs end early and cleanly: stress_test_stop returns when the run's I/O is over
# (status stopped, the device's counters moved by exactly what the results report); a
# suspend, a reload and a removal stop a run (removal does not wait for its duration and
# is not refused); the module cannot be unloaded under a run (the device holds it), the
# run goes on, another device serves I/O and runs its own meanwhile, and after the removal
# the module unloads.
load_module
disk=$(make_disk disk 64)
spare=$(make_disk spare 16)
len=$(sectors "$disk")
table="0 $len remap $disk $spare 0 $(sectors "$spare")"
dmsetup create r0 --table "$table"
s=/sys/kernel/dm_remap/r0/stress
st=/sys/kernel/dm_remap/r0/stats
echo 1 >$s/allow_writes
# stopped RUN_TYPE REASON: the last run stopped for REASON well before its 60 s.
stopped() {
	[ "$(cat $s/stress_test_status)" = stopped ] && [ "$(stress_res stop_reason)" = "$2" ] &&
		[ "$(stress_res elapsed_ms)" -lt 30000 ] && [ "$(stress_res type)" = "$1" ] &&
		[ "$(stress_res errors)" = 0 ] && [ "$(stress_res verify_mismatches)" = 0 ] ||
		fail "type $1, $2: $(cat $s/stress_test_status) $(stress_res stop_reason)"
}
r0=$(cat $st/reads)
w0=$(cat $st/writes)
echo "4 8 60000 16" >$s/stress_test_start
sleep 1
echo 1 >$s/stress_test_stop
# The stop returned after the run's last I/O: nothing moves any more.
r1=$(cat $st/reads)
w1=$(cat $st/writes)
stopped 4 stress_test_stop
[ "$(stress_res reads)" = $((r1 - r0)) ] && [ "$(stress_res writes)" = $((w1 - w0)) ] ||
	fail "stopped run: device counted $((r1 - r0)) reads, $((w1 - w0)) writes"
sleep 0.5
[ "$(cat $st/reads)" = "$r1" ] && [ "$(cat $st/writes)" = "$w1" ] || fail "I/O after the stop"
# Suspend.
echo "1 4 60000 8" >$s/stress_test_start
sleep 1
dmsetup suspend r0
stopped 1 "device suspended"
dmsetup resume r0
# Reload (the old table is suspended): the new table's runs check nothing the old one's wrote.
echo "3 4 60000 8" >$s/stress_test_start
sleep 1
dmsetup reload r0 --table "$table"
dmsetup resume r0
stopped 3 "device suspended"
echo "0 2 500" >$s/stress_test_start
stress_wait
[ "$(stress_res verified_blocks)" = 0 ] && [ "$(cat $s/stress_test_status)" = done ] ||
	fail "after a reload"
# Unload under a run: refused, the run goes on.
echo "5 4 60000 8" >$s/stress_test_start
sleep 1
expect_fail rmmod dm_remap
grep -q '^running' $s/stress_test_status || fail "the run ended at rmmod"
# Meanwhile another device serves I/O and runs its own stress run.
disk2=$(make_disk disk2 16)
spare2=$(make_disk spare2 4)
dmsetup create r2 --table "0 $(sectors "$disk2") remap $disk2 $spare2 0 $(sectors "$spare2")"
[ "$(cat /sys/kernel/dm_remap/r2/stress/stress_test_status)" = idle ] || fail "r2 status"
random_file /tmp/dmr-r2 256
dd if=/tmp/dmr-r2 of=/dev/mapper/r2 bs=64k oflag=direct 2>/dev/null
same_bytes /dev/mapper/r2 0 /tmp/dmr-r2
echo "1 2 1000" >/sys/kernel/dm_remap/r2/stress/stress_test_start
stress_wait 60 r2
[ "$(cat /sys/kernel/dm_remap/r2/stress/stress_test_status)" = done ] || fail "r2 run"
grep -q '^running' $s/stress_test_status || fail "r0's run ended"
dmsetup remove r2
# Removal: not refused, and quick (the run stops at the suspend).
t0=$(date +%s)
dmsetup remove r0
[ $(($(date +%s) - t0)) -lt 30 ] || fail "removal waited for the run"
[ ! -e $s ] || fail "directory still there"
rmmod dm_remap
