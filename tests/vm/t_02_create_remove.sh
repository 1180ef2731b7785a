# dmsetup create/status/table/remove; table re-emits the line; nothing is left behind.
load_module
main=$(make_disk main 64)
spare=$(make_disk spare 16)
len=$(sectors "$main")
dmsetup create r0 --table "0 $len remap $main $spare 0 2048"
[ "$(blockdev --getsz /dev/mapper/r0)" = "$len" ] || fail "dm device has the wrong size"
want="0 $len remap $(devno "$main") $(devno "$spare") 0 2048"
got=$(dmsetup table r0)
[ "$got" = "$want" ] || fail "table: got '$got', want '$want'"
dmsetup status r0 | grep -q "^0 $len remap" || fail "status: $(dmsetup status r0)"
dmsetup remove r0
[ ! -e /dev/mapper/r0 ] || fail "/dev/mapper/r0 still exists"
dmsetup ls | grep -q 'No devices found' || fail "devices left: $(dmsetup ls)"
# A shorter target than the main device, and main = spare with the spare region after it.
dmsetup create r1 --table "0 8192 remap $main $main 8192 4096"
[ "$(dmsetup table r1)" = "0 8192 remap $(devno "$main") $(devno "$main") 8192 4096" ] ||
	fail "same-device table: $(dmsetup table r1)"
dmsetup remove r1
