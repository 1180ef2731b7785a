#!/bin/sh
# The guest half of scripts/bench (it runs this inside the VM; see docs/performance.md).
#
#   guest.sh ROUNDS RUNTIME_S ENTRIES LARGE_ENTRIES OUT_DEV [LOOKUP_SIZES]
#
# First, before any device exists, the table lookup on its own: tests/vm/lookup_bench.sh
# (/sys/kernel/dm_remap/lookup_benchmark with 1,000,000 lookups) for each number of
# entries in LOOKUP_SIZES (comma-separated; default 10000,100000,1000000; 0: none), its
# lines into setup.txt (`lookup_benchmark ...`). Then it
# builds, over one null_blk device without backing memory (I/O costs only the block
# layer's and the targets' own work):
#   raw          the null_blk device itself
#   linear       dm-linear over it
#   remap-empty  dm-remap over it, spare on brd, no remapped block
#   remap-table  dm-remap over it, spare on brd, ENTRIES remapped blocks, one block in 100
#                of the region fio uses (the first 100 * ENTRIES blocks), so ~1% of random
#                I/Os hit a remapped block
#   remap-instr-off  as remap-empty, with instrumentation off (feature argument no_stats):
#                remap-empty / remap-instr-off is the instrumentation's cost
#   remap-large  LARGE_ENTRIES remapped blocks, one in 100 of its region (the whole device);
#                left out when LARGE_ENTRIES is 0
#   remap-scan   as remap-empty, with the background scanner running at its default
#                settings the whole time: remap-scan / remap-empty is the scanner's cost to
#                foreground I/O
# then runs every fio workload on every configuration, ROUNDS times, the configurations
# in a random order within each round. Every configuration but remap-large does I/O to
# the first 100 * ENTRIES blocks. Then the presence runs: with all these removed, one
# empty dm-remap device and one dm-linear device, measured with 0 to 4 other (empty)
# dm-remap devices present. Every fio run is preceded and followed by a sync, which ends
# a phase of the instruction profile when scripts/bench --profile runs.
# Writes the fio JSON of every run, the CPU ticks the whole VM used during it (from
# /proc/stat), a description of the setup and the kernel's module symbols to a tar
# archive on OUT_DEV.
set -eu
rounds=$1
runtime=$2
entries=$3
large=$4
out_dev=$5
lookup_sizes=${6:-10000,100000,1000000}
out=/tmp/bench
mkdir -p "$out/raw"

fail() {
	echo "bench: $*" >&2
	exit 1
}

insmod "$DMR_MODULE"
# The table lookup alone (lookup_benchmark; issue 15): tests/vm/lookup_bench.sh.
sh /tests/vm/lookup_bench.sh "$lookup_sizes" 1000000 >"$out/lookup.txt" ||
	fail "lookup_benchmark failed: $(cat "$out/lookup.txt")"
# 1% of the 4 KiB blocks of each table's region are remapped.
most=$((large > entries ? large : entries))
gib=$(((most * 100 * 4096 + (1 << 30) - 1) >> 30))
insmod "$DMR_EXTRA_MODULES/null_blk.ko" nr_devices=1 gb="$gib" memory_backed=0 bs=512
main=/dev/nullb0
[ -b "$main" ] || fail "no null_blk device"
msec=$(blockdev --getsz "$main")
mblocks=$((msec / 8))
region=$((entries * 100))
# Spares: the remapped blocks plus room for the metadata copies (brd allocates pages only
# when written, so the nominal size costs nothing). ram0 table, ram1 empty, ram2 instr-off,
# ram3 large, ram4-ram7 the presence runs' other devices, ram8 scan.
sblocks=$((most + most / 4 + 8192))
insmod "$DMR_EXTRA_MODULES/brd.ko" rd_nr=9 rd_size=$((sblocks * 4))
ssec=$(blockdev --getsz /dev/ram0)
synth_table /dev/ram0 "$ssec" "$msec" "$entries" 100 >/dev/null || fail "synth_table failed"
[ "$large" = 0 ] || synth_table /dev/ram3 "$ssec" "$msec" "$large" 100 >/dev/null ||
	fail "synth_table failed"

# Guest seconds since boot, to the 10 ms tick (under icount: instructions / 1e9).
uptime_s() { cut -d' ' -f1 /proc/uptime; }
# Creates remap device $1 on spare $2 (more table arguments after), printing the seconds
# the constructor took (it loads the table).
create_timed() {
	name=$1
	spare=$2
	shift 2
	t0=$(uptime_s)
	dmsetup create "$name" --table "0 $msec remap $main $spare 0 $ssec $*"
	t1=$(uptime_s)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}

dmsetup create linear --table "0 $msec linear $main 0"
dmsetup create remap-empty --table "0 $msec remap $main /dev/ram1 0 $ssec"
dmsetup create remap-instr-off --table "0 $msec remap $main /dev/ram2 0 $ssec 1 no_stats"
dmsetup create remap-scan --table "0 $msec remap $main /dev/ram8 0 $ssec"
echo start >/sys/kernel/dm_remap/remap-scan/scanner/control
load_table=$(create_timed remap-table /dev/ram0)
have=$(dmsetup message remap-table 0 count | cut -d' ' -f1)
[ "$have" = "$entries" ] || fail "remap-table has $have remaps, want $entries"
configs="raw linear remap-empty remap-table remap-instr-off remap-scan"
if [ "$large" != 0 ]; then
	load_large=$(create_timed remap-large /dev/ram3)
	have=$(dmsetup message remap-large 0 count | cut -d' ' -f1)
	[ "$have" = "$large" ] || fail "remap-large has $have remaps, want $large"
	configs="$configs remap-large"
fi

dev_of() {
	case $1 in
	raw) echo "$main" ;;
	*) echo "/dev/mapper/$1" ;;
	esac
}
# name:fio arguments
workloads="randread-4k-qd1:--rw=randread,--bs=4k,--iodepth=1
randread-4k-qd32:--rw=randread,--bs=4k,--iodepth=32
randwrite-4k-qd1:--rw=randwrite,--bs=4k,--iodepth=1
randwrite-4k-qd32:--rw=randwrite,--bs=4k,--iodepth=32
seqread-128k-qd8:--rw=read,--bs=128k,--iodepth=8"

{
	echo "kernel $(uname -r)"
	echo "cpus $(grep -c ^processor /proc/cpuinfo)"
	echo "rounds $rounds"
	echo "runtime_s $runtime"
	echo "clock $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
	echo "icount ${DMR_TEST_ICOUNT:-0}"
	echo "entries $entries"
	echo "large_entries $large"
	cat "$out/lookup.txt"
	echo "main_blocks $mblocks"
	echo "region_blocks $region"
	echo "stride 100"
	echo "table_load_s $load_table"
	[ "$large" = 0 ] || echo "large_load_s $load_large"
	echo "user_hz 100"
	echo "fio $(fio --version)"
	echo "configs $configs"
	for c in $configs; do
		[ "$c" = raw ] || echo "table $c $(dmsetup table "$c")"
	done
} >"$out/setup.txt"

# busy and total ticks (USER_HZ) of all CPUs, from the first line of /proc/stat.
cpu_ticks() {
	awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8; t = b + $5 + $6; print b, t }' /proc/stat
}

# One fio run: run_fio NAME DEVICE SIZE_BYTES ARGS (comma-separated). Synced before and
# after, so that the k-th run (fio-order.txt) is phase 2k+1 of an instruction profile.
run_fio() {
	name=$1
	before=$(cpu_ticks)
	sync
	# shellcheck disable=SC2046
	fio --name="$name" --filename="$2" --size="$3" --ioengine=io_uring --direct=1 \
		--time_based --runtime="$runtime" --norandommap --randrepeat=0 --eta=never \
		--lat_percentiles=1 $(echo "$4" | tr ',' ' ') \
		--output-format=json --output="$out/raw/$name.json" ||
		fail "fio failed: $name"
	sync
	echo "$before $(cpu_ticks)" >"$out/raw/$name.cpu"
	echo "$name" >>"$out/fio-order.txt"
}
size_of() {
	case $1 in
	remap-large) echo $((mblocks * 4096)) ;;
	*) echo $((region * 4096)) ;;
	esac
}

round=1
while [ "$round" -le "$rounds" ]; do
	echo "$workloads" | while IFS=: read -r w args; do
		# A different random order of the configurations in every round (seeded by the
		# round and workload, so reruns repeat it): no configuration always runs first, last
		# or right after another.
		order=$(for c in $configs; do echo "$c"; done |
			awk -v round="$round" -v w="$w" \
				'BEGIN { # busybox has no cksum: hash the workload name here.
					for (i = 1; i <= length(w); i++) h = (h * 31 + index("abcdefghijklmnopqrstuvwxyz0123456789-", substr(w, i, 1))) % 1000003
					srand(round * 1000003 + h) } { print rand(), $0 }' |
			sort -n | cut -d' ' -f2 | tr '\n' ' ')
		for c in $order; do
			name="$round-$w-$c"
			run_fio "$name" "$(dev_of "$c")" "$(size_of "$c")" "$args"
			echo "$round $w $c $name" >>"$out/runs.txt"
		done
		echo "round $round/$rounds: $w done"
	done
	round=$((round + 1))
done
for c in $configs; do
	[ "$c" = raw ] || echo "status $c $(dmsetup status "$c")" >>"$out/setup.txt"
done
# dm-remap's own view of its CPU cost, from its instrumentation (on where it was on).
for c in $configs; do
	case $c in raw | linear | remap-instr-off) continue ;; esac
	d=/sys/kernel/dm_remap/$c/stats
	echo "self $c cpu_ns_per_io=$(cat $d/cpu_ns_per_io) cpu_map_ns=$(cat $d/cpu_map_ns) cpu_end_io_ns=$(cat $d/cpu_end_io_ns) map_calls=$(cat $d/map_calls)" >>"$out/setup.txt"
done
sc=/sys/kernel/dm_remap/remap-scan/scanner
echo "scanner state=$(cat $sc/state) blocks_scanned=$(cat $sc/blocks_scanned) passes=$(cat $sc/passes) rate_kib_s=$(cat $sc/rate_kib_s) speed_min_kib_s=$(cat $sc/speed_min_kib_s) speed_max_kib_s=$(cat $sc/speed_max_kib_s)" >>"$out/setup.txt"

# Presence: does the cost of one dm-remap device depend on which other devices exist?
for c in $configs; do
	[ "$c" = raw ] || dmsetup remove "$c"
done
dmsetup create p-linear --table "0 $msec linear $main 0"
dmsetup create p-remap --table "0 $msec remap $main /dev/ram1 0 $ssec"
presence_args="--rw=randread,--bs=4k,--iodepth=32"
for n in 0 1 2 3 4; do
	[ "$n" = 0 ] || dmsetup create "p-other$n" --table "0 $msec remap $main /dev/ram$((n + 3)) 0 $ssec"
	for c in p-remap p-linear; do
		name="presence-$n-$c"
		run_fio "$name" "/dev/mapper/$c" $((region * 4096)) "$presence_args"
		echo "$n $c $name" >>"$out/presence.txt"
	done
done
echo "presence runs done"
# Module symbols, to attribute an instruction profile to module code.
grep '\[' /proc/kallsyms >"$out/modules.kallsyms" || true
tar -cf "$out_dev" -C "$out" . || fail "cannot write results to $out_dev"
sync
echo "bench: results written"
