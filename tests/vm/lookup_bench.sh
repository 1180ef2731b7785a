#!/bin/sh
# The table lookup alone: /sys/kernel/dm_remap/lookup_benchmark for each size of SIZES
# (comma-separated numbers of entries; 0: none), LOOKUPS lookups each (half hits, half
# misses). Run by bench/guest.sh (scripts/bench), or on its own under icount:
#
#   DMR_KERNEL_BENCH=1 make -s modules
#   DMR_KERNEL_BENCH=1 DMR_VM_ICOUNT=1 DMR_VM_CPUS=1 scripts/vm-run --no-build \
#       tests/vm/lookup_bench.sh [SIZES [LOOKUPS]]
#
# Prints one line per size, as scripts/bench records it in setup.txt:
#   lookup_benchmark ENTRIES LOOKUPS NS_PER_LOOKUP NS_PER_INSERT hit=H miss=M walk_hit=WH walk_miss=WM
# (the file's line, then the kernel log's costs of a hit, a miss and the tree walk alone).
set -eu
. /tests/vm/lib.sh
sizes=${1:-10000,100000,1000000}
lookups=${2:-1000000}
load_module
for n in $(echo "$sizes" | tr ',' ' '); do
	[ "$n" = 0 ] && continue
	echo "$n $lookups" >/sys/kernel/dm_remap/lookup_benchmark ||
		fail "lookup_benchmark: writing '$n $lookups' failed"
	costs=$(dmesg | sed -n "s/.*lookup_benchmark: $n entries, $lookups lookups .*(hit \([0-9]*\), miss \([0-9]*\); tree walk alone: hit \([0-9]*\), miss \([0-9]*\)).*/hit=\1 miss=\2 walk_hit=\3 walk_miss=\4/p" | tail -n 1)
	echo "lookup_benchmark $(cat /sys/kernel/dm_remap/lookup_benchmark) $costs"
done
