# When the spare blocks run out, new failing writes return an error, status says
# "exhausted", a dm event is raised, and the existing remaps keep working.
load_module
disk=$(make_disk disk 32)
spare=$(make_disk spare 1)
len=$(sectors "$disk")
slen=1024
total=$((slen / 8))
cb=$(copy_blocks $slen)
data=$((total - 5 * cb))
main=$(bad_main badmain "$disk" $(seq 100 $((100 + data + 9))))
dmsetup create r0 --table "0 $len remap $main $spare 0 $slen"
[ "$(status_field r0 1)" = "0/$data" ] || fail "spare blocks: $(dmsetup status r0), want 0/$data"
ev0=$(dmsetup info r0 | awk '/Event number/ {print $3}')
random_file /tmp/dmr-p $((data + 10))
dd if=/tmp/dmr-p of=/dev/mapper/r0 bs=4096 seek=100 count="$data" oflag=direct 2>/dev/null ||
	fail "writes within the spare capacity failed"
[ "$(status_field r0 2)" = ok ] || fail "state: $(dmsetup status r0)"
# One more failing block than there are spare blocks.
if dd if=/tmp/dmr-p of=/dev/mapper/r0 bs=4096 seek=$((100 + data)) skip="$data" count=1 \
	oflag=direct 2>/dev/null; then
	fail "write to a failing block succeeded with no spare block left"
fi
echo "status: $(dmsetup status r0)"
[ "$(status_field r0 1)" = "$data/$data" ] || fail "remapped: $(dmsetup status r0)"
[ "$(status_field r0 2)" = exhausted ] || fail "state: $(dmsetup status r0)"
ev1=$(dmsetup info r0 | awk '/Event number/ {print $3}')
[ "$ev1" -gt "$ev0" ] || fail "no dm event ($ev0 -> $ev1)"
# Existing remaps still read back.
dd if=/tmp/dmr-p of=/tmp/dmr-want bs=4096 count="$data" 2>/dev/null
same_bytes /dev/mapper/r0 100 /tmp/dmr-want
# Freeing a spare block clears the state.
expect_fail dmsetup message r0 0 unremap 100
dmesg | grep -q 'the main device failed the write' || fail "unremap reason not logged"
dmsetup remove r0
dmsetup remove badmain
