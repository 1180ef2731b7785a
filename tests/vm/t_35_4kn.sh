# 4Kn devices (4096-byte logical blocks): main and spare are null_blk with blocksize 4096
# (defect 6: the spare was refused, metadata I/O was in 512-byte units). Blocks that fail
# are remapped, the table survives re-creation, the tool checks it, and one commit writes
# one 4096-byte record per copy.
load_module
main=$(nullb_create nb_m 64 memory_backed=1 blocksize=4096)
spare=$(nullb_create nb_s 16 memory_backed=1 blocksize=4096)
[ "$(blockdev --getss "$spare")" = 4096 ] || fail "test set-up: spare is not 4Kn"
len=$(sectors "$main")
table="0 $len remap $main $spare 0 $(sectors "$spare")"
dmsetup create r0 --table "$table"
random_file /tmp/dmr-p 4096
dd if=/tmp/dmr-p of=/dev/mapper/r0 bs=64k oflag=direct 2>/dev/null || fail "initial write"
bytes0=$(status_meta r0 3)
dmsetup message r0 0 remap 3 >/dev/null
[ $(($(status_meta r0 3) - bytes0)) = $((5 * 4096)) ] || fail "one commit wrote $(($(status_meta r0 3) - bytes0)) bytes"
for b in 10 11 2000 4095; do nullb_badblocks nb_m "$b" "$b"; done
dd if=/tmp/dmr-p of=/dev/mapper/r0 bs=64k oflag=direct 2>/dev/null || fail "writes over failing blocks"
[ "$(dmsetup message r0 0 count)" = "5 0" ] || fail "want 5 remaps: $(dmsetup message r0 0 count)"
dmsetup remove r0
dmsetup create r0 --table "$table" || fail "the 4Kn spare's table does not load"
[ "$(dmsetup message r0 0 count)" = "5 0" ] || fail "after re-create: $(dmsetup message r0 0 count)"
same_bytes /dev/mapper/r0 0 /tmp/dmr-p
dmsetup remove r0
dm-remap-tool check "$spare" >/tmp/dmr-check || { cat /tmp/dmr-check; fail "tool check on the 4Kn spare"; }
