# fio random writes with crc32c verification through the device (io_uring, direct, QD16).
load_module
main=$(make_disk main 64)
spare=$(make_disk spare 8)
dmsetup create r0 --table "0 $(sectors "$main") remap $main $spare 0 2048"
fio --name=verify --filename=/dev/mapper/r0 --rw=randwrite --bs=4k --size=32M \
	--ioengine=io_uring --direct=1 --iodepth=16 --verify=crc32c --do_verify=1 \
	--verify_fatal=1 --randrepeat=0 --output=/tmp/dmr-fio.txt ||
	{ cat /tmp/dmr-fio.txt; fail "fio reported errors"; }
grep -q 'err= 0' /tmp/dmr-fio.txt || { cat /tmp/dmr-fio.txt; fail "fio err != 0"; }
dmsetup remove r0
