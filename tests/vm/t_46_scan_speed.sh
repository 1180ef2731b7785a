# The scanner's throttle, judged in guest time: idle, it reads at speed_max_kib_s and no
# faster; under fio randread QD32 on the device it still makes progress at about
# speed_min_kib_s, and no more than a few times that.
# dmr-timing: icount
# (Run under QEMU's instruction counting, 1 vCPU, by run_tests.sh: guest time is
# instructions, so a busy host cannot change the rates.)
[ "${DMR_TEST_ICOUNT:-0}" = 1 ] || fail "needs guest time in instructions (run_tests.sh runs it so)"
load_module
disk=$(make_disk disk 1024)
spare=$(make_disk spare 16)
len=$(sectors "$disk")
dmsetup create r0 --table "0 $len remap $disk $spare 0 $(sectors "$spare")"
s=/sys/kernel/dm_remap/r0/scanner
uptime_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
# kib_s_over SECONDS: KiB/s the scanner read over the next SECONDS of guest time.
kib_s_over() {
	_b0=$(cat $s/blocks_scanned)
	_t0=$(uptime_ms)
	sleep "$1"
	_b1=$(cat $s/blocks_scanned)
	_t1=$(uptime_ms)
	echo $(((_b1 - _b0) * 4 * 1000 / (_t1 - _t0)))
}
echo 4096 >$s/speed_max_kib_s
echo start >$s/control
sleep 2
idle=$(kib_s_over 6)
echo "idle: $idle KiB/s at speed_max_kib_s 4096 (rate_kib_s says $(cat $s/rate_kib_s))"
[ "$idle" -le $((4096 * 105 / 100)) ] || fail "idle rate $idle KiB/s above speed_max 4096"
[ "$idle" -ge $((4096 * 80 / 100)) ] || fail "idle rate $idle KiB/s far below speed_max 4096"
# Busy: between the limits only while idle, so about speed_min.
echo 200000 >$s/speed_max_kib_s
echo 2000 >$s/speed_min_kib_s
fio --name=fg --filename=/dev/mapper/r0 --rw=randread --bs=4k --direct=1 --ioengine=io_uring \
	--iodepth=32 --time_based --runtime=10 --size=256M --output=/tmp/dmr-fg.txt &
fg=$!
sleep 3
busy=$(kib_s_over 6)
wait $fg || { cat /tmp/dmr-fg.txt; fail "fio failed"; }
echo "busy: $busy KiB/s at speed_min_kib_s 2000"
[ "$busy" -ge $((2000 * 80 / 100)) ] || fail "busy rate $busy KiB/s: no progress at speed_min 2000"
[ "$busy" -le $((2000 * 3)) ] || fail "busy rate $busy KiB/s: not throttled to about speed_min 2000"
echo stop >$s/control
dmsetup remove r0
