# rmmod is refused while a remap device exists, the device keeps working, and unloading
# succeeds once it is removed.
load_module
main=$(make_disk main 16)
spare=$(make_disk spare 4)
dmsetup create r0 --table "0 $(sectors "$main") remap $main $spare 0 2048"
expect_fail rmmod dm_remap
grep -q '^dm_remap ' /proc/modules || fail "module gone while in use"
random_file /tmp/dmr-p 16
dd if=/tmp/dmr-p of=/dev/mapper/r0 bs=4096 oflag=direct 2>/dev/null
same_bytes /dev/mapper/r0 0 /tmp/dmr-p
dmsetup remove r0
rmmod dm_remap
