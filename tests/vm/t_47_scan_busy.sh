# The scanner under heavy foreground I/O with an I/O scheduler that holds idle-class reads
# back (mq-deadline over a null_blk device with a shallow hardware queue and 1 ms per
# request, idle reads aged after 1 s): its idle-class reads wait, which says nothing about
# the blocks, so it finds nothing slow and relocates nothing, and still makes progress.
# (Judged by idle-class reads, healthy blocks looked slow and were relocated.)
load_module
klog_mark
main=$(nullb_create nbusy 256 hw_queue_depth=2 irqmode=2 completion_nsec=1000000 blocksize=512)
q=/sys/block/nbusy/queue
echo mq-deadline >$q/scheduler
grep -q '\[mq-deadline\]' $q/scheduler || fail "no mq-deadline: $(cat $q/scheduler)"
echo 1000 >$q/iosched/prio_aging_expire
spare=$(make_disk spare 16)
len=$(sectors "$main")
dmsetup create r0 --table "0 $len remap $main $spare 0 $(sectors "$spare")"
s=/sys/kernel/dm_remap/r0/scanner
# Proceed under load (below speed_min the scan never waits for idleness).
echo 200000 >$s/speed_min_kib_s
# A threshold well above a read's time behind the foreground queue (64 requests, 2 at a
# time, 1 ms each: about 32 ms), well below the 1 s an idle-class read may wait.
echo 200000 >$s/slow_threshold_us
fio --name=fg --filename=/dev/mapper/r0 --rw=randread --bs=4k --direct=1 --ioengine=io_uring \
	--iodepth=64 --time_based --runtime=40 --size=256M --output=/tmp/dmr-fg.txt &
fg=$!
sleep 2
echo start >$s/control
sleep 30
p=$(cat $s/position)
echo "busy: position $p, blocks_scanned $(cat $s/blocks_scanned), slow $(cat $s/slow), relocated $(cat $s/relocated)"
wait $fg || { cat /tmp/dmr-fg.txt; fail "fio failed"; }
[ "$(cat $s/slow)" = 0 ] && [ "$(cat $s/relocated)" = 0 ] ||
	fail "healthy blocks judged slow under load: slow $(cat $s/slow), relocated $(cat $s/relocated)"
[ "$(cat /sys/kernel/dm_remap/r0/remaps/remapped)" = 0 ] || fail "blocks remapped"
[ "$p" -gt 0 ] || fail "no progress under load"
if klog_since | grep 'read slowly'; then fail "chunks judged slow"; fi
echo stop >$s/control
dmsetup remove r0
