# Feature arguments are re-emitted, and the emitted table line loads again unchanged.
load_module
main=$(make_disk main 32)
spare=$(make_disk spare 8)
len=$(sectors "$main")
dmsetup create r0 --table "0 $len remap $main $spare 64 1024 2 block_size 8192"
want="0 $len remap $(devno "$main") $(devno "$spare") 64 1024 2 block_size 8192"
[ "$(dmsetup table r0)" = "$want" ] || fail "table: $(dmsetup table r0)"
dmsetup table r0 >/tmp/dmr-table
dmsetup reload r0 /tmp/dmr-table
dmsetup resume r0
[ "$(dmsetup table r0)" = "$want" ] || fail "after reload: $(dmsetup table r0)"
dmsetup remove r0
