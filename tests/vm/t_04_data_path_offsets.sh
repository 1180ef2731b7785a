# A distinct pattern per 4 KiB block written through the device lands at the right offsets
# of the main device, also when the remap target does not start at sector 0 of the table.
load_module
main=$(make_disk main 32)
spare=$(make_disk spare 8)
other=$(make_disk other 4)
len=$(sectors "$main")
# First 1 MiB of the dm device is another device; the remap target starts at sector 2048.
printf '0 2048 linear %s 0\n2048 %s remap %s %s 0 2048\n' "$other" "$len" "$main" "$spare" |
	dmsetup create r0
blocks=$(((2048 + len) / 8))
random_file /tmp/dmr-pattern "$blocks"
dd if=/tmp/dmr-pattern of=/dev/mapper/r0 bs=4096 oflag=direct 2>/dev/null
# Through the dm device.
same_bytes /dev/mapper/r0 0 /tmp/dmr-pattern
# On the main device: dm block 256 + i is main block i.
dd if=/tmp/dmr-pattern of=/tmp/dmr-expect-main bs=4096 skip=256 2>/dev/null
same_bytes "$main" 0 /tmp/dmr-expect-main
dd if=/tmp/dmr-pattern of=/tmp/dmr-expect-other bs=4096 count=256 2>/dev/null
same_bytes "$other" 0 /tmp/dmr-expect-other
# Nothing was remapped.
[ "$(dmsetup message r0 2048 count)" = "0 0" ] || fail "blocks were remapped"
dmsetup remove r0
