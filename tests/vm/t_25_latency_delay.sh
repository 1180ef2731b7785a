# With dm-delay adding 20 ms under the main device, the median read and write latencies
# the target reports are within 10% of 20 ms.
load_module
disk=$(make_disk disk 64)
spare=$(make_disk spare 16)
len=$(sectors "$disk")
dmsetup create slow --table "0 $len delay $disk 0 20"
dmsetup create r0 --table "0 $len remap /dev/mapper/slow $spare 0 $(sectors "$spare")"
fio_ios /dev/mapper/r0 randread 60
fio_ios /dev/mapper/r0 randwrite 40
d=/sys/kernel/dm_remap/r0/latency
for dir in read write; do
	p50=$(cat $d/${dir}_p50_ns)
	echo "$dir: p50 $p50 ns, mean $(cat $d/${dir}_mean_ns) ns, max $(cat $d/${dir}_max_ns) ns"
	[ "$p50" -ge 18000000 ] && [ "$p50" -le 22000000 ] || fail "$dir p50 $p50 ns, want 20 ms +-10%"
done
dmsetup remove r0
dmsetup remove slow
