# A REQ_NOWAIT bio that the device below would have to split fails with BLK_STS_AGAIN and
# the submitter (io_uring) retries it without REQ_NOWAIT. That status is not a bad block:
# it must go up as it is, not to the worker (which would re-read the bio 4 KiB at a time
# and make every such read several times slower). 100 reads of 128 KiB (over null_blk's
# 127 KiB limit) must reach null_blk as about 2 requests each, as through dm-linear.
load_module
insmod "$DMR_EXTRA_MODULES/null_blk.ko" nr_devices=1 gb=1 memory_backed=0 bs=512
spare=$(make_disk spare 16)
len=$(sectors /dev/nullb0)
dmsetup create r0 --table "0 $len remap /dev/nullb0 $spare 0 $(sectors "$spare")"
reads() { awk '{print $1}' /sys/block/nullb0/stat; }
before=$(reads)
fio --name=r --filename=/dev/mapper/r0 --ioengine=io_uring --direct=1 --rw=read --bs=128k \
	--iodepth=4 --size=$((100 * 128))k --output=/tmp/dmr-fio.txt || { cat /tmp/dmr-fio.txt; fail "fio failed"; }
after=$(reads)
echo "100 reads of 128 KiB: $((after - before)) null_blk requests"
[ $((after - before)) -le 250 ] || fail "$((after - before)) requests: reads went through the worker"
[ "$(status_field r0 3)" = 0 ] || fail "read errors counted: $(dmsetup status r0)"
dmsetup remove r0
rmmod null_blk
