# A spare block whose write fails is retired and another one is used.
load_module
disk=$(make_disk disk 32)
sparedisk=$(make_disk spare 16)
len=$(sectors "$disk")
slen=$(sectors "$sparedisk")
cb=$(copy_blocks "$slen")
# The allocator starts after metadata copy 0: make the first two spare data blocks fail.
spare=$(bad_main badspare "$sparedisk" "$cb" $((cb + 1)))
main=$(bad_main badmain "$disk" 10 11 12)
dmsetup create r0 --table "0 $len remap $main $spare 0 $slen"
random_file /tmp/dmr-p 16
dd if=/tmp/dmr-p of=/dev/mapper/r0 bs=4096 oflag=direct 2>/dev/null || fail "writes failed"
same_bytes /dev/mapper/r0 0 /tmp/dmr-p
echo "status: $(dmsetup status r0)"
dmsetup message r0 0 list
[ "$(status_field r0 8)" = 2 ] || fail "spare errors: $(dmsetup status r0)"
for s in $(dmsetup message r0 0 list | awk '{print $3}'); do
	[ "$s" -ge $((cb + 2)) ] || fail "failed spare block $s in use"
done
dmsetup remove r0
dmsetup remove badmain
dmsetup remove badspare
