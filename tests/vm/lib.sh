# shellcheck shell=sh
# Helpers for the tests that run inside the VM (busybox sh). Sourced by suite.sh and by
# every test; a test runs with `set -e`, so any failing command fails it.

DMR_MODULE=${DMR_MODULE:-/lib/modules/dm-remap.ko}
DMR_EXTRA_MODULES=${DMR_EXTRA_MODULES:-/lib/modules/extra}
export DM_DISABLE_UDEV=1

# Patterns in the kernel log that fail any test.
KERNEL_BAD='BUG|Oops|WARNING|Call Trace|KASAN|UBSAN|panicked'

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# Prints a subtest result; the host counts these lines.
result() { # PASS|FAIL name [reason]
	echo "RESULT $1 $2${3:+ ($3)}"
}

load_module() {
	grep -q '^dm_remap ' /proc/modules || insmod "$DMR_MODULE"
}

# make_disk NAME MIB: a loop device over a sparse file in /tmp; prints its path.
make_disk() {
	dd if=/dev/zero of="/tmp/dmr-$1.img" bs=1M count=0 seek="$2" 2>/dev/null
	_dev=$(losetup -f)
	losetup "$_dev" "/tmp/dmr-$1.img"
	echo "$_dev"
}

# major:minor of a block device, the form dmsetup table prints.
devno() {
	cat "/sys/block/$(basename "$1")/dev"
}

# Size of a block device in 512-byte sectors.
sectors() {
	blockdev --getsz "$1"
}

# expect_fail CMD...: CMD must fail.
expect_fail() {
	if "$@" >/tmp/dmr-expect.out 2>&1; then
		cat /tmp/dmr-expect.out
		fail "expected to fail: $*"
	fi
}

# random_file PATH BLOCKS: BLOCKS random 4 KiB blocks (distinct with overwhelming probability).
random_file() {
	dd if=/dev/urandom of="$1" bs=4096 count="$2" 2>/dev/null
}

# same_bytes FILE_OR_DEV SKIP_BLOCKS EXPECTED_FILE: the region of FILE_OR_DEV starting at
# 4 KiB block SKIP_BLOCKS holds exactly EXPECTED_FILE.
same_bytes() {
	_n=$(($(wc -c <"$3") / 4096))
	dd if="$1" of=/tmp/dmr-got bs=4096 skip="$2" count="$_n" iflag=direct 2>/dev/null
	cmp /tmp/dmr-got "$3" || fail "$1 at block $2 differs from $3"
}

# klog_mark, then klog_since: the kernel log lines written after the mark. Tests use this
# instead of `dmesg -c`, which would hide problems from the suite's kernel-log check.
klog_mark() {
	_klog_mark=$(dmesg | wc -l)
}
klog_since() {
	dmesg | tail -n +$((_klog_mark + 1))
}

# Removes every dm device, loop device and the module, so the next test starts clean.
cleanup_all() {
	grep -q ' /mnt ' /proc/mounts && umount /mnt 2>/dev/null
	dmsetup remove_all >/dev/null 2>&1 || true
	nullb_cleanup
	for _l in /dev/loop*; do
		losetup -d "$_l" >/dev/null 2>&1 || true
	done
	rm -f /tmp/dmr-*
	rmmod dm_remap >/dev/null 2>&1 || true
	rmmod null_blk >/dev/null 2>&1 || true
}

# Kernel log lines that must not appear; prints them and fails when found.
check_kernel_log() {
	if dmesg | grep -E "$KERNEL_BAD" >/tmp/dmr-klog; then
		echo "kernel log shows problems:" >&2
		dmesg | tail -n 60 >&2
		return 1
	fi
	return 0
}

# bad_table MODE LOOPDEV BLOCK...: writes to /tmp/dmr-badtable a table over LOOPDEV whose
# 4 KiB blocks BLOCK... fail: MODE "error" fails reads and writes (dm-error), "wfail"
# fails writes only (dm-flakey error_writes, always down); the rest is dm-linear.
bad_table() {
	_mode=$1
	_dev=$2
	shift 2
	_size=$(sectors "$_dev")
	_pos=0
	: >/tmp/dmr-badtable
	for _b in $(printf '%s\n' "$@" | sort -n); do
		_s=$((_b * 8))
		[ "$_s" -gt "$_pos" ] && echo "$_pos $((_s - _pos)) linear $_dev $_pos" >>/tmp/dmr-badtable
		if [ "$_mode" = error ]; then
			echo "$_s 8 error" >>/tmp/dmr-badtable
		else
			echo "$_s 8 flakey $_dev $_s 0 1 1 error_writes" >>/tmp/dmr-badtable
		fi
		_pos=$((_s + 8))
	done
	if [ "$_pos" -lt "$_size" ]; then
		echo "$_pos $((_size - _pos)) linear $_dev $_pos" >>/tmp/dmr-badtable
	fi
}

# bad_main NAME LOOPDEV BLOCK...: a dm device NAME over LOOPDEV whose 4 KiB blocks BLOCK...
# fail every read and write; prints its path.
bad_main() {
	_name=$1
	_dev=$2
	shift 2
	bad_table error "$_dev" "$@"
	dmsetup create "$_name" /tmp/dmr-badtable
	echo "/dev/mapper/$_name"
}

# random_blocks COUNT BLOCKS SEED: COUNT distinct numbers in 1..BLOCKS-2.
random_blocks() {
	awk -v c="$1" -v n="$2" -v seed="$3" 'BEGIN { srand(seed); while (k < c) {
		b = int(rand() * (n - 2)) + 1; if (!(b in s)) { s[b] = 1; k++; print b } } }'
}

# copy_blocks SPARE_SECTORS: 4 KiB blocks one metadata copy takes (docs/target.md).
copy_blocks() {
	_t=$(($1 / 8))
	_slot=$(((_t * 16 + 4095) / 4096 * 4096))
	_j=$(((_t * 2 + 4095) / 4096 * 4096))
	[ "$_j" -lt 16384 ] && _j=16384
	echo $(((4096 + 2 * _slot + _j + 4095) / 4096))
}

# block_of FILE BLOCK: 4 KiB block BLOCK of FILE (or device) into /tmp/dmr-blk.
block_of() {
	dd if="$1" of=/tmp/dmr-blk bs=4096 skip="$2" count=1 iflag=direct 2>/dev/null
}

# status_field DEV N: field N (1-based) of the remap target's status after "remap".
status_field() {
	dmsetup status "$1" | awk -v n="$2" '{print $(3 + n)}'
}

# copy_sector SPARE_SECTORS I: first sector of metadata copy I (5 copies, 4 KiB blocks,
# spare region from sector 0).
copy_sector() {
	echo $(((($1 / 8) * $2 / 5) * 8))
}

# status_meta DEV N: field N of the metadata part of the status (1 copies_valid/N, 2 seq,
# 3 metadata bytes written).
status_meta() {
	status_field "$1" $((8 + $2))
}

# fio_ios DEV RW COUNT [BS]: exactly COUNT direct, synchronous I/Os of BS (default 4k).
fio_ios() {
	fio --name=n --filename="$1" --rw="$2" --bs="${4:-4k}" --direct=1 --ioengine=psync \
		--number_ios="$3" --size=16M --randrepeat=0 --output=/tmp/dmr-fio.txt ||
		{ cat /tmp/dmr-fio.txt; fail "fio $2 on $1 failed"; }
}

# expect_einval FILE VALUE: writing VALUE (as it is, one write) to FILE fails with EINVAL.
expect_einval() {
	if echo -n "$2" >"$1" 2>/tmp/dmr-werr; then
		fail "writing '$2' to $1 succeeded"
	fi
	grep -q 'Invalid argument' /tmp/dmr-werr || fail "writing '$2' to $1: $(cat /tmp/dmr-werr)"
}

# null_blk devices made through configfs (memory_backed, cache_size, badblocks, power).
NULLB_CFG=/sys/kernel/config/nullb

nullb_load() {
	grep -q '^null_blk ' /proc/modules || insmod "$DMR_EXTRA_MODULES/null_blk.ko" nr_devices=0
	grep -q ' /sys/kernel/config ' /proc/mounts || mount -t configfs none /sys/kernel/config
}

# nullb_create NAME MIB [ATTR=VALUE...]: a powered-on null_blk device /dev/NAME with these
# configfs attributes (e.g. memory_backed=1 cache_size=32 blocksize=4096); prints its path.
nullb_create() {
	nullb_load
	_n=$1
	_d=$NULLB_CFG/$_n
	mkdir "$_d"
	echo "$2" >"$_d/size"
	shift 2
	for _kv in "$@"; do
		echo "${_kv#*=}" >"$_d/${_kv%%=*}"
	done
	echo 1 >"$_d/power"
	echo "/dev/$_n"
}

# nullb_power NAME 0|1: a power cut (what was not flushed from the cache is lost) or
# power on; prints the device path after power on.
nullb_power() {
	echo "$2" >"$NULLB_CFG/$1/power"
	[ "$2" = 1 ] && echo "/dev/$1"
	return 0
}

# nullb_badblocks NAME FIRST_BLOCK LAST_BLOCK: 4 KiB blocks that fail reads and writes.
nullb_badblocks() {
	echo "+$(($2 * 8))-$(($3 * 8 + 7))" >"$NULLB_CFG/$1/badblocks"
}

# Removes every configfs null_blk device (cleanup_all unloads the module).
nullb_cleanup() {
	[ -d "$NULLB_CFG" ] || return 0
	for _d in "$NULLB_CFG"/*; do
		[ -d "$_d" ] || continue
		echo 0 >"$_d/power" 2>/dev/null || true
		rmdir "$_d" 2>/dev/null || true
	done
}

# write_block DEV BLOCK FILE [dsync]: writes FILE (4 KiB) to 4 KiB block BLOCK with direct
# I/O (and O_DSYNC: a FUA write, when given dsync); fails the test on error.
write_block() {
	dio_write "$1" $(($2 * 4096)) "$3" ${4:-} 2>/tmp/dmr-wb.err ||
		fail "write of block $2 to $1 failed: $(cat /tmp/dmr-wb.err)"
}

# status_frozen DEV: blocks frozen after a failed metadata commit (last status field).
status_frozen() {
	status_field "$1" 12
}

# io_error DEV RW OFFSET BS: one O_DIRECT I/O of BS bytes at byte OFFSET that must fail;
# prints the error (strerror text). fio, not dd: busybox dd falls back to buffered I/O
# when O_DIRECT is refused.
io_error() {
	if fio --name=e --filename="$1" --rw="$2" --bs="$4" --offset="$3" --size="$4" \
		--direct=1 --ioengine=psync --output=/tmp/dmr-ioerr.txt >/dev/null 2>&1; then
		fail "a $4-byte direct $2 at byte $3 of $1 succeeded"
	fi
	_e=$(sed -n 's/.*error=\([^)]*\)).*/\1/p' /tmp/dmr-ioerr.txt | head -1)
	[ -n "$_e" ] || cat /tmp/dmr-ioerr.txt >&2
	echo "$_e"
}

# fua_write DEV BLOCK BYTE: one asynchronous O_DIRECT|O_DSYNC write (fio, io_uring) of 4 KiB
# block BLOCK filled with byte value BYTE (0-255). Asynchronous: the block layer sends it
# with FUA and no flush after it (a synchronous O_DSYNC write gets a flush afterwards, which
# would hide a dropped FUA). Fails the test on error.
fua_write() {
	fio --name=fua --filename="$1" --rw=write --bs=4k --offset=$(($2 * 4096)) --size=4k \
		--ioengine=io_uring --direct=1 --sync=1 --buffer_pattern="$(printf '0x%02x' "$3")" \
		--output=/tmp/dmr-fua.txt >/dev/null 2>&1 ||
		{ cat /tmp/dmr-fua.txt; fail "FUA write of block $2 to $1 failed"; }
}

# byte_block PATH BYTE: a 4 KiB file filled with byte value BYTE.
byte_block() {
	head -c 4096 /dev/zero | tr '\000' "\\$(printf '%03o' "$2")" >"$1"
}

# scan_wait_pass DEV N SECONDS: waits until DEV's background scanner has completed N passes;
# fails after SECONDS.
scan_wait_pass() {
	_sc=/sys/kernel/dm_remap/$1/scanner
	_i=0
	while [ "$(cat "$_sc/passes")" -lt "$2" ]; do
		_i=$((_i + 1))
		[ "$_i" -le "$3" ] ||
			fail "$1: scan pass $2 not done after $3 s: state $(cat "$_sc/state"), position $(cat "$_sc/position")"
		sleep 1
	done
}

# Stress engine helpers for device DEV (default r0): stress_res KEY prints a value of the
# last run's results; stress_wait waits (up to SECONDS, default 120) for the run to end.
stress_res() {
	sed -n "s/^$1 //p" "/sys/kernel/dm_remap/${2:-r0}/stress/stress_test_results"
}
stress_wait() {
	_sd=/sys/kernel/dm_remap/${2:-r0}/stress
	_n=0
	while grep -q '^running' "$_sd/stress_test_status"; do
		sleep 0.2
		_n=$((_n + 1))
		[ "$_n" -lt $((${1:-120} * 5)) ] || fail "the stress run did not end"
	done
}
