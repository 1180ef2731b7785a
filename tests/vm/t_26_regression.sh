# Baseline and regression: capture a baseline over a fast main device, slow it with
# dm-delay: `regression` becomes 1 and a dm event is raised; remove the delay and reset:
# it is 0 again (with another event), and stays 0 over fast windows.
# dmr-timing: icount
# (run_tests.sh runs this test in its own boot under QEMU's instruction counting, 1 vCPU:
# guest time is instructions, so identical windows repeat within ~0.1% whatever the host
# does, and the default threshold of 2% is what is tested. Under plain TCG identical
# windows varied by 200% on a busy CI host, and thresholds of 50%, 400% and 200% each
# failed there in turn.)
load_module
disk=$(make_disk disk 64)
spare=$(make_disk spare 16)
len=$(sectors "$disk")
dmsetup create slow --table "0 $len delay $disk 0 0"
dmsetup create r0 --table "0 $len remap /dev/mapper/slow $spare 0 $(sectors "$spare")"
b=/sys/kernel/dm_remap/r0/baseline
[ "$(cat $b/threshold_pct)" = 2 ] || fail "default threshold_pct $(cat $b/threshold_pct)"
[ "${DMR_TEST_ICOUNT:-0}" = 1 ] || fail "needs guest time in instructions (run_tests.sh runs it so)"
[ "$(cat $b/regression)" = 0 ] && [ "$(cat $b/captured)" = 0 ] || fail "fresh device"
grep -q 'no baseline' $b/comparison || fail "comparison: $(cat $b/comparison)"
# No complete window yet: nothing to capture.
echo 1 >$b/capture 2>/tmp/dmr-werr && fail "capture without a window succeeded"
grep -q 'No data' /tmp/dmr-werr || fail "capture without a window: $(cat /tmp/dmr-werr)"
# Nor a window without I/O.
echo 1 >/sys/kernel/dm_remap/r0/stats/window_secs
sleep 3
echo 1 >$b/capture 2>/tmp/dmr-werr && fail "capture of an idle window succeeded"
grep -q 'No data' /tmp/dmr-werr || fail "capture of an idle window: $(cat /tmp/dmr-werr)"
echo 20 >$b/min_samples
echo 2 >/sys/kernel/dm_remap/r0/stats/window_secs
events() { dmsetup info r0 | awk '/Event number/ { print $3 }'; }
# wait_for FILE VALUE SECONDS
wait_for() {
	_i=0
	while [ "$(cat "$1")" != "$2" ]; do
		_i=$((_i + 1))
		[ "$_i" -le "$3" ] || fail "$1 is $(cat "$1") after $3 s, want $2"
		sleep 1
	done
}
fio --name=bg --filename=/dev/mapper/r0 --rw=randread --bs=4k --direct=1 --ioengine=psync \
	--time_based --runtime=120 --size=16M --output=/tmp/dmr-bg.txt &
bg=$!
# Wait for a complete window with reads in it, then capture it.
i=0
while [ "$(cat /sys/kernel/dm_remap/r0/stats/window_read_iops)" -lt 20 ]; do
	i=$((i + 1)); [ "$i" -le 20 ] || fail "no window with reads"; sleep 1
done
echo 1 >$b/capture
[ "$(cat $b/captured)" = 1 ] && [ "$(cat $b/read_samples)" -ge 20 ] || fail "baseline: $(cat $b/read_samples) samples"
echo "baseline read mean $(cat $b/read_mean_ns) ns over $(cat $b/read_samples) reads"
sleep 3
[ "$(cat $b/regression)" = 0 ] || fail "regression without a change: $(cat $b/comparison)"
ev=$(events)
# 20 ms more per read.
dmsetup suspend slow
dmsetup reload slow --table "0 $len delay $disk 0 20"
dmsetup resume slow
wait_for $b/regression 1 12
cat $b/comparison
echo "read mean change: $(cat $b/read_mean_change_pct)%"
# Announced within a tick of the window that flipped it.
sleep 2
[ "$(events)" -gt "$ev" ] || fail "no dm event for the regression (events $ev -> $(events))"
# Delay removed, statistics reset: no window, no regression.
dmsetup suspend slow
dmsetup reload slow --table "0 $len delay $disk 0 0"
dmsetup resume slow
ev=$(events)
echo 1 >/sys/kernel/dm_remap/r0/stats/reset
[ "$(cat $b/regression)" = 0 ] || fail "regression after reset"
[ "$(cat $b/captured)" = 1 ] || fail "reset dropped the baseline"
sleep 2
[ "$(events)" -gt "$ev" ] || fail "no dm event when the regression ended"
# Fast windows again: stays 0.
sleep 5
[ "$(cat $b/regression)" = 0 ] || fail "regression over fast windows: $(cat $b/comparison)"
kill $bg
wait $bg || true
dmsetup remove r0
dmsetup remove slow
