#!/bin/sh
# Runs the VM tests (tests/vm/t_*.sh, or those whose name contains $1) one after the
# other in this guest. Each test prints its own `RESULT` lines for subtests, or gets one
# from its exit status; a test whose run leaves BUG/Oops/WARNING/... in the kernel log fails.
# Tests marked `# dmr-timing: icount` judge durations: they run only in a boot with QEMU's
# instruction counting (DMR_TEST_ICOUNT=1, see run_tests.sh), and the others only without.
. /tests/vm/lib.sh

filter=${1:-}
for t in /tests/vm/t_*.sh; do
	name=$(basename "$t" .sh)
	name=${name#t_}
	case "$name" in *"$filter"*) ;; *) continue ;; esac
	timed=0
	grep -q '^# dmr-timing: icount$' "$t" && timed=1
	[ "$timed" = "${DMR_TEST_ICOUNT:-0}" ] || continue
	# A test may need longer than the default 600 s (guest time): `# dmr-timeout: SECONDS`.
	to=$(sed -n 's/^# dmr-timeout: \([0-9]*\)$/\1/p' "$t")
	cleanup_all
	dmesg -c >/dev/null
	echo "=== $name"
	{
		timeout "${to:-${DMR_TEST_TIMEOUT:-600}}" sh -e -c ". /tests/vm/lib.sh; cd /tmp; . $t" 2>&1
		echo "TEST-EXIT $?"
	} | tee /tmp/suite.out
	rc=$(sed -n 's/^TEST-EXIT //p' /tmp/suite.out)
	if grep -q '^RESULT ' /tmp/suite.out; then
		# The test reported its own subtests; it must still finish cleanly.
		[ "$rc" = 0 ] || result FAIL "$name" "aborted with status $rc"
	elif [ "$rc" = 0 ]; then
		result PASS "$name"
	else
		result FAIL "$name" "exit status $rc"
	fi
	if ! check_kernel_log; then
		result FAIL "$name:kernel-log"
	fi
done
cleanup_all
