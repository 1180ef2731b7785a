# insmod registers the remap target; rmmod unregisters it; a second insmod is refused cleanly.
insmod "$DMR_MODULE"
grep -q '^dm_remap ' /proc/modules || fail "dm_remap not in /proc/modules"
dmsetup targets | grep -Eq '^remap +v0\.6\.0$' || fail "remap v0.6.0 not in dmsetup targets"
expect_fail insmod "$DMR_MODULE"
rmmod dm_remap
if grep -q '^dm_remap ' /proc/modules; then fail "dm_remap still loaded"; fi
if dmsetup targets | grep -q '^remap '; then fail "remap target still registered"; fi
# A second load/unload cycle works the same.
insmod "$DMR_MODULE"
rmmod dm_remap
