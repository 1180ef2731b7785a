# The error path does not need memory (defect 9 of the integrity issue): with failslab
# failing every slab allocation whose call stack passes through dm-remap's code (the
# fault-injection stack filter, set to the module's address range), writes to failing
# blocks are still remapped. The worker's block buffer, the group's vectors and the
# metadata buffers are allocated once per table; the rest of the path uses mempools (dm-io,
# bio sets). Before, every deferred bio allocated a buffer and failed with EIO.
load_module
disk=$(make_disk disk 16)
spare=$(make_disk spare 8)
len=$(sectors "$disk")
main=$(bad_main badmain "$disk" 10 11 12 13 20 21)
dmsetup create r0 --table "0 $len remap $main $spare 0 $(sectors "$spare")"
# Reads of the bad blocks make their entries (Failing), so the moves below replace entries
# in place and need no new tree node either.
for b in 10 11 12 13 20 21; do
	io_error /dev/mapper/r0 read $((b * 4096)) 4096 >/dev/null
done
[ "$(dmsetup message r0 0 count)" = "0 6" ] || fail "test set-up: $(dmsetup message r0 0 count)"
for b in 10 11 12 13 20 21; do
	dd if=/dev/urandom of=/tmp/dmr-b$b bs=4096 count=1 2>/dev/null
done
# The module's address range (root sees real addresses in /proc/modules).
set -- $(awk '$1 == "dm_remap" { print $2, $6 }' /proc/modules)
size=$1
start=$2
# 64-bit shell arithmetic wraps above 2^63; the bit pattern is what matters.
end=$(printf '0x%x' $((start + size)))
fs=/sys/kernel/debug/failslab
[ -d "$fs" ] || fail "test set-up: no failslab in debugfs"
echo N >"$fs/ignore-gfp-wait"
echo 0 >"$fs/verbose"
echo 64 >"$fs/stacktrace-depth"
echo "$start" >"$fs/require-start"
echo "$end" >"$fs/require-end"
echo 0 >"$fs/space"
echo -1 >"$fs/times"
echo 1 >"$fs/interval"
echo 100 >"$fs/probability"
failed=""
for b in 10 11 12 13 20 21; do
	dio_write /dev/mapper/r0 $((b * 4096)) /tmp/dmr-b$b 2>/dev/null || failed="$failed $b"
done
echo 0 >"$fs/probability"
injected=$(dmesg | grep -c 'FAULT_INJECTION' || true)
echo "failslab on for dm-remap's stacks; writes that failed:${failed:- none}"
[ -z "$failed" ] || fail "writes to failing blocks failed while allocations failed:$failed"
[ "$(dmsetup message r0 0 count)" = "6 0" ] || fail "want 6 remaps: $(dmsetup message r0 0 count)"
for b in 10 11 12 13 20 21; do
	block_of /dev/mapper/r0 "$b"
	cmp -s /tmp/dmr-blk /tmp/dmr-b$b || fail "block $b data"
done
# The filter worked: an allocation from the module fails while it is on (a message's
# buffer), and works again after.
echo 100 >"$fs/probability"
expect_fail dmsetup message r0 0 remap 100
echo 0 >"$fs/probability"
dmsetup message r0 0 remap 100 >/dev/null || fail "remap after failslab is off"
echo "injected failures logged: $injected"
dmsetup remove r0
dmsetup remove badmain
