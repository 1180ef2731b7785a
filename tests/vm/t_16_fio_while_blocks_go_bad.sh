# Concurrent fio writers with crc32c verification while blocks of the main device start
# failing writes underneath (table reloads of the main device): zero verify errors.
load_module
disk=$(make_disk disk 64)
spare=$(make_disk spare 16)
len=$(sectors "$disk")
blocks=$((len / 8))
bad_table wfail "$disk"
dmsetup create badmain /tmp/dmr-badtable
dmsetup create r0 --table "0 $len remap /dev/mapper/badmain $spare 0 $(sectors "$spare")"
fio --name=w --filename=/dev/mapper/r0 --rw=randwrite --bs=4k --size=32M --numjobs=2 \
	--offset_increment=32M --ioengine=io_uring --direct=1 --iodepth=8 --verify=crc32c \
	--do_verify=1 --verify_fatal=1 --loops=2 --group_reporting --output=/tmp/dmr-fio.txt &
fio_pid=$!
n=0
for round in 1 2 3 4; do
	sleep 1
	n=$((n + 25))
	bad_table wfail "$disk" $(random_blocks "$n" "$blocks" 11)
	dmsetup suspend badmain
	dmsetup reload badmain /tmp/dmr-badtable
	dmsetup resume badmain
done
wait "$fio_pid" || { cat /tmp/dmr-fio.txt; fail "fio failed"; }
grep -q 'err= 0' /tmp/dmr-fio.txt || { cat /tmp/dmr-fio.txt; fail "fio err != 0"; }
echo "status: $(dmsetup status r0)"
dmsetup remove r0
dmsetup remove badmain
