# Remaps survive dmsetup remove + create and rmmod + insmod; corrupting some metadata copies
# still loads everything and repairs them; corrupting all refuses; another geometry and a
# shorter target are refused; one commit writes one 512-byte record per copy.
load_module
disk=$(make_disk disk 64)
spare=$(make_disk spare 16)
len=$(sectors "$disk")
slen=$(sectors "$spare")
main=$(bad_main badmain "$disk" 20 21 300)
table="0 $len remap $main $spare 0 $slen"
dmsetup create r0 --table "$table"
[ "$(status_meta r0 1)" = 5/5 ] || fail "fresh metadata: $(dmsetup status r0)"
seq0=$(status_meta r0 2)
bytes0=$(status_meta r0 3)
dmsetup message r0 0 remap 7 >/dev/null
[ "$(status_meta r0 2)" = $((seq0 + 1)) ] || fail "seq did not advance: $(dmsetup status r0)"
per_commit=$(($(status_meta r0 3) - bytes0))
echo "metadata bytes for one commit: $per_commit"
[ "$per_commit" = $((5 * 512)) ] || fail "one commit wrote $per_commit bytes"
random_file /tmp/dmr-p 512
dd if=/tmp/dmr-p of=/dev/mapper/r0 bs=64k oflag=direct 2>/dev/null || fail "writes failed"
dmsetup message r0 0 list >/tmp/dmr-list0
[ "$(wc -l </tmp/dmr-list0)" = 4 ] || fail "want 4 remaps: $(cat /tmp/dmr-list0)"
check_same() {
	dmsetup message r0 0 list >/tmp/dmr-list1
	cmp -s /tmp/dmr-list0 /tmp/dmr-list1 || fail "$1: table differs: $(cat /tmp/dmr-list1)"
	same_bytes /dev/mapper/r0 0 /tmp/dmr-p
}
dmsetup remove r0
dmsetup create r0 --table "$table"
check_same "remove + create"
dmsetup remove r0
rmmod dm_remap
insmod "$DMR_MODULE"
dmsetup create r0 --table "$table"
check_same "rmmod + insmod"
seq1=$(status_meta r0 2)
[ "$seq1" -ge "$seq0" ] || fail "sequence went backwards: $seq0 -> $seq1"
dmsetup remove r0
# Corrupt copies 1 and 3 (their superblocks) and copy 4's checkpoint slot.
for i in 1 3; do
	dd if=/dev/urandom of="$spare" bs=512 seek="$(copy_sector "$slen" $i)" count=8 conv=notrunc 2>/dev/null
done
dd if=/dev/urandom of="$spare" bs=512 seek=$(($(copy_sector "$slen" 4) + 8)) count=16 conv=notrunc 2>/dev/null
dmsetup create r0 --table "$table"
check_same "2 corrupt superblocks + 1 corrupt slot"
[ "$(status_meta r0 1)" = 5/5 ] || fail "copies not repaired: $(dmsetup status r0)"
dmsetup remove r0
# Corrupt every copy: refused, nothing left behind.
for i in 0 1 2 3 4; do
	dd if=/dev/urandom of="$spare" bs=512 seek="$(copy_sector "$slen" $i)" count=8 conv=notrunc 2>/dev/null
done
klog_mark
expect_fail dmsetup create r0 --table "$table"
klog_since | grep -q 'remap: No valid metadata copy' || fail "no reason logged"
dmsetup info r0 >/dev/null 2>&1 && fail "device left behind"
# 'format' starts over on request.
dmsetup create r0 --table "$table 1 format"
[ "$(dmsetup message r0 0 count)" = "0 0" ] || fail "format kept entries"
dmsetup remove r0
# Metadata of another geometry (4 copies instead of 5) is refused, and so is a shorter
# target (growing is t_36_resize).
dmsetup create r0 --table "$table"
dmsetup remove r0
klog_mark
expect_fail dmsetup create r0 --table "$table 2 metadata_copies 4"
klog_since | grep -q 'remap: Metadata in the spare region belongs to a different main device' ||
	fail "identity mismatch not reported"
klog_mark
expect_fail dmsetup create r0 --table "0 $((len - 8)) remap $main $spare 0 $slen"
klog_since | grep -q 'remap: Target is shorter than the one the remap table was made for' ||
	fail "shorter target not reported"
dmsetup remove badmain
