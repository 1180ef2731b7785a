# Discards pass through to the main device at the right offset.
load_module
main=$(make_disk main 16)
spare=$(make_disk spare 4)
other=$(make_disk other 1)
len=$(sectors "$main")
printf '0 2048 linear %s 0\n2048 %s remap %s %s 0 2048\n' "$other" "$len" "$main" "$spare" |
	dmsetup create r0
random_file /tmp/dmr-p 1024
dd if=/tmp/dmr-p of="$main" bs=4096 oflag=direct 2>/dev/null
# Discard main blocks 16..31 (dm offset 1 MiB + 64 KiB, 64 KiB long).
blkdiscard -o $((1048576 + 65536)) -l 65536 /dev/mapper/r0
dd if=/tmp/dmr-p of=/tmp/dmr-head bs=4096 count=16 2>/dev/null
dd if=/tmp/dmr-p of=/tmp/dmr-tail bs=4096 skip=32 2>/dev/null
dd if=/dev/zero of=/tmp/dmr-zero bs=4096 count=16 2>/dev/null
same_bytes "$main" 0 /tmp/dmr-head
same_bytes "$main" 16 /tmp/dmr-zero
same_bytes "$main" 32 /tmp/dmr-tail
# A discard over a remapped block goes to its spare block, not to main.
random_file /tmp/dmr-p2 4
dd if=/tmp/dmr-p2 of=/dev/mapper/r0 bs=4096 seek=$((256 + 40)) oflag=direct 2>/dev/null
r=$(dmsetup message r0 2048 remap 41)
s=$(echo "$r" | awk '{print $3}')
blkdiscard -o $((1048576 + 40 * 4096)) -l 16384 /dev/mapper/r0
dd if=/dev/zero of=/tmp/dmr-zero4 bs=4096 count=1 2>/dev/null
dd if="$spare" of=/tmp/dmr-blk bs=512 skip=$((s * 8)) count=8 2>/dev/null
cmp /tmp/dmr-blk /tmp/dmr-zero4 || fail "spare block $s not discarded"
dd if=/tmp/dmr-p2 of=/tmp/dmr-b41 bs=4096 skip=1 count=1 2>/dev/null
same_bytes "$main" 41 /tmp/dmr-b41
dmsetup remove r0
