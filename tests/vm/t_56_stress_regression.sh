# dmr-timing: icount
# regression_test: its first run records the baseline, a second on the same device passes
# (within the default 2% threshold: under icount the workload's cost repeats), and with
# dm-delay adding 2 ms per I/O under the main device it fails, with the change in percent;
# a run going on refuses another; "reset" forgets the baseline. Reads only: allowed with
# allow_writes 0.
load_module
disk=$(make_disk disk 64)
spare=$(make_disk spare 16)
len=$(sectors "$disk")
dmsetup create slow --table "0 $len delay $disk 0 0"
dmsetup create r0 --table "0 $len remap /dev/mapper/slow $spare 0 $(sectors "$spare")"
s=/sys/kernel/dm_remap/r0/stress
[ "$(cat $s/regression_test)" = none ] || fail "before any run"
echo 1 >$s/regression_test
[ "$(cat $s/regression_test)" = running ] || fail "not running"
if echo 1 >$s/regression_test 2>/dev/null; then fail "second run accepted"; fi
stress_wait
cat $s/regression_test
grep -Eq '^BASELINE recorded: mean latency [0-9]+ ns, [0-9]+ IOPS$' $s/regression_test ||
	fail "no baseline"
[ "$(stress_res type)" = 1 ] && [ "$(stress_res workers)" = 4 ] &&
	[ "$(stress_res queue_depth)" = 8 ] && [ "$(stress_res duration_ms)" = 2000 ] ||
	fail "not the fixed workload"
echo 1 >$s/regression_test
stress_wait
cat $s/regression_test
grep -Eq '^PASS [-+][0-9]+\.[0-9]% mean latency [0-9]+ ns \(baseline [0-9]+ ns\), [0-9]+ IOPS \(baseline [0-9]+\), threshold 2%$' \
	$s/regression_test || fail "same device: not PASS"
dmsetup suspend slow
dmsetup reload slow --table "0 $len delay $disk 0 2"
dmsetup resume slow
echo 1 >$s/regression_test
stress_wait
cat $s/regression_test
grep -Eq '^FAIL \+[0-9]+\.[0-9]% ' $s/regression_test || fail "2 ms delay: not FAIL"
pct=$(sed -n 's/^FAIL +\([0-9]*\)\..*/\1/p' $s/regression_test)
[ "$pct" -ge 100 ] || fail "2 ms delay: only +$pct%"
echo reset >$s/regression_test
[ "$(cat $s/regression_test)" = none ] || fail "reset"
grep -q '^regression_test: none$' $s/comprehensive_report || fail "report"
dmsetup remove r0
dmsetup remove slow
