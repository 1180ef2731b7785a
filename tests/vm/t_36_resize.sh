# Growing the main device (defect 10): a reload with a longer target is recorded in the
# metadata when it is resumed, so the next create at the new length loads the table; a
# shorter target is refused, at create and at reload, with its own message.
load_module
disk=$(make_disk disk 64)
spare=$(make_disk spare 16)
slen=$(sectors "$spare")
half=$(($(sectors "$disk") / 2))
full=$(sectors "$disk")
main=$(bad_main badmain "$disk" 30 5000 12000)
dmsetup create r0 --table "0 $half remap $main $spare 0 $slen"
random_file /tmp/dmr-p 16384
dd if=/tmp/dmr-p of=/dev/mapper/r0 bs=64k count=$((half / 128)) oflag=direct 2>/dev/null || fail "writes"
[ "$(dmsetup message r0 0 count)" = "2 0" ] || fail "want 2 remaps: $(dmsetup message r0 0 count)"
# Grow live.
dmsetup reload r0 --table "0 $full remap $main $spare 0 $slen"
dmsetup resume r0 || fail "resume of the longer table failed"
[ "$(blockdev --getsz /dev/mapper/r0)" = "$full" ] || fail "size after growing"
dd if=/tmp/dmr-p of=/dev/mapper/r0 bs=64k skip=$((half / 128)) seek=$((half / 128)) oflag=direct 2>/dev/null ||
	fail "writes to the grown part"
[ "$(dmsetup message r0 0 count)" = "3 0" ] || fail "want 3 remaps: $(dmsetup message r0 0 count)"
dmsetup remove r0
dmsetup create r0 --table "0 $full remap $main $spare 0 $slen" || fail "create at the new length refused"
same_bytes /dev/mapper/r0 0 /tmp/dmr-p
# Shorter: refused at reload (the live table stays) and at create.
klog_mark
expect_fail dmsetup reload r0 --table "0 $half remap $main $spare 0 $slen"
klog_since | grep -q 'remap: Target is shorter than the one the remap table was made for' ||
	fail "shorter reload not reported"
dmsetup remove r0
klog_mark
expect_fail dmsetup create r0 --table "0 $half remap $main $spare 0 $slen"
klog_since | grep -q 'shrinking is not supported' || fail "shorter create not reported"
dmsetup remove badmain
