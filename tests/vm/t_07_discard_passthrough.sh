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
dmsetup remove r0
