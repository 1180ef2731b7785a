# Two constructors of the same spare region racing a failed load (defect 11): the first
# finds the table not loaded and fails to load it (every copy corrupt); the second, which
# joined its state meanwhile, must load it itself (and fail), never run without metadata.
# dm-delay under the spare makes the first load slow, so the second arrives during it.
load_module
main=$(make_disk main 16)
sparedisk=$(make_disk spare 8)
slen=$(sectors "$sparedisk")
len=$(sectors "$main")
dmsetup create r0 --table "0 $len remap $main $sparedisk 0 $slen"
dmsetup remove r0
for i in 0 1 2 3 4; do
	dd if=/dev/urandom of="$sparedisk" bs=512 seek="$(copy_sector "$slen" $i)" count=8 conv=notrunc 2>/dev/null
done
echo "0 $slen delay $sparedisk 0 300" | dmsetup create slow
table="0 $len remap $main /dev/mapper/slow 0 $slen"
(dmsetup create a --table "$table" >/tmp/dmr-a.out 2>&1; echo $? >/tmp/dmr-a.rc) &
sleep 0.5
(dmsetup create b --table "$table" >/tmp/dmr-b.out 2>&1; echo $? >/tmp/dmr-b.rc) &
wait
echo "a: $(cat /tmp/dmr-a.rc), b: $(cat /tmp/dmr-b.rc)"
dmsetup info a >/dev/null 2>&1 && fail "device a was created over corrupt metadata"
dmsetup info b >/dev/null 2>&1 && fail "device b was created without metadata"
[ "$(dmesg | grep -c 'remap: No valid metadata copy')" -ge 2 ] || fail "both loads must fail with the reason"
dmsetup remove slow
