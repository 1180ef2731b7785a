# /sys/kernel/dm_remap/<dev>/stats counts exactly what was done: fixed numbers of reads,
# writes, discards and flushes and their bytes; remap hits, errors, remaps and metadata
# commits; the switch (sysfs and the no_stats feature argument) and reset.
load_module
disk=$(make_disk disk 64)
spare=$(make_disk spare 16)
len=$(sectors "$disk")
main=$(bad_main badmain "$disk" 5000)
dmsetup create r0 --table "0 $len remap $main $spare 0 $(sectors "$spare")"
d=/sys/kernel/dm_remap/r0
[ -d "$d/stats" ] || fail "no $d/stats"
[ "$(cat $d/stats/enabled)" = 1 ] || fail "instrumentation not on by default"
for f in reads writes read_bytes write_bytes flushes discards remap_hits errors_returned; do
	[ "$(cat $d/stats/$f)" = 0 ] || fail "stats/$f starts at $(cat $d/stats/$f)"
done

# fio stays in the first 16 MiB: block 5000 fails.
fio_ios /dev/mapper/r0 randread 1000
fio --name=w --filename=/dev/mapper/r0 --rw=randwrite --bs=8k --direct=1 --ioengine=psync \
	--number_ios=300 --size=4M --output=/tmp/dmr-fio.txt || fail "fio write"
[ "$(cat $d/stats/reads)" = 1000 ] || fail "reads: $(cat $d/stats/reads), want 1000"
[ "$(cat $d/stats/read_bytes)" = $((1000 * 4096)) ] || fail "read_bytes: $(cat $d/stats/read_bytes)"
[ "$(cat $d/stats/writes)" = 300 ] || fail "writes: $(cat $d/stats/writes), want 300"
[ "$(cat $d/stats/write_bytes)" = $((300 * 8192)) ] || fail "write_bytes: $(cat $d/stats/write_bytes)"
[ "$(cat $d/stats/map_calls)" = 1300 ] || fail "map_calls: $(cat $d/stats/map_calls)"
# The histogram holds every read; percentiles are ordered.
[ "$(awk '{ n += $3 } END { print n }' $d/latency/read_histogram)" = 1000 ] ||
	fail "read histogram: $(cat $d/latency/read_histogram)"
p50=$(cat $d/latency/read_p50_ns)
p99=$(cat $d/latency/read_p99_ns)
max=$(cat $d/latency/read_max_ns)
mean=$(cat $d/latency/read_mean_ns)
[ "$p50" -gt 0 ] && [ "$p50" -le "$p99" ] && [ "$p99" -le "$max" ] && [ "$mean" -gt 0 ] ||
	fail "read latency: mean $mean p50 $p50 p99 $p99 max $max"
[ "$(cat $d/stats/cpu_ns_per_io)" -gt 0 ] || fail "no CPU cost measured"
echo "reads: mean $mean p50 $p50 p99 $p99 max $max ns; cpu $(cat $d/stats/cpu_ns_per_io) ns/io"

# Discards: 10 of 4 KiB, one request each.
fio --name=t --filename=/dev/mapper/r0 --rw=trim --bs=4k --number_ios=10 --size=40k \
	--ioengine=psync --output=/tmp/dmr-fio.txt || fail "fio trim"
[ "$(cat $d/stats/discards)" = 10 ] || fail "discards: $(cat $d/stats/discards), want 10"
# Flushes: every flush request sends one copy to the spare device, which counts it
# (field 16 of its stat file), so both must count the same.
spare_flushes() { awk '{ print $16 }' "/sys/block/$(basename "$spare")/stat"; }
before=$(spare_flushes)
fio --name=f --filename=/dev/mapper/r0 --rw=write --bs=4k --number_ios=20 --size=80k \
	--direct=1 --ioengine=psync --fsync=1 --output=/tmp/dmr-fio.txt || fail "fio fsync"
fl=$(cat $d/stats/flushes)
echo "20 writes with fsync: $fl flushes counted, $(($(spare_flushes) - before)) reached the spare"
[ "$fl" -ge 10 ] && [ "$fl" = $(($(spare_flushes) - before)) ] || fail "flushes: $fl"

# The failing block: a read error returned, then a write remaps it.
expect_fail dd if=/dev/mapper/r0 of=/dev/null bs=4096 skip=5000 count=1 iflag=direct
[ "$(cat $d/stats/main_read_errors)" -ge 1 ] || fail "main_read_errors: $(cat $d/stats/main_read_errors)"
[ "$(cat $d/stats/errors_returned)" = 1 ] || fail "errors_returned: $(cat $d/stats/errors_returned)"
[ "$(cat $d/stats/main_read_errors)" = "$(status_field r0 3)" ] || fail "read errors differ from status"
commits=$(cat $d/stats/metadata_commits)
seq=$(cat $d/metadata/sequence)
dd if=/dev/zero of=/dev/mapper/r0 bs=4096 seek=5000 count=1 oflag=direct 2>/dev/null || fail "write to the failing block"
[ "$(cat $d/stats/auto_remaps)" = 1 ] || fail "auto_remaps: $(cat $d/stats/auto_remaps)"
[ "$(cat $d/remaps/remapped)" = 1 ] && [ "$(cat $d/remaps/auto)" = 1 ] || fail "remaps/: $(cat $d/remaps/remapped) $(cat $d/remaps/auto)"
[ "$(cat $d/stats/metadata_commits)" = $((commits + 1)) ] || fail "metadata_commits: $(cat $d/stats/metadata_commits)"
[ "$(cat $d/metadata/sequence)" = $((seq + 1)) ] || fail "sequence: $(cat $d/metadata/sequence), was $seq"
[ "$(cat $d/metadata/copies_valid)" = 5 ] && [ "$(cat $d/metadata/copies)" = 5 ] || fail "copies"
[ "$(cat $d/stats/metadata_bytes)" = 2560 ] || fail "metadata_bytes: $(cat $d/stats/metadata_bytes)"
[ "$(cat $d/stats/metadata_commit_ns)" -gt 0 ] || fail "commit latency not measured"
age=$(cat $d/metadata/last_commit_age_ms)
[ "$age" -ge 0 ] && [ "$age" -lt 60000 ] || fail "last_commit_age_ms: $age"
# Reads of the remapped block are remap hits; a manual remap counts as one.
hits=$(cat $d/stats/remap_hits)
for i in 1 2 3 4 5 6 7 8 9 10; do
	dd if=/dev/mapper/r0 of=/dev/null bs=4096 skip=5000 count=1 iflag=direct 2>/dev/null
done
[ "$(cat $d/stats/remap_hits)" = $((hits + 10)) ] || fail "remap_hits: $(cat $d/stats/remap_hits), was $hits"
dmsetup message r0 0 remap 7
[ "$(cat $d/stats/manual_remaps)" = 1 ] && [ "$(cat $d/remaps/manual)" = 1 ] || fail "manual_remaps"
[ "$(cat $d/remaps/spare_free)" = $(($(cat $d/remaps/spare_blocks) - 2)) ] || fail "spare_free: $(cat $d/remaps/spare_free)"

# Switched off: nothing counted; on again: counted.
reads=$(cat $d/stats/reads)
echo 0 >$d/stats/enabled
# A suspend and resume of the same table keeps the switch where it is.
dmsetup suspend r0
dmsetup resume r0
[ "$(cat $d/stats/enabled)" = 0 ] || fail "resume switched counting back on"
fio_ios /dev/mapper/r0 randread 50 2>/dev/null
[ "$(cat $d/stats/reads)" = "$reads" ] || fail "counted while off"
echo 1 >$d/stats/enabled
fio_ios /dev/mapper/r0 randread 50
[ "$(cat $d/stats/reads)" = $((reads + 50)) ] || fail "not counted after switching on"

# A reload keeps the counters; no_stats switches counting off and shows in the table.
dmsetup reload r0 --table "0 $len remap $main $spare 0 $(sectors "$spare") 1 no_stats"
dmsetup suspend r0
dmsetup resume r0
dmsetup table r0 | grep -q ' 1 no_stats$' || fail "table: $(dmsetup table r0)"
[ "$(cat $d/stats/enabled)" = 0 ] || fail "no_stats did not switch counting off"
[ "$(cat $d/stats/reads)" = $((reads + 50)) ] || fail "reload lost the counters"
fio_ios /dev/mapper/r0 randread 50
[ "$(cat $d/stats/reads)" = $((reads + 50)) ] || fail "counted with no_stats"

# reset: counters and latency start again; the table's own counters (status) stay.
echo 1 >$d/stats/reset
for f in reads writes read_bytes discards flushes remap_hits auto_remaps metadata_commits; do
	[ "$(cat $d/stats/$f)" = 0 ] || fail "stats/$f is $(cat $d/stats/$f) after reset"
done
[ "$(cat $d/latency/read_max_ns)" = 0 ] || fail "read_max_ns after reset: $(cat $d/latency/read_max_ns)"
[ -z "$(cat $d/latency/read_histogram)" ] || fail "histogram after reset"
[ "$(cat $d/remaps/remapped)" = 2 ] || fail "reset changed remaps/"
echo 1 >$d/stats/enabled
fio_ios /dev/mapper/r0 randread 100
[ "$(cat $d/stats/reads)" = 100 ] || fail "reads after reset: $(cat $d/stats/reads)"
grep -q '^reads: 100 ' $d/stats/summary || fail "summary: $(cat $d/stats/summary)"
grep -q '^r0 reads=100 ' /sys/kernel/dm_remap/performance_stats ||
	fail "performance_stats: $(cat /sys/kernel/dm_remap/performance_stats)"
dmsetup remove r0
dmsetup remove badmain
