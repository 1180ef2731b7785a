# dmsetup message: help answers, bad input is refused with EINVAL and a logged reason.
load_module
main=$(make_disk main 16)
spare=$(make_disk spare 4)
dmsetup create r0 --table "0 $(sectors "$main") remap $main $spare 0 2048"
dmsetup message r0 0 help >/tmp/dmr-help
for m in remap unremap query list count clear_errors help; do
	grep -q "^$m" /tmp/dmr-help || fail "help does not list $m: $(cat /tmp/dmr-help)"
done
expect_fail dmsetup message r0 0 no_such_message
grep -q 'Invalid argument' /tmp/dmr-expect.out || fail "not EINVAL: $(cat /tmp/dmr-expect.out)"
dmesg | grep -q 'message rejected: unknown message' || fail "reason not logged"
expect_fail dmsetup message r0 0 help extra
dmesg | grep -q 'message rejected: usage: help' || fail "reason not logged"
dmsetup remove r0
