# Automatic passes every interval_hours: after a pass ends, the next starts an hour later
# (guest time: under icount, with the guest idle, an hour passes in moments), not before
# (not within 50 minutes).
# dmr-timing: icount
# dmr-timeout: 4000
# (Run under QEMU's instruction counting, 1 vCPU, by run_tests.sh.)
[ "${DMR_TEST_ICOUNT:-0}" = 1 ] || fail "needs guest time in instructions (run_tests.sh runs it so)"
load_module
disk=$(make_disk disk 16)
spare=$(make_disk spare 16)
len=$(sectors "$disk")
dmsetup create r0 --table "0 $len remap $disk $spare 0 $(sectors "$spare")"
s=/sys/kernel/dm_remap/r0/scanner
echo 1 >$s/interval_hours
echo start >$s/control
scan_wait_pass r0 1 120
[ "$(cat $s/state)" = idle ] || fail "state after the pass: $(cat $s/state)"
sleep 3000
[ "$(cat $s/passes)" = 1 ] || fail "a pass started before the hour: passes $(cat $s/passes)"
# An hour's timeout fires up to a few minutes late (the timer wheel's granularity at that
# range is 262 s with HZ=1000).
i=0
while [ "$(cat $s/passes)" -lt 2 ]; do
	i=$((i + 1))
	[ "$i" -le 20 ] || fail "no automatic pass 20 minutes after the hour: state $(cat $s/state)"
	sleep 60
done
echo "second pass done $((3000 + 60 * i)) s or less after the first"
echo 0 >$s/interval_hours
dmsetup remove r0
