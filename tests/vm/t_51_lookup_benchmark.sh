# /sys/kernel/dm_remap/lookup_benchmark: reads "0 0 0 0" before any run; a run gives four
# decimal fields with the entries and lookups written and nonzero costs, and a kernel log
# line with hits and misses apart; every bad write is refused with EINVAL, one larger than
# memory allows with ENOMEM, and the previous result stays; a write while a run goes on
# gets EBUSY and a read then shows the previous result; a 1,000,000-entry run completes
# and frees its table (slab and vmalloc back where they were); the module unloads
# afterwards. No timing is judged here (the goals are checked by scripts/bench under
# icount).
load_module
f=/sys/kernel/dm_remap/lookup_benchmark
[ "$(stat -c %a $f)" = 644 ] || fail "mode $(stat -c %a $f)"
[ "$(cat $f)" = "0 0 0 0" ] || fail "before any run: '$(cat $f)'"

# check ENTRIES LOOKUPS: the file shows that run, four decimal fields, costs above 0.
check() {
	_got=$(cat $f)
	echo "$_got" | grep -Eq '^[0-9]+ [0-9]+ [0-9]+ [0-9]+$' || fail "format: '$_got'"
	set -- $_got "$1" "$2"
	[ "$1 $2" = "$5 $6" ] || fail "shows '$_got' after a run of $5 entries, $6 lookups"
	[ "$3" -gt 0 ] && [ "$4" -gt 0 ] || fail "zero cost: '$_got'"
}

klog_mark
echo "1000 2001" >$f
check 1000 2001
echo "lookup_benchmark 1000 2001: $(cat $f)"
klog_since | grep -Eq 'lookup_benchmark: 1000 entries, 2001 lookups \(1001 hits, 1000 misses\): [0-9]+ ns per lookup \(hit [1-9][0-9]*, miss [1-9][0-9]*; tree walk alone: hit [1-9][0-9]*, miss [1-9][0-9]*\), [1-9][0-9]* ns per insert$' ||
	fail "kernel log: $(klog_since | grep lookup_benchmark)"
# The smallest run: one entry, one lookup (a hit).
echo "1 1" >$f
check 1 1
echo "1000 1000" >$f
check 1000 1000

# Bad input: EINVAL, the last result kept.
before=$(cat $f)
tab=$(printf '\t')
for v in " " 1000 "1000 " " 1000 1000" "1000  1000" "1000${tab}1000" "1000 1000 1" \
	"0 1000" "1000 0" "0 0" "16777217 1000" "1000 16777217" "18446744073709551616 1" \
	"99999999999999999999 1" "abc 1000" "1000 x" "-1 1000" "1000 -1" "1.5 1000" \
	"0x10 1000" "+5 1000" "1e3 1000" "1000,1000" "1000
1000" "1000 1000

"; do
	expect_einval $f "$v"
	[ "$(cat $f)" = "$before" ] || fail "'$v' changed the result to '$(cat $f)'"
done
expect_einval $f "1000 1000 "

# A run that needs more than half the available memory is refused with ENOMEM before it
# starts (the tree allocates with GFP_NOIO, which would wait for memory rather than fail).
# At the limit it needs 16,777,216 x 150 bytes (tree and hash index) plus 64 MiB of lookups
# and 6 MiB of filter and bitmap: refused in the suite's 2 GiB VM.
avail_kb=$(awk '$1 == "MemAvailable:" { print $2 }' /proc/meminfo)
if [ $((avail_kb / 2)) -lt $(((16777216 * 150 + 16777216 * 4 + 6 * 1048576) / 1024)) ]; then
	if echo "16777216 16777216" >$f 2>/tmp/dmr-werr; then
		fail "a run larger than half of MemAvailable ($avail_kb kB) was accepted"
	fi
	grep -q 'Cannot allocate memory' /tmp/dmr-werr || fail "too large a run: $(cat /tmp/dmr-werr)"
	[ "$(cat $f)" = "$before" ] || fail "a refused run changed the result to '$(cat $f)'"
	echo "16777216 entries refused with ENOMEM, $avail_kb kB available"
else
	echo "note: $avail_kb kB available, the ENOMEM check is left out"
fi

# A 1,000,000-entry run; meanwhile a second write gets EBUSY and a read shows the previous
# result. Then its memory is back: a leaked table would keep tens of MiB of tree nodes.
mem() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }
slab0=$(mem SUnreclaim)
vm0=$(mem VmallocUsed)
klog_mark
echo "1000000 100000" >$f &
big=$!
# Time for the background write to start the run (which takes tens of seconds here).
sleep 2
busy=0
late=0
while kill -0 $big 2>/dev/null; do
	if echo "1000 1000" >$f 2>/tmp/dmr-busy; then
		kill -0 $big 2>/dev/null && fail "a second run was accepted while the first went on"
		# The big run ended between the two checks.
		late=1
		break
	fi
	grep -q 'busy' /tmp/dmr-busy || fail "second writer: $(cat /tmp/dmr-busy)"
	busy=1
	during=$(mem SUnreclaim)
	[ "$(cat $f)" = "$before" ] || fail "read during a run: '$(cat $f)', want '$before'"
	sleep 1
done
wait $big || fail "the 1,000,000-entry run failed"
[ "$busy" = 1 ] || echo "note: the run ended before a second writer saw it"
klog_since | grep -q 'lookup_benchmark: 1000000 entries, 100000 lookups (50000 hits, 50000 misses)' ||
	fail "no kernel log line of the 1,000,000-entry run"
if [ "$late" = 1 ]; then
	check 1000 1000
else
	check 1000000 100000
fi
echo "lookup_benchmark 1000000 100000: $(klog_since | grep 'lookup_benchmark: 1000000')"
# Tree nodes replaced during the inserts are freed after an RCU grace period.
sleep 1
slab1=$(mem SUnreclaim)
vm1=$(mem VmallocUsed)
echo "SUnreclaim ${slab0} -> ${during:-?} (during the run) -> ${slab1} kB, VmallocUsed ${vm0} -> ${vm1} kB"
[ $((slab1 - slab0)) -lt 2048 ] || fail "slab grew by $((slab1 - slab0)) kB"
[ $((vm1 - vm0)) -lt 1024 ] || fail "vmalloc grew by $((vm1 - vm0)) kB"

rmmod dm_remap
[ ! -e /sys/kernel/dm_remap ] || fail "tree left after rmmod"
# Loaded again: no result yet.
load_module
[ "$(cat $f)" = "0 0 0 0" ] || fail "after reload: '$(cat $f)'"
rmmod dm_remap
