# Suspend/resume and a table reload while fio writes with verification: nothing is lost.
load_module
main=$(make_disk main 64)
spare=$(make_disk spare 8)
len=$(sectors "$main")
dmsetup create r0 --table "0 $len remap $main $spare 0 2048"
fio --name=bg --filename=/dev/mapper/r0 --rw=randwrite --bs=4k --size=16M \
	--ioengine=io_uring --direct=1 --iodepth=8 --verify=crc32c --do_verify=1 \
	--verify_fatal=1 --loops=3 --output=/tmp/dmr-fio.txt &
fio_pid=$!
for i in 1 2 3; do
	sleep 1
	dmsetup suspend r0
	dmsetup resume r0
	dmsetup reload r0 --table "0 $len remap $main $spare 0 2048"
	dmsetup resume r0
done
wait "$fio_pid" || { cat /tmp/dmr-fio.txt; fail "fio failed across suspend/reload"; }
grep -q 'err= 0' /tmp/dmr-fio.txt || { cat /tmp/dmr-fio.txt; fail "fio err != 0"; }
dmsetup remove r0
