# Scanner control: every settable file refuses bad values (EINVAL, value kept), commands
# that do not apply are refused, pause/resume/stop through sysfs and `dmsetup message`;
# the position survives `dmsetup remove`/`create` (a running scan goes on from there),
# and `dm-remap-tool dump` shows the saved cursor.
load_module
disk=$(make_disk disk 512)
spare=$(make_disk spare 16)
len=$(sectors "$disk")
table="0 $len remap $disk $spare 0 $(sectors "$spare")"
dmsetup create r0 --table "$table"
s=/sys/kernel/dm_remap/r0/scanner
# Defaults.
[ "$(cat $s/speed_min_kib_s)" = 1000 ] && [ "$(cat $s/speed_max_kib_s)" = 200000 ] &&
	[ "$(cat $s/slow_threshold_us)" = 500000 ] && [ "$(cat $s/relocate_slow)" = 1 ] &&
	[ "$(cat $s/interval_hours)" = 0 ] || fail "defaults"
# bad FILE VALUE...: each write fails with EINVAL and the file keeps its value.
bad() {
	_f=$1
	shift
	_was=$(cat "$s/$_f")
	for _v in "$@"; do
		expect_einval "$s/$_f" "$_v"
		[ "$(cat "$s/$_f")" = "$_was" ] || fail "$_f changed by '$_v'"
	done
}
bad speed_min_kib_s 0 -1 abc 1.5 200001 10485761 "1 2" " "
bad speed_max_kib_s 0 999 10485761 x 18446744073709551616
bad slow_threshold_us 0 999 60000001 1e6
bad relocate_slow 2 -1 yes
bad interval_hours 8785 -1 x
for v in go START "start now" pause resume; do expect_einval $s/control "$v"; done
expect_fail dmsetup message r0 0 scan
expect_fail dmsetup message r0 0 scan go
expect_fail dmsetup message r0 0 scan pause
[ "$(cat $s/state)" = idle ] || fail "state after refused commands"
# Good values.
echo 2000 >$s/speed_max_kib_s
echo 1500 >$s/speed_min_kib_s
echo 1000 >$s/speed_min_kib_s
echo 0 >$s/relocate_slow
echo 1 >$s/relocate_slow
echo 20000 >$s/slow_threshold_us
echo 500000 >$s/slow_threshold_us
[ "$(cat $s/speed_max_kib_s)" = 2000 ] && [ "$(cat $s/speed_min_kib_s)" = 1000 ] || fail "settings"
# A pass at 2 MiB/s takes 32 s: time to pause, resume, stop and move the device.
pos() { cat $s/position; }
echo start >$s/control
[ "$(cat $s/state)" = running ] || fail "state after start: $(cat $s/state)"
sleep 3
p1=$(pos)
[ "$p1" -gt 0 ] || fail "no progress after 3 s"
echo pause >$s/control
[ "$(cat $s/state)" = paused ] || fail "state after pause"
p2=$(pos)
sleep 2
[ "$(pos)" = "$p2" ] || fail "position moved while paused: $p2 -> $(pos)"
[ "$(cat $s/eta_s)" != "" ] || fail "eta_s empty"
dmsetup message r0 0 scan resume
[ "$(cat $s/state)" = running ] || fail "state after resume"
sleep 3
[ "$(pos)" -gt "$p2" ] || fail "no progress after resume"
rate=$(cat $s/rate_kib_s)
[ "$rate" -gt 0 ] || fail "rate_kib_s $rate while running"
eta=$(cat $s/eta_s)
[ "$eta" != - ] || fail "eta_s - while running at $rate KiB/s"
dmsetup message r0 0 scan stop
[ "$(cat $s/state)" = idle ] || fail "state after stop"
p3=$(pos)
sleep 2
[ "$(pos)" = "$p3" ] || fail "position moved while stopped"
# Stopped: the position is saved, and a start goes on from it.
dmsetup remove r0
dm-remap-tool dump "$spare" >/tmp/dmr-dump.txt || fail "dump: $(cat /tmp/dmr-dump.txt)"
grep -q "^scanner position $p3 passes 0 state idle$" /tmp/dmr-dump.txt ||
	fail "dump after stop at $p3: $(grep scanner /tmp/dmr-dump.txt)"
dmsetup create r0 --table "$table"
[ "$(pos)" = "$p3" ] && [ "$(cat $s/state)" = idle ] || fail "after create: position $(pos), state $(cat $s/state)"
echo 2000 >$s/speed_max_kib_s
echo start >$s/control
sleep 3
p4=$(pos)
[ "$p4" -gt "$p3" ] || fail "start after create did not go on from $p3: $p4"
# Removed while running: it goes on running after create, from where it was.
dmsetup remove r0
dm-remap-tool dump "$spare" >/tmp/dmr-dump.txt
saved=$(awk '/^scanner position/ { print $3 }' /tmp/dmr-dump.txt)
grep -q "^scanner position $saved passes 0 state running$" /tmp/dmr-dump.txt ||
	fail "dump after remove while running: $(grep scanner /tmp/dmr-dump.txt)"
[ "$saved" -ge "$p4" ] || fail "saved position $saved below $p4"
# (Settings are not saved: at the default speed the rest of the pass takes a moment.)
dmsetup create r0 --table "$table"
echo 2000 >$s/speed_max_kib_s
[ "$(cat $s/state)" = running ] || fail "state after create: $(cat $s/state)"
[ "$(pos)" -ge "$saved" ] || fail "position after create $(pos) < $saved"
# A suspend stops it within a chunk; a resume goes on.
dmsetup suspend r0
p5=$(pos)
sleep 2
[ "$(pos)" = "$p5" ] || fail "position moved while suspended"
dmsetup resume r0
sleep 3
[ "$(pos)" -gt "$p5" ] || fail "no progress after resume"
dmsetup remove r0
