# Stress engine, every type: real I/O through the dm device, and the device's own counters
# (stats/reads, stats/writes) move by exactly the reads and writes the results report; no
# errors, no mismatches; reads check what earlier writes left; a remap-heavy run remaps and
# moves back blocks and leaves the table as it found it; the results file has every
# documented key with the run's parameters echoed.
load_module
disk=$(make_disk disk 64)
spare=$(make_disk spare 16)
len=$(sectors "$disk")
dmsetup create r0 --table "0 $len remap $disk $spare 0 $(sectors "$spare")"
s=/sys/kernel/dm_remap/r0/stress
st=/sys/kernel/dm_remap/r0/stats
[ "$(cat $s/stress_test_status)" = idle ] || fail "status before any run"
[ -z "$(cat $s/stress_test_results)" ] || fail "results before any run"
echo 1 >$s/allow_writes
klog_mark
n=0
for t in "2 2 1500 4" "0 4 1000 8" "1 4 1000 8" "3 4 1000 8" "4 4 1500 8" "5 4 2000 8" \
	"4 4 1000 8 16" "2 3 1000 2 64"; do
	n=$((n + 1))
	set -- $t
	r0=$(cat $st/reads)
	w0=$(cat $st/writes)
	echo "$t" >$s/stress_test_start
	stress_wait
	dr=$(($(cat $st/reads) - r0))
	dw=$(($(cat $st/writes) - w0))
	reads=$(stress_res reads)
	writes=$(stress_res writes)
	echo "type $1: $reads reads, $writes writes (device: $dr, $dw), verified $(stress_res verified_blocks), remaps $(stress_res remaps)"
	[ "$(cat $s/stress_test_status)" = done ] || fail "$t: $(cat $s/stress_test_status)"
	[ "$reads" = "$dr" ] && [ "$writes" = "$dw" ] || fail "$t: device counted $dr reads, $dw writes"
	[ "$(stress_res ios)" = $((reads + writes)) ] && [ $((reads + writes)) -gt 0 ] || fail "$t: ios"
	io=$((${5:-4} * 1024))
	[ "$(stress_res run)" = "$n" ] && [ "$(stress_res type)" = "$1" ] &&
		[ "$(stress_res workers)" = "$2" ] && [ "$(stress_res duration_ms)" = "$3" ] &&
		[ "$(stress_res queue_depth)" = "${4:-8}" ] && [ "$(stress_res io_bytes)" = "$io" ] ||
		fail "$t: parameters not echoed"
	[ "$(stress_res bytes)" = $(((reads + writes) * io)) ] || fail "$t: bytes"
	[ "$(stress_res errors)" = 0 ] && [ "$(stress_res verify_mismatches)" = 0 ] ||
		fail "$t: errors or mismatches"
	[ $(($(stress_res verified_blocks) + $(stress_res unverified_blocks))) = $((reads * io / 4096)) ] ||
		fail "$t: every block read is verified or not"
	case $1 in
	0 | 1) [ "$writes" = 0 ] && [ "$(stress_res verified_blocks)" -gt 0 ] || fail "$t: reads" ;;
	2 | 3) [ "$reads" = 0 ] || fail "$t: writes only" ;;
	*) [ "$reads" -gt 0 ] && [ "$writes" -gt 0 ] || fail "$t: reads and writes" ;;
	esac
	if [ "$1" = 5 ]; then
		[ "$(stress_res remaps)" -gt 0 ] && [ "$(stress_res remaps)" = "$(stress_res unremaps)" ] &&
			[ "$(stress_res remap_errors)" = 0 ] || fail "$t: remaps"
		[ "$(dmsetup message r0 0 count)" = "0 0" ] || fail "$t: table not as before"
	fi
	# Latency figures in order.
	[ "$(stress_res latency_mean_ns)" -gt 0 ] &&
		[ "$(stress_res latency_p50_ns)" -le "$(stress_res latency_p99_ns)" ] &&
		[ "$(stress_res latency_p99_ns)" -le "$(stress_res latency_p999_ns)" ] ||
		fail "$t: latency figures"
done
# Every documented key, one "key value" line each.
for k in run type type_name workers queue_depth io_bytes duration_ms elapsed_ms status \
	region_blocks ios reads writes bytes read_bytes write_bytes read_iops write_iops read_mb_s \
	write_mb_s latency_mean_ns latency_p50_ns latency_p99_ns latency_p999_ns latency_max_ns \
	cpu_ns_per_io errors read_errors write_errors verify_mismatches verified_blocks \
	unverified_blocks remaps unremaps remap_errors pressure_mb pressure_alloc_refused \
	io_path_alloc_failures; do
	grep -Eq "^$k [a-z0-9_.]+$" $s/stress_test_results || fail "results: no $k"
done
awk 'NF != 2 { exit 1 }' $s/stress_test_results || fail "results: a line is not 'key value'"
[ "$(stress_res region_blocks)" = 16384 ] && [ "$(stress_res type_name)" = sequential_write ] ||
	fail "results: region or name"
grep -q '^read_mb_s [0-9]*\.[0-9][0-9]$' $s/stress_test_results || fail "results: MB/s format"
# The log: parameters at the start, the verdict at the end, of every run.
[ "$(klog_since | grep -c 'stress run [0-9]*: type ')" = $n ] &&
	[ "$(klog_since | grep -c 'End of test: SUCCESS')" = $n ] || fail "kernel log"
# comprehensive_report lists every run.
[ "$(grep -c '^run [0-9]*: ' $s/comprehensive_report)" = $n ] || fail "report"
grep -q '^== statistics ==' $s/comprehensive_report || fail "report: statistics"
# 32 workers at queue depth 32, remap-heavy: no errors, no mismatches.
echo "5 32 3000 32" >$s/stress_test_start
stress_wait
echo "32 x 32 remap-heavy: $(stress_res ios) I/Os, $(stress_res remaps) remaps, $(stress_res verified_blocks) blocks verified"
[ "$(cat $s/stress_test_status)" = done ] && [ "$(stress_res errors)" = 0 ] &&
	[ "$(stress_res verify_mismatches)" = 0 ] && [ "$(stress_res remaps)" -gt 0 ] ||
	fail "32 x 32: $(cat $s/stress_test_status)"
dmsetup remove r0
# Over a main device that takes 200 ms per I/O (dm-delay), 32 workers at queue depth 32
# keep over 1,000 I/Os in flight through the dm device at once.
dmsetup create slow --table "0 $len delay $disk 0 200"
dmsetup create r1 --table "0 $len remap /dev/mapper/slow $spare 0 $(sectors "$spare")"
for d in /sys/block/dm-*; do [ "$(cat $d/dm/name)" = r1 ] && dm=$d; done
s=/sys/kernel/dm_remap/r1/stress
echo 1 >$s/allow_writes
echo "4 32 3000 32" >$s/stress_test_start
max=0
for i in 1 2 3 4 5 6 7 8 9 10; do
	f=$(awk '{ print $1 + $2 }' $dm/inflight)
	[ "$f" -gt "$max" ] && max=$f
	sleep 0.2
done
stress_wait 120 r1
echo "32 x 32 over a 200 ms device: most in flight $max, $(stress_res ios r1) I/Os"
[ "$max" -ge 1000 ] || fail "at most $max I/Os in flight"
[ "$(cat $s/stress_test_status)" = done ] && [ "$(stress_res errors r1)" = 0 ] &&
	[ "$(stress_res verify_mismatches r1)" = 0 ] || fail "over dm-delay: $(cat $s/stress_test_status)"
dmsetup remove r1
dmsetup remove slow
