#!/usr/bin/env bash
# Checks that docs/ABI/sysfs-kernel-dm_remap describes exactly the files sysfs/files.rs
# creates: every file in the code has a "What:" line and every "What:" names a file (or a
# directory) that exists. Prints the differences; exits non-zero when there are any.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
code=$(awk '
	/^const STATS: /    { g = "DEV/stats/" }
	/^const LATENCY: /  { g = "DEV/latency/" }
	/^const BASELINE: / { g = "DEV/baseline/" }
	/^const REMAPS: /   { g = "DEV/remaps/" }
	/^const METADATA: / { g = "DEV/metadata/" }
	/^const SCANNER: /  { g = "DEV/scanner/" }
	/^const STRESS: /   { g = "DEV/stress/" }
	/^impl Files for Root/ { g = "" }
	/^impl Files for Device/ { g = "skip" }
	g != "skip" && /(name: |!\()c"[a-z0-9_]+"/ {
		match($0, /c"[a-z0-9_]+"/)
		print "/sys/kernel/dm_remap/" g substr($0, RSTART + 2, RLENGTH - 3)
	}' "$root/sysfs/files.rs" | sort -u)
doc=$(sed -n 's/^What:[[:space:]]*//p' "$root/docs/ABI/sysfs-kernel-dm_remap" | grep -v '/$' | sort -u)
missing=$(comm -23 <(echo "$code") <(echo "$doc"))
extra=$(comm -13 <(echo "$code") <(echo "$doc"))
[ -n "$missing" ] && echo "not in docs/ABI/sysfs-kernel-dm_remap:" && echo "$missing"
[ -n "$extra" ] && echo "documented but not in sysfs/files.rs:" && echo "$extra"
n=$(echo "$code" | wc -l)
[ -z "$missing" ] && [ -z "$extra" ] && [ "$n" -gt 50 ] && echo "$n files, all documented"
