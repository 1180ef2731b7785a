# The /sys/kernel/dm_remap tree: a directory per device that follows create, reload,
# rename and remove; file modes; every bad write is refused with EINVAL and changes
# nothing; a file held open across removal fails cleanly; readers racing create/remove
# loops cause no kernel warnings; no kernel addresses anywhere; rmmod removes the tree.
load_module
r=/sys/kernel/dm_remap
[ "$(cat $r/version)" = "$(dmsetup targets | awk '$1 == "remap" { print $2 }' | tr -d v)" ] ||
	fail "version $(cat $r/version), dmsetup targets: $(dmsetup targets | grep remap)"
[ -z "$(cat $r/devices)" ] || fail "devices before any: $(cat $r/devices)"
main=$(make_disk main 64)
spare=$(make_disk spare 16)
len=$(sectors "$main")
ss=$(sectors "$spare")
dmsetup create r0 --table "0 $len remap $main $spare 0 $ss"
[ "$(cat $r/devices)" = r0 ] || fail "devices: $(cat $r/devices)"
for g in stats latency baseline remaps metadata scanner stress; do
	[ -d "$r/r0/$g" ] || fail "no $g/"
done

# Modes: actions 0200, settings 0644, everything else 0444.
cd $r/r0
for f in */*; do
	case $f in
	stats/reset | baseline/capture | scanner/control) want=200 ;;
	stats/enabled | stats/window_secs | baseline/threshold_pct | baseline/min_samples) want=644 ;;
	scanner/speed_m*_kib_s | scanner/slow_threshold_us | scanner/relocate_slow) want=644 ;;
	scanner/interval_hours) want=644 ;;
	stress/stress_test_start | stress/stress_test_stop | stress/quick_validation) want=200 ;;
	stress/memory_pressure_test) want=200 ;;
	stress/regression_test | stress/allow_writes) want=644 ;;
	*) want=444 ;;
	esac
	[ "$(stat -c %a "$f")" = "$want" ] || fail "$f has mode $(stat -c %a "$f"), want $want"
done
cd /tmp

# Bad writes: EINVAL, nothing changed.
for f in stats/enabled stats/reset stats/window_secs baseline/capture baseline/threshold_pct baseline/min_samples; do
	before=$(cat "$r/r0/$f" 2>/dev/null || echo write-only)
	for v in "
" abc -1 1.5 " 1" "1 " 0x1 99999999999999999999 "1
1" "1

"; do
		expect_einval "$r/r0/$f" "$v"
	done
	[ "$(cat "$r/r0/$f" 2>/dev/null || echo write-only)" = "$before" ] || fail "$f changed"
done
expect_einval $r/r0/stats/enabled 2
expect_einval $r/r0/stats/reset 0
expect_einval $r/r0/baseline/capture 0
expect_einval $r/r0/stats/window_secs 0
expect_einval $r/r0/stats/window_secs 3601
expect_einval $r/r0/baseline/threshold_pct 10001
expect_einval $r/r0/baseline/min_samples 0
# Good values with echo's newline are taken.
echo 3600 >$r/r0/stats/window_secs
echo 0 >$r/r0/baseline/threshold_pct
echo 7 >$r/r0/baseline/min_samples
[ "$(cat $r/r0/stats/window_secs) $(cat $r/r0/baseline/threshold_pct) $(cat $r/r0/baseline/min_samples)" = "3600 0 7" ] ||
	fail "settings not taken"
# Read-only files refuse writes (permission), write-only ones refuse reads.
expect_fail sh -c "echo 1 >$r/r0/stats/reads"
expect_fail cat $r/r0/stats/reset

# Two remap targets in one table share the device's directory.
spare2=$(make_disk spare2 16)
dmsetup create two --table "0 8192 remap $main $spare2 0 4096
8192 8192 remap $main $spare2 4096 4096"
[ "$(printf '%s\n' $(cat $r/devices) | sort | tr '\n' ' ')" = "r0 two " ] || fail "devices: $(cat $r/devices)"
fio_ios /dev/mapper/two read 4 2048k
[ "$(cat $r/two/stats/reads)" -ge 4 ] || fail "two: $(cat $r/two/stats/reads) reads"
dmsetup remove two
[ ! -e $r/two ] || fail "two/ left behind"

# Rename: the directory follows within the ticker's second.
dmsetup rename r0 renamed
sleep 2
[ -d $r/renamed ] && [ ! -e $r/r0 ] || fail "after rename: $(ls $r)"
[ "$(cat $r/devices)" = renamed ] || fail "devices after rename: $(cat $r/devices)"

# A file held open across the removal of its device: reads fail, nothing breaks.
exec 3<$r/renamed/stats/reads
dmsetup remove renamed
[ ! -e $r/renamed ] || fail "directory left after remove"
if cat <&3 >/tmp/dmr-held 2>&1; then
	[ ! -s /tmp/dmr-held ] || fail "read after removal gave: $(cat /tmp/dmr-held)"
fi
exec 3<&-

# Readers of every file while devices come and go.
(
	end=$(($(date +%s) + 20))
	while [ "$(date +%s)" -lt "$end" ]; do
		find $r -type f -perm -444 -exec cat {} + >/tmp/dmr-all 2>/dev/null || true
		grep -l '0xffff\|ffff8' /tmp/dmr-all 2>/dev/null && echo "ADDRESS" >>/tmp/dmr-addr
	done
) &
readers=$!
n=0
while kill -0 $readers 2>/dev/null; do
	dmsetup create c$n --table "0 $len remap $main $spare 0 $ss"
	dd if=/dev/mapper/c$n of=/dev/null bs=4k count=8 iflag=direct 2>/dev/null
	dmsetup reload c$n --table "0 $len remap $main $spare 0 $ss"
	dmsetup suspend c$n
	dmsetup resume c$n
	dmsetup remove c$n
	n=$((n + 1))
done
wait $readers || true
echo "$n create/reload/remove cycles under readers"
[ "$n" -ge 3 ] || fail "only $n cycles"
[ ! -s /tmp/dmr-addr ] || fail "a file shows a kernel address"
[ -z "$(cat $r/devices)" ] || fail "devices left: $(cat $r/devices)"

rmmod dm_remap
[ ! -e $r ] || fail "$r left after rmmod"
