#!/bin/sh
# The guest half of scripts/bench (it runs this inside the VM; see docs/performance.md).
#
#   guest.sh ROUNDS RUNTIME_S ENTRIES OUT_DEV
#
# Builds, over one null_blk device without backing memory (I/O costs only the block
# layer's and the targets' own work):
#   raw          the null_blk device itself
#   linear       dm-linear over it
#   remap-empty  dm-remap over it, spare on brd, no remapped block
#   remap-table  dm-remap over it, spare on brd, ENTRIES remapped blocks spread evenly so
#                that 1% of the blocks (and so ~1% of random I/Os) are remapped
#   remap-instr-off  as remap-empty, with instrumentation off (feature argument no_stats):
#                remap-empty / remap-instr-off is the instrumentation's cost
# then runs every fio workload on every configuration, ROUNDS times, the configurations
# in a random order within each round, and writes the fio JSON of every run, the CPU
# time the whole VM used during it (from /proc/stat) and a description of the setup to a
# tar archive on OUT_DEV.
set -eu
rounds=$1
runtime=$2
entries=$3
out_dev=$4
out=/tmp/bench
mkdir -p "$out/raw"

fail() {
	echo "bench: $*" >&2
	exit 1
}

insmod "$DMR_MODULE"
# 1% of the main device's 4 KiB blocks are remapped.
gib=$(((entries * 100 * 4096 + (1 << 30) - 1) >> 30))
insmod "$DMR_EXTRA_MODULES/null_blk.ko" nr_devices=1 gb="$gib" memory_backed=0 bs=512
main=/dev/nullb0
[ -b "$main" ] || fail "no null_blk device"
msec=$(blockdev --getsz "$main")
mblocks=$((msec / 8))
stride=$((mblocks / entries))
# Spare: the remapped blocks plus room for the metadata copies (brd allocates pages only
# when written, so its nominal size costs nothing).
sblocks=$((entries + entries / 4 + 8192))
insmod "$DMR_EXTRA_MODULES/brd.ko" rd_nr=3 rd_size=$((sblocks * 4))
ssec=$(blockdev --getsz /dev/ram0)
synth_table /dev/ram0 "$ssec" "$msec" "$entries" "$stride" >/dev/null || fail "synth_table failed"

dmsetup create linear --table "0 $msec linear $main 0"
dmsetup create remap-empty --table "0 $msec remap $main /dev/ram1 0 $ssec"
dmsetup create remap-instr-off --table "0 $msec remap $main /dev/ram2 0 $ssec 1 no_stats"
t0=$(cut -d' ' -f1 /proc/uptime)
dmsetup create remap-table --table "0 $msec remap $main /dev/ram0 0 $ssec"
t1=$(cut -d' ' -f1 /proc/uptime)
have=$(dmsetup message remap-table 0 count | cut -d' ' -f1)
[ "$have" = "$entries" ] || fail "remap-table has $have remaps, want $entries"

dev_of() {
	case $1 in
	raw) echo "$main" ;;
	*) echo "/dev/mapper/$1" ;;
	esac
}
configs="raw linear remap-empty remap-table remap-instr-off"
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
	echo "entries $entries"
	echo "main_blocks $mblocks"
	echo "stride $stride"
	echo "table_load_s $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
	echo "user_hz 100"
	echo "fio $(fio --version)"
	echo "configs $configs"
	for c in linear remap-empty remap-table remap-instr-off; do
		echo "table $c $(dmsetup table "$c")"
	done
} >"$out/setup.txt"

# busy and total ticks (USER_HZ) of all CPUs, from the first line of /proc/stat.
cpu_ticks() {
	awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8; t = b + $5 + $6; print b, t }' /proc/stat
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
			before=$(cpu_ticks)
			# shellcheck disable=SC2046
			fio --name="$w" --filename="$(dev_of "$c")" --ioengine=io_uring --direct=1 \
				--time_based --runtime="$runtime" --norandommap --randrepeat=0 --eta=never \
				--lat_percentiles=1 $(echo "$args" | tr ',' ' ') \
				--output-format=json --output="$out/raw/$name.json" ||
				fail "fio failed: $name"
			echo "$before $(cpu_ticks)" >"$out/raw/$name.cpu"
			echo "$round $w $c $name" >>"$out/runs.txt"
		done
		echo "round $round/$rounds: $w done"
	done
	round=$((round + 1))
done
for c in remap-empty remap-table remap-instr-off; do
	echo "status $c $(dmsetup status "$c")" >>"$out/setup.txt"
done
# dm-remap's own view of its CPU cost, from its instrumentation (on where it was on).
for c in remap-empty remap-table; do
	d=/sys/kernel/dm_remap/$c/stats
	echo "self $c cpu_ns_per_io=$(cat $d/cpu_ns_per_io) cpu_map_ns=$(cat $d/cpu_map_ns) cpu_end_io_ns=$(cat $d/cpu_end_io_ns) map_calls=$(cat $d/map_calls)" >>"$out/setup.txt"
done
tar -cf "$out_dev" -C "$out" . || fail "cannot write results to $out_dev"
sync
echo "bench: results written"
