# A FUA write that the worker re-issues keeps FUA (defect 2 of the integrity issue). The
# main device is a null_blk with a volatile write cache whose block fails one write
# (badblocks_once): the worker writes the block again, which succeeds. A power cut right
# after the acknowledgement must not lose it. The writes are asynchronous O_DSYNC writes
# (FUA with no flush after them; see fua_write in lib.sh). Before the fix the re-issued
# write went without FUA into the cache and the power cut dropped it.
load_module
main=$(nullb_create nb_m 64 memory_backed=1 cache_size=32 badblocks_once=1)
spare=$(nullb_create nb_s 16 memory_backed=1 cache_size=8)
len=$(sectors "$main")
table() { echo "0 $len remap $1 $2 0 $(sectors "$2")"; }
dmsetup create r0 --table "$(table "$main" "$spare")"
for b in 7 300 4000; do
	nullb_badblocks nb_m "$b" "$b"
done
for b in 7 300 4000 9; do
	fua_write /dev/mapper/r0 "$b" $((b % 251 + 1))
	byte_block /tmp/dmr-b$b $((b % 251 + 1))
done
echo "status: $(dmsetup status r0)"
# Each first write failed (the worker's retry succeeded, so no write error is counted).
[ "$(dmesg | grep -c 'I/O error, dev nb_m')" = 3 ] || fail "test set-up: want 3 failed writes on nb_m"
[ "$(status_field r0 5)" = 0 ] || fail "a retried write remapped a block: $(dmsetup status r0)"
# Power cut: both caches are dropped.
nullb_power nb_m 0
nullb_power nb_s 0
dmsetup remove r0
main=$(nullb_power nb_m 1)
spare=$(nullb_power nb_s 1)
dmsetup create r0 --table "$(table "$main" "$spare")"
for b in 7 300 4000 9; do
	block_of /dev/mapper/r0 "$b"
	cmp -s /tmp/dmr-blk /tmp/dmr-b$b || fail "acknowledged FUA write to block $b lost in the power cut"
done
dmsetup remove r0
