# Suspend/resume and table reloads of the remap device while fio writes with verification
# and blocks of the main device fail writes: nothing is lost, remaps survive the reloads.
load_module
disk=$(make_disk disk 64)
spare=$(make_disk spare 16)
len=$(sectors "$disk")
bad_table wfail "$disk" $(random_blocks 100 $((len / 8)) 5)
dmsetup create badmain /tmp/dmr-badtable
table="0 $len remap /dev/mapper/badmain $spare 0 $(sectors "$spare")"
dmsetup create r0 --table "$table"
fio --name=bg --filename=/dev/mapper/r0 --rw=randwrite --bs=4k --size=64M \
	--ioengine=io_uring --direct=1 --iodepth=8 --verify=crc32c --do_verify=1 \
	--verify_fatal=1 --loops=2 --output=/tmp/dmr-fio.txt &
fio_pid=$!
for i in 1 2 3; do
	sleep 1
	dmsetup suspend r0
	dmsetup resume r0
	dmsetup reload r0 --table "$table"
	dmsetup resume r0
done
wait "$fio_pid" || { cat /tmp/dmr-fio.txt; fail "fio failed across suspend/reload"; }
grep -q 'err= 0' /tmp/dmr-fio.txt || { cat /tmp/dmr-fio.txt; fail "fio err != 0"; }
echo "status: $(dmsetup status r0)"
[ "$(status_field r0 5)" -gt 0 ] || fail "no block was remapped during the run"
dmsetup remove r0
dmsetup remove badmain
