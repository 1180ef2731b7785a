# Errors that are not the medium's are passed up unchanged and change nothing: no retry
# as a bad block, no failing mark, no remap, no spare block retired (defect 5 of the
# integrity issue). They are injected with the test build's `remap_test_err` target,
# which fails every bio with a chosen block-layer status, over one 4 KiB block of the main
# device (the rest dm-linear), and over the whole spare device while a move needs it.
# Medium errors (IOERR, MEDIUM) still remap. Last, a real timeout from null_blk's fault
# injection.
load_module
disk=$(make_disk disk 16)
sparedisk=$(make_disk spare 8)
len=$(sectors "$disk")
slen=$(sectors "$sparedisk")
echo "0 $slen linear $sparedisk 0" | dmsetup create sp
main_with() { # STATUS: block 50 fails with STATUS, block 60 with dm-error (IOERR)
	cat <<TABLE
0 400 linear $disk 0
400 8 remap_test_err $1
408 72 linear $disk 408
480 8 error
488 $((len - 488)) linear $disk 488
TABLE
}
main_with transport | dmsetup create m
dmsetup create r0 --table "0 $len remap /dev/mapper/m /dev/mapper/sp 0 $slen"
dd if=/dev/urandom of=/tmp/dmr-b bs=4096 count=1 2>/dev/null
for st in "timeout:Connection timed out" "transport:Link has been severed" \
	"offline:No such device" "target:Remote I/O error" "inval:Invalid argument" \
	"protection:Invalid or incomplete multibyte or wide character"; do
	name=${st%%:*}
	want=${st#*:}
	dmsetup suspend m
	main_with "$name" | dmsetup reload m
	dmsetup resume m
	rerr=$(io_error /dev/mapper/r0 read $((50 * 4096)) 4096)
	werr=$(io_error /dev/mapper/r0 write $((50 * 4096)) 4096)
	if [ "$rerr" != "$want" ] || [ "$werr" != "$want" ]; then
		result FAIL "non_medium:$name" "read '$rerr', write '$werr', want '$want'"
	elif [ "$(dmsetup message r0 0 query 50)" != "50 main" ]; then
		result FAIL "non_medium:$name" "block 50 is $(dmsetup message r0 0 query 50)"
	elif [ "$(dmsetup status r0 | awk '{print $6, $7, $8, $9, $10, $11}')" != "0 0 0 0 0 0" ]; then
		result FAIL "non_medium:$name" "status $(dmsetup status r0)"
	else
		result PASS "non_medium:$name"
	fi
done
# A medium error still makes the block failing, and a write remaps it.
dmsetup suspend m
main_with medium | dmsetup reload m
dmsetup resume m
err=$(io_error /dev/mapper/r0 read $((50 * 4096)) 4096)
[ "$(dmsetup message r0 0 query 50)" = "50 failing" ] || fail "MEDIUM: block 50 is not failing ($err)"
write_block /dev/mapper/r0 50 /tmp/dmr-b
dmsetup message r0 0 query 50 | grep -q '^50 spare ' || fail "MEDIUM: block 50 not remapped"
result PASS non_medium:medium_still_remaps
# The spare device lost (transport) while a failing block must move: the write fails with
# that error, no spare block is retired, the block stays failing; once the spare is back
# the next write remaps it.
io_error /dev/mapper/r0 read $((60 * 4096)) 4096 >/dev/null
[ "$(dmsetup message r0 0 query 60)" = "60 failing" ] || fail "block 60 is not failing"
dmsetup suspend sp
echo "0 $slen remap_test_err transport" | dmsetup reload sp
dmsetup resume sp
err=$(io_error /dev/mapper/r0 write $((60 * 4096)) 4096)
retired=$(cat /sys/kernel/dm_remap/r0/remaps/spare_retired)
if [ "$err" != "Link has been severed" ] || [ "$retired" != 0 ] ||
	[ "$(dmsetup message r0 0 query 60)" != "60 failing" ] || [ "$(status_field r0 8)" != 0 ]; then
	result FAIL non_medium:spare_lost "error '$err', retired $retired, $(dmsetup message r0 0 query 60), status $(dmsetup status r0)"
else
	result PASS non_medium:spare_lost
fi
dmsetup suspend sp
echo "0 $slen linear $sparedisk 0" | dmsetup reload sp
dmsetup resume sp
write_block /dev/mapper/r0 60 /tmp/dmr-b
dmsetup message r0 0 query 60 | grep -q '^60 spare ' || fail "block 60 not remapped once the spare is back"
block_of /dev/mapper/r0 60
cmp -s /tmp/dmr-blk /tmp/dmr-b || fail "block 60 data"
dmsetup remove r0
dmsetup remove m
dmsetup remove sp
# A real timeout: null_blk's timeout_inject (configfs fault injection) lets the next
# request time out (io_timeout 1 s); the block layer completes it with BLK_STS_TIMEOUT.
nb=$(nullb_create nb_t 16 memory_backed=1)
echo 1000 >/sys/block/nb_t/queue/io_timeout
dmsetup create rt --table "0 $(sectors "$nb") remap $nb $sparedisk 0 $slen 1 format"
inj=$NULLB_CFG/nb_t/timeout_inject
# verbose 0: no stack dump (the suite fails a test whose kernel log shows a call trace).
echo 0 >"$inj/verbose"
echo 100 >"$inj/probability"
echo 1 >"$inj/interval"
for rw in read write; do
	echo 1 >"$inj/times"
	err=$(io_error /dev/mapper/rt $rw $((5 * 4096)) 4096)
	if [ "$err" != "Connection timed out" ] || [ "$(dmsetup message rt 0 query 5)" != "5 main" ] ||
		[ "$(dmsetup status rt | awk '{print $6, $7, $8, $9, $10, $11}')" != "0 0 0 0 0 0" ]; then
		result FAIL "non_medium:null_blk_timeout_$rw" "error '$err', $(dmsetup status rt)"
	else
		result PASS "non_medium:null_blk_timeout_$rw"
	fi
done
dmsetup remove rt
