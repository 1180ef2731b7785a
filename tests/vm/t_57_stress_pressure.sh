# memory_pressure_test: holds the memory asked for while a mixed run goes on; the run has no
# I/O errors, no mismatches and no allocation failures of the I/O path; the memory is given
# back; asking for more than there is takes what can be spared (never the OOM killer) and
# says so.
load_module
disk=$(make_disk disk 64)
spare=$(make_disk spare 16)
len=$(sectors "$disk")
dmsetup create r0 --table "0 $len remap $disk $spare 0 $(sectors "$spare")"
s=/sys/kernel/dm_remap/r0/stress
echo 1 >$s/allow_writes
avail() { awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo; }
# back_to MIB: available memory is at least MIB within 10 s (the counters lag).
back_to() {
	for _i in 1 2 3 4 5 6 7 8 9 10; do
		[ "$(avail)" -ge "$1" ] && return 0
		sleep 1
	done
	return 1
}
before=$(avail)
mb=$((before / 2))
echo "$mb 3000" >$s/memory_pressure_test
sleep 1
held=$(avail)
stress_wait
after=$(avail)
echo "available: $before MiB before, $held during, $after after; asked $mb"
[ "$(cat $s/stress_test_status)" = done ] || fail "status $(cat $s/stress_test_status)"
[ "$(stress_res pressure_mb)" = "$mb" ] && [ "$(stress_res pressure_alloc_refused)" = 0 ] ||
	fail "held $(stress_res pressure_mb) MiB"
[ "$(stress_res type)" = 4 ] && [ "$(stress_res ios)" -gt 0 ] && [ "$(stress_res errors)" = 0 ] &&
	[ "$(stress_res verify_mismatches)" = 0 ] && [ "$(stress_res io_path_alloc_failures)" = 0 ] ||
	fail "the run under pressure"
[ "$held" -le $((before - mb + mb / 10)) ] || fail "memory not held ($held MiB available)"
back_to $((before - mb / 10)) || fail "memory not given back ($(avail) MiB available)"
# More than there is.
klog_mark
echo "1048576 1000" >$s/memory_pressure_test
stress_wait
echo "asked 1 TiB: held $(stress_res pressure_mb) MiB, refused $(stress_res pressure_alloc_refused)"
[ "$(cat $s/stress_test_status)" = done ] && [ "$(stress_res pressure_alloc_refused)" = 1 ] &&
	[ "$(stress_res pressure_mb)" -gt 0 ] && [ "$(stress_res pressure_mb)" -lt 1048576 ] ||
	fail "1 TiB"
klog_since | grep -Eq 'Out of memory|oom-kill|invoked oom-killer' && fail "OOM killer"
back_to $((before - mb / 10)) || fail "memory not given back after 1 TiB ($(avail) MiB)"
dmsetup remove r0
