# Checkpoint memory does not grow with the spare region (defect 7): a 1 TiB spare region
# (268 million blocks; a checkpoint slot of 4 GiB, a journal of 512 MiB) on a sparse file,
# in a 2 GiB guest. Before, every checkpoint and every load allocated a slot-sized and a
# journal-sized buffer and this could not even be formatted. Now it formats, remaps,
# checkpoints (on re-creation after a corrupt copy) and loads, streaming through 64 KiB.
load_module
main=$(make_disk main 64)
dd if=/dev/zero of=/tmp/dmr-huge.img bs=1M count=0 seek=1048576 2>/dev/null
spare=$(losetup -f)
losetup "$spare" /tmp/dmr-huge.img
slen=$(sectors "$spare")
len=$(sectors "$main")
table="0 $len remap $main $spare 0 $slen"
dmsetup create r0 --table "$table" || fail "cannot create over a 1 TiB spare region"
for b in 1 2 3 1000; do dmsetup message r0 0 remap "$b" >/dev/null; done
dmsetup remove r0
# Corrupt copy 2's superblock: the load repairs it with a checkpoint.
dd if=/dev/urandom of="$spare" bs=512 seek="$(copy_sector "$slen" 2)" count=8 conv=notrunc 2>/dev/null
dmsetup create r0 --table "$table" || fail "reload failed"
[ "$(dmsetup message r0 0 count)" = "4 0" ] || fail "remaps lost: $(dmsetup message r0 0 count)"
[ "$(status_meta r0 1)" = 5/5 ] || fail "copy not repaired: $(dmsetup status r0)"
echo "status: $(dmsetup status r0)"
dmsetup remove r0
losetup -d "$spare"
rm -f /tmp/dmr-huge.img
