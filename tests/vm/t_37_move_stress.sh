# Concurrency: fio writers with crc32c verification and readers run while `remap` and
# `unremap` messages move the same blocks back and forth, for DMR_TEST_STRESS_SECS seconds
# (default 60; longer by hand, see docs/development.md): zero verification errors, zero I/O
# errors, no kernel warning.
load_module
main=$(make_disk main 32)
spare=$(make_disk spare 16)
dmsetup create r0 --table "0 $(sectors "$main") remap $main $spare 0 $(sectors "$spare")"
secs=${DMR_TEST_STRESS_SECS:-60}
end=$(($(date +%s) + secs))
# Blocks 0..2047 (8 MiB): two fio jobs of 4 MiB each.
(
	i=0
	while [ "$(date +%s)" -lt "$end" ]; do
		b=$(((i * 7919 + 13) % 2048))
		dmsetup message r0 0 remap "$b" >/dev/null 2>&1 || true
		c=$(((i * 104729 + 5) % 2048))
		dmsetup message r0 0 unremap "$c" >/dev/null 2>&1 || true
		i=$((i + 1))
	done
	echo "$i" >/tmp/dmr-moves
) &
mover=$!
(
	n=0
	while [ "$(date +%s)" -lt "$end" ]; do
		dd if=/dev/mapper/r0 of=/dev/null bs=64k count=128 iflag=direct 2>/tmp/dmr-rd.err ||
			{ cat /tmp/dmr-rd.err; exit 1; }
		n=$((n + 1))
	done
	echo "$n" >/tmp/dmr-reads
) &
reader=$!
runs=0
while [ "$(date +%s)" -lt "$end" ]; do
	fio --name=v --filename=/dev/mapper/r0 --rw=randwrite --bs=4k --size=4M --numjobs=2 \
		--offset_increment=4M --ioengine=io_uring --direct=1 --iodepth=8 --verify=crc32c \
		--do_verify=1 --verify_fatal=1 --randrepeat=0 --group_reporting \
		--output=/tmp/dmr-fio.txt || { cat /tmp/dmr-fio.txt; fail "fio failed in run $runs"; }
	grep -q 'err= 0' /tmp/dmr-fio.txt || { cat /tmp/dmr-fio.txt; fail "fio err != 0 in run $runs"; }
	runs=$((runs + 1))
done
wait "$mover" || fail "mover failed"
wait "$reader" || fail "a read failed"
echo "fio runs $runs, move rounds $(cat /tmp/dmr-moves), read passes $(cat /tmp/dmr-reads)"
echo "status: $(dmsetup status r0)"
[ "$(status_field r0 6)" -gt 10 ] || fail "too few manual remaps: $(dmsetup status r0)"
[ "$(status_field r0 3)" = 0 ] && [ "$(status_field r0 4)" = 0 ] || fail "errors: $(dmsetup status r0)"
dmsetup remove r0
