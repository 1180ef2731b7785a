# The background scanner's cursor, committed through the test hook as the scanner does:
# survives a table reload, remove + create and rmmod + insmod, the last one committed wins,
# also when a full journal turns its commit into a checkpoint (the cursor is then in the
# superblocks); dm-remap-tool dump shows it; a cursor out of range is refused. Metadata of
# format version 1 loads with the default cursor and is rewritten as version 2 at once.
load_module
disk=$(make_disk disk 64)
spare=$(make_disk spare 16)
len=$(sectors "$disk")
slen=$(sectors "$spare")
table="0 $len remap $disk $spare 0 $slen"
cursor() {
	dmsetup message r0 0 test_scan_cursor "$@"
}
# dumped NAME WANT: dm-remap-tool dump of the spare shows cursor WANT.
dumped() {
	dm-remap-tool dump "$spare" >/tmp/dmr-dump || fail "$1: tool dump failed"
	grep -qx "scanner position $2" /tmp/dmr-dump ||
		fail "$1: dump shows $(grep scanner /tmp/dmr-dump), want $2"
}
dmsetup create r0 --table "$table"
[ "$(cursor)" = "0 0 idle" ] || fail "fresh cursor: $(cursor)"
[ "$(cursor 1000 2 idle)" = "1000 2 idle" ] || fail "commit: $(cursor)"
dmsetup message r0 0 remap 7 >/dev/null
[ "$(cursor 2000 2 paused)" = "2000 2 paused" ] || fail "second commit: $(cursor)"
expect_fail cursor 72057594037927936 0 idle
expect_fail cursor 5 0 stopped
[ "$(cursor)" = "2000 2 paused" ] || fail "a refused cursor changed it: $(cursor)"

dmsetup reload r0 --table "$table"
dmsetup resume r0
[ "$(cursor)" = "2000 2 paused" ] || fail "table reload: $(cursor)"
dmsetup remove r0
dumped "remove" "2000 passes 2 state paused"
dmsetup create r0 --table "$table"
[ "$(cursor)" = "2000 2 paused" ] || fail "remove + create: $(cursor)"
[ "$(dmsetup message r0 0 query 7)" != "7 main" ] || fail "remap 7 lost"

# (States idle and paused only: a running one would start the scan, which moves it.)
# Commits of one cursor each until the journal is full and one becomes a checkpoint.
i=0
while :; do
	i=$((i + 1))
	[ "$i" -le 100 ] || fail "no checkpoint after 100 commits"
	bytes=$(status_meta r0 3)
	[ "$(cursor "$((3000 + i))" 3 paused)" = "$((3000 + i)) 3 paused" ] || fail "commit $i"
	[ "$(($(status_meta r0 3) - bytes))" = $((5 * 512)) ] || break
done
echo "commit $i was a checkpoint"
dmsetup remove r0
dumped "checkpoint" "$((3000 + i)) passes 3 state paused"
dm-remap-tool check "$spare" >/tmp/dmr-check || { cat /tmp/dmr-check; fail "tool check"; }
grep -q "valid, checkpoint seq [0-9]* ([0-9]* entries), 0 journal records" /tmp/dmr-check ||
	fail "the last commit is not a checkpoint: $(cat /tmp/dmr-check)"
rmmod dm_remap
insmod "$DMR_MODULE"
dmsetup create r0 --table "$table"
[ "$(cursor)" = "$((3000 + i)) 3 paused" ] || fail "rmmod + insmod: $(cursor)"
dmsetup remove r0

# Version 1 metadata: read with the default cursor, rewritten as version 2 by the load.
v1_superblocks "$spare" "$slen"
dm-remap-tool check "$spare" >/tmp/dmr-check || { cat /tmp/dmr-check; fail "tool check v1"; }
[ "$(grep -c 'valid, format version 1' /tmp/dmr-check)" = 5 ] ||
	fail "not version 1: $(cat /tmp/dmr-check)"
dmsetup create r0 --table "$table"
[ "$(cursor)" = "0 0 idle" ] || fail "version 1 cursor: $(cursor)"
[ "$(dmsetup message r0 0 query 7)" != "7 main" ] || fail "remap 7 lost in the upgrade"
dmsetup remove r0
dm-remap-tool check "$spare" >/tmp/dmr-check || { cat /tmp/dmr-check; fail "tool check v2"; }
grep -q 'format version' /tmp/dmr-check && fail "not rewritten by the load: $(cat /tmp/dmr-check)"
dmsetup create r0 --table "$table"
[ "$(cursor 42 1 idle)" = "42 1 idle" ] || fail "commit after the upgrade"
dmsetup remove r0
dumped "after the upgrade" "42 passes 1 state idle"
