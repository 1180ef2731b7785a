# map() enters the SRCU read section before it looks the table up (defect 1 of the
# integrity issue). The test build's hook `test_delay_map <block> <ms>` holds the next bio
# of a block in map() right after its lookup, which makes the race deterministic:
# - write vs. move: a write routed to main waits; `remap` of its block must wait for it,
#   so the moved copy holds the new data. With the section entered after the lookup, the
#   move copied the old data and the acknowledged write was lost.
# - read vs. unremap + reuse: a read routed to spare block s waits; `unremap` frees s and
#   the next `remap` takes s (the only free one) for another block. The read must return
#   its own block's data, not the other block's.
load_module
main=$(make_disk main 16)
# 43 blocks of 4 KiB: 5 metadata copies of 7 blocks leave 8 spare data blocks.
spare=$(make_disk spare 1)
len=$(sectors "$main")
dmsetup create r0 --table "0 $len remap $main $spare 0 344"
[ "$(dmsetup status r0 | awk '{print $4}')" = "0/8" ] || fail "want 8 spare blocks: $(dmsetup status r0)"
random_file /tmp/dmr-p 64
dd if=/tmp/dmr-p of=/dev/mapper/r0 bs=4096 oflag=direct 2>/dev/null
block_of /tmp/dmr-p 40
cp /tmp/dmr-blk /tmp/dmr-new

# Write vs. move (block 10, empty table: the write takes the fast path).
dmsetup message r0 0 test_delay_map 10 2000
write_block /dev/mapper/r0 10 /tmp/dmr-new &
pid=$!
sleep 0.5
dmsetup message r0 0 remap 10 >/dev/null
wait "$pid" || fail "the delayed write failed"
block_of /dev/mapper/r0 10
if cmp -s /tmp/dmr-blk /tmp/dmr-new; then
	result PASS map_race:write_vs_move
else
	result FAIL map_race:write_vs_move "the acknowledged write to block 10 was lost"
fi

# Read vs. unremap and reuse: fill the spare so block 20's spare block is the last one.
for b in 20 21 22 23 24 25 26; do
	dmsetup message r0 0 remap "$b" >/dev/null
done
s=$(dmsetup message r0 0 query 20 | awk '{print $3}')
dmsetup message r0 0 test_delay_map 20 2000
dd if=/dev/mapper/r0 of=/tmp/dmr-read bs=4096 skip=20 count=1 iflag=direct 2>/dev/null &
pid=$!
sleep 0.5
dmsetup message r0 0 unremap 20 >/dev/null
got=$(dmsetup message r0 0 remap 30)
wait "$pid" || fail "the delayed read failed"
[ "$got" = "30 spare $s" ] || fail "test set-up: block 30 got '$got', want spare block $s"
block_of /tmp/dmr-p 20
if cmp -s /tmp/dmr-read /tmp/dmr-blk; then
	result PASS map_race:read_vs_unremap_reuse
else
	result FAIL map_race:read_vs_unremap_reuse "block 20's read returned other data"
fi
dmsetup remove r0
