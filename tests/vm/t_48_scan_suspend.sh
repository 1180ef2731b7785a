# A suspend while the scanner narrows down a chunk of slow blocks (16 blocks at 1.5 s per
# read: about 70 s to judge them all) returns within one block's judgement, not the
# chunk's; after the resume the scan goes on from the first slow block it had not
# relocated, and the pass relocates each slow block once.
# dmr-timing: icount
# (Run under QEMU's instruction counting, 1 vCPU, by run_tests.sh: dm-delay's delays and
# the suspend's duration are guest time, whatever the host does.)
[ "${DMR_TEST_ICOUNT:-0}" = 1 ] || fail "needs guest time in instructions (run_tests.sh runs it so)"
load_module
disk=$(make_disk disk 32)
spare=$(make_disk spare 16)
len=$(sectors "$disk")
printf '0 128 delay %s 0 1500 %s 0 0\n128 %s linear %s 128\n' "$disk" "$disk" \
	$((len - 128)) "$disk" >/tmp/dmr-slowtable
dmsetup create slowmain /tmp/dmr-slowtable
dmsetup create r0 --table "0 $len remap /dev/mapper/slowmain $spare 0 $(sectors "$spare")"
s=/sys/kernel/dm_remap/r0/scanner
echo 100000 >$s/slow_threshold_us
uptime_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
echo start >$s/control
sleep 8
[ "$(cat $s/blocks_scanned)" -ge 1 ] || fail "not narrowing yet: $(cat $s/blocks_scanned) blocks read"
t0=$(uptime_ms)
dmsetup suspend r0
t1=$(uptime_ms)
echo "suspend took $((t1 - t0)) ms while narrowing (blocks read $(cat $s/blocks_scanned), position $(cat $s/position))"
[ $((t1 - t0)) -lt 10000 ] || fail "suspend took $((t1 - t0)) ms: it waited for the chunk"
# It goes on from the first slow block it has not relocated (block 0 here), not from the
# end of the chunk.
p=$(cat $s/position)
[ "$p" -lt 16 ] || fail "position $p after the interrupted chunk: the slow blocks were skipped"
dmsetup resume r0
scan_wait_pass r0 1 300
[ "$(cat $s/slow)" = 16 ] && [ "$(cat $s/relocated)" = 16 ] ||
	fail "slow $(cat $s/slow), relocated $(cat $s/relocated), want 16 each"
dmsetup remove r0
dmsetup remove slowmain
