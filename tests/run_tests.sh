#!/usr/bin/env bash
# The whole test suite: builds what is needed, runs the userspace unit tests, the static
# checks and the VM tests, prints one line per test and `N passed, M failed` last.
# Exits non-zero on any failure.
#
#   tests/run_tests.sh              everything
#   tests/run_tests.sh --vm [FILTER]    only the VM tests (whose name contains FILTER;
#                                       "reboot" selects the two-boot persistence test,
#                                       "load" the 100,000-remap load test)
#   tests/run_tests.sh --unit        only the userspace tests and make check
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/scripts/lib.sh"
cd "$ROOT"

run_unit=1
run_vm=1
filter=""
case "${1:-}" in
--vm) run_unit=0; filter=${2:-} ;;
--unit) run_vm=0 ;;
"") ;;
*) die "usage: tests/run_tests.sh [--vm [FILTER] | --unit]" ;;
esac

passed=0
failed=0
failures=()
record() { # PASS|FAIL name
	if [ "$1" = PASS ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures+=("$2")
	fi
	printf '%-4s %s\n' "$1" "$2"
}
finish() {
	if [ ${#failures[@]} -gt 0 ]; then
		echo "failed: ${failures[*]}"
	fi
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ]
	exit $?
}
logs=$(mktemp -d "${TMPDIR:-/tmp}/dmr-tests.XXXXXX")
trap 'rm -rf "$logs"' EXIT

# A build step is not a test, but its failure fails the run (and stops it).
build_step() { # name command...
	local name=$1
	shift
	log "$name"
	if ! "$@" >"$logs/$name.log" 2>&1; then
		tail -n 40 "$logs/$name.log"
		record FAIL "build:$name"
		finish
	fi
}

start=$(date +%s)
# Progress lines carry the seconds since the start.
log() { printf '[run_tests +%ss] %s\n' "$(($(date +%s) - start))" "$*" >&2; }
build_step setup "$ROOT/scripts/setup"
if [ "$run_vm" = 1 ] || [ "$run_unit" = 1 ]; then
	build_step kernel "$ROOT/scripts/build-kernel"
	build_step module make -C "$ROOT" modules
fi

if [ "$run_unit" = 1 ]; then
	log "userspace unit tests (cargo test)"
	cargo test --workspace --color never --no-fail-fast >"$logs/cargo.log" 2>&1
	cargo_rc=$?
	n=0
	while read -r name status; do
		n=$((n + 1))
		[ "$status" = ok ] && record PASS "unit:$name" || record FAIL "unit:$name"
	done < <(sed -n 's/^test \([^ ]*\) \.\.\. \(ok\|FAILED\)$/\1 \2/p' "$logs/cargo.log")
	if [ "$cargo_rc" != 0 ] || [ "$n" = 0 ]; then
		tail -n 40 "$logs/cargo.log"
		[ "$cargo_rc" != 0 ] && record FAIL "unit:cargo-test"
	fi

	log "ABI document against the sysfs files (tests/abi_check.sh)"
	if "$ROOT/tests/abi_check.sh" >"$logs/abi.log" 2>&1; then
		record PASS "check:abi-doc-lists-every-file"
	else
		cat "$logs/abi.log"
		record FAIL "check:abi-doc-lists-every-file"
	fi

	log "static checks (make check)"
	if make -C "$ROOT" check >"$logs/check.log" 2>&1; then
		record PASS "check:rustfmt-clippy"
	else
		tail -n 40 "$logs/check.log"
		record FAIL "check:rustfmt-clippy"
	fi
fi

# vm_script NAME MIN_RESULTS [vm-run arguments...]: runs a guest script, records its
# RESULT lines; fails NAME if vm-run fails or fewer than MIN_RESULTS results come back.
vm_script() {
	local name=$1 min=$2 rc n=0 status test
	shift 2
	"$ROOT/scripts/vm-run" --no-build "$@" | tee "$logs/$name.log"
	rc=${PIPESTATUS[0]}
	while read -r status test; do
		n=$((n + 1))
		record "$status" "vm:$test"
	done < <(sed -n 's/^RESULT \(PASS\|FAIL\) \([^ ]*\).*$/\1 \2/p' "$logs/$name.log")
	if [ "$rc" != 0 ] || [ "$n" -lt "$min" ]; then
		record FAIL "vm:$name (vm-run exit $rc, $n results)"
	fi
}

# Whether the VM runs and the extra VM test NAME (outside suite.sh) is selected: with no
# filter, or with the filter NAME.
extra_wanted() {
	[ "$run_vm" = 1 ] && { [ -z "$filter" ] || [ "$filter" = "$1" ]; }
}

if [ "$run_vm" = 1 ]; then
	# The VM tests run the test build: src/test_hooks.rs (fault injection) compiled in.
	build_step test-module make -C "$ROOT" DMR_TEST_HOOKS=1 modules
	log "VM tests"
	# A filter may select no suite test (e.g. "reboot"); the whole suite must report some.
	# The whole suite runs in one boot: about 20 minutes under TCG.
	export DMR_VM_TIMEOUT=${DMR_VM_TIMEOUT:-2400}
	vm_script suite "$([ -z "$filter" ] && echo 1 || echo 0)" "$ROOT/tests/vm/suite.sh" "$filter"
	# Tests that judge durations (`# dmr-timing: icount`) run in a second boot with QEMU's
	# instruction counting on one vCPU: guest time advances 1 ns per instruction, so a host
	# busy with other work cannot change their outcome (docs/performance.md).
	timed=$(grep -l '^# dmr-timing: icount$' "$ROOT"/tests/vm/t_*.sh | sed 's|.*/t_||; s|\.sh$||' |
		grep -F -- "$filter" || true)
	if [ -n "$timed" ]; then
		log "VM tests under icount: $(echo $timed)"
		DMR_VM_ICOUNT=1 DMR_VM_CPUS=1 DMR_TEST_ICOUNT=1 vm_script timed \
			"$([ -z "$filter" ] && echo 1 || echo 0)" "$ROOT/tests/vm/suite.sh" "$filter"
	fi
fi

if extra_wanted reboot; then
	log "VM reboot test (persistent disk images)"
	d="$logs/disks"
	mkdir -p "$d"
	truncate -s 64M "$d/main.img"
	truncate -s 16M "$d/spare.img"
	truncate -s 80M "$d/ref.img"
	for phase in write verify; do
		DMR_VM_LOG="$logs/reboot-$phase.console" vm_script "reboot-$phase" 1 \
			--disk "$d/main.img" --disk "$d/spare.img" \
			--disk "$d/ref.img" "$ROOT/tests/vm/reboot.sh" "$phase"
	done
	# The stress run going on when the first VM rebooted was stopped by the reboot (its
	# end is logged after the guest script, as the kernel reboots).
	if sed -n '/^DMR-VM-EXIT=/,$p' "$logs/reboot-write.console" |
		grep -q 'stress run 1: .* stopped$' &&
		grep -q 'stress run 1: End of test: SUCCESS' "$logs/reboot-write.console"; then
		record PASS "vm:reboot:stress-stopped-by-reboot"
	else
		record FAIL "vm:reboot:stress-stopped-by-reboot"
	fi
fi

if extra_wanted load; then
	log "VM load test (100,000 remaps written by the synth_table example)"
	d="$logs/load"
	mkdir -p "$d"
	truncate -s 1G "$d/main.img"
	truncate -s 600M "$d/spare.img"
	if cargo run -q -p dm-remap-tool --example synth_table -- "$d/spare.img" $((600 * 2048)) \
		$((1024 * 2048)) 100000 >"$logs/synth.log" 2>&1; then
		vm_script load 2 --disk "$d/main.img" --disk "$d/spare.img" \
			"$ROOT/tests/vm/load_time.sh" 100000
	else
		cat "$logs/synth.log"
		record FAIL "vm:load (synth_table failed)"
	fi
	rm -rf "$d"
fi

if extra_wanted bench; then
	# On the test kernel: the benchmark kernel would be a second kernel build in CI.
	log "benchmark harness smoke run (scripts/bench --quick, one round: outputs are checked, not speed)"
	d="$logs/bench"
	if "$ROOT/scripts/bench" --quick --rounds 1 --test-kernel --out "$d" >"$logs/bench.log" 2>&1; then
		record PASS "bench:runs"
		workloads="randread-4k-qd1 randread-4k-qd32 randwrite-4k-qd1 randwrite-4k-qd32 seqread-128k-qd8"
		configs=$(sed -n 's/^configs //p' "$d/setup.txt")
		want=$(($(echo $workloads | wc -w) * $(echo $configs | wc -w)))
		have=$(wc -l <"$d/runs.txt")
		# raw/ also holds the 10 presence runs.
		[ "$have" = "$want" ] && [ "$(ls "$d"/raw/*.json | grep -vc /presence-)" = "$want" ] &&
			[ "$(ls "$d"/raw/presence-*.json | wc -l)" = 10 ] &&
			record PASS "bench:every-run-recorded" ||
			record FAIL "bench:every-run-recorded ($have of $want runs)"
		ok=1
		for w in $workloads; do
			grep -q "^## $w\$" "$d/results.md" || ok=0
			for c in $configs; do
				grep -q "^| $c | [0-9]" "$d/results.md" || ok=0
				grep -q "\"$c\": {" "$d/results.json" || ok=0
			done
			grep -q "\"$w\": {" "$d/results.json" || ok=0
		done
		[ "$ok" = 1 ] && record PASS "bench:report-has-every-result" ||
			record FAIL "bench:report-has-every-result (see $d/results.md)"
		grep -q '<svg' "$d/ratio.svg" && grep -q '<rect' "$d/ratio.svg" &&
			record PASS "bench:chart" || record FAIL "bench:chart"
		# Under icount: instructions per I/O, and the presence runs (0-4 other devices).
		grep -q '^| linear | [0-9]* | [0-9]*-[0-9]* | [0-9][0-9]* | 1.0000 ' "$d/results.md" &&
			[ "$(grep -c '^| [0-4] | [0-9]* | [0-9]* | [0-9.]* |$' "$d/results.md")" = 5 ] &&
			record PASS "bench:icount-and-presence" ||
			record FAIL "bench:icount-and-presence (see $d/results.md)"
		# Instrumentation on against off, and the module's own CPU figure.
		grep -q '^## Instrumentation$' "$d/results.md" &&
			grep -q '^| randread-4k-qd32 | remap-empty | remap-instr-off | ' "$d/results.md" &&
			grep -q '^self remap-empty cpu_ns_per_io=[1-9]' "$d/setup.txt" &&
			record PASS "bench:instrumentation-compared" ||
			record FAIL "bench:instrumentation-compared (see $d/results.md, $d/setup.txt)"
		# lookup_benchmark at 10,000 entries (--quick), with hits and misses, and its goal.
		grep -q '^lookup_benchmark 10000 1000000 [1-9][0-9]* [1-9][0-9]* hit=[1-9][0-9]* miss=[1-9]' "$d/setup.txt" &&
			grep -q '^## Table lookup (lookup_benchmark)$' "$d/results.md" &&
			grep -q '^| lookup_benchmark, 10000 entries | ' "$d/results.md" &&
			record PASS "bench:lookup-benchmark" ||
			record FAIL "bench:lookup-benchmark (see $d/results.md, $d/setup.txt)"
	else
		tail -n 30 "$logs/bench.log"
		record FAIL "bench:runs"
	fi
fi

log "finished in $(($(date +%s) - start)) s"
finish
