# A flush through the dm device reaches both the main and the spare device.
load_module
main=$(make_disk main 16)
spare=$(make_disk spare 4)
dmsetup create r0 --table "0 $(sectors "$main") remap $main $spare 0 2048"
flushes() { awk '{print $16}' "/sys/block/$(basename "$1")/stat"; }
m0=$(flushes "$main")
s0=$(flushes "$spare")
dd if=/dev/urandom of=/dev/mapper/r0 bs=4096 count=4 conv=fsync 2>/dev/null
m1=$(flushes "$main")
s1=$(flushes "$spare")
echo "flushes main $m0 -> $m1, spare $s0 -> $s1"
[ "$m1" -gt "$m0" ] || fail "no flush reached the main device"
[ "$s1" -gt "$s0" ] || fail "no flush reached the spare device"
dmsetup remove r0
