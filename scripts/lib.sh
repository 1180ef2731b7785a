# shellcheck shell=bash
# Common paths and helpers, sourced by every script in scripts/ and tests/.
# One place decides where the cache lives and which kernel we build against.

DMR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DMR_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/dm-remap"
DMR_KVER_SERIES="7.3"

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Version string of the active rustc, e.g. "1.95.0".
rustc_version() { rustc --version | cut -d' ' -f2; }

# Environment every kernel or module build needs: the libclang the kernel accepts, bindgen,
# and the Rust standard library source matching rustc.
dmr_toolchain_env() {
	export LIBCLANG_PATH="$DMR_CACHE/libclang/libclang-18.1.1.data/platlib/clang/native"
	export PATH="$DMR_CACHE/bindgen/bin:$PATH"
	export RUST_LIB_SRC="$DMR_CACHE/rust-src/$(rustc_version)/usr/lib/rustlib/src/rust/library"
	[ -f "$LIBCLANG_PATH/libclang.so" ] || die "libclang missing; run scripts/setup"
	[ -x "$DMR_CACHE/bindgen/bin/bindgen" ] || die "bindgen missing; run scripts/setup"
	[ -d "$RUST_LIB_SRC/core" ] || die "rust-src missing; run scripts/setup"
}

# Directory holding the unpacked kernel source tree.
dmr_kernel_src() {
	local d
	d=$(cat "$DMR_CACHE/src/current" 2>/dev/null) || die "kernel source missing; run scripts/setup"
	echo "$DMR_CACHE/src/$d"
}

# The config fragments of the test kernel: kernel/config.fragment, plus
# kernel/debug.fragment with DMR_KERNEL_DEBUG=1 (lockdep, slab poisoning and checks, debug
# objects; not KASAN, see the fragment), or
# kernel/bench.fragment with DMR_KERNEL_BENCH=1 (the benchmark kernel: the hot path built
# as distributions build it).
dmr_kernel_fragments() {
	echo "$DMR_ROOT/kernel/config.fragment"
	if [ "${DMR_KERNEL_DEBUG:-0}" = 1 ]; then
		echo "$DMR_ROOT/kernel/debug.fragment"
	fi
	if [ "${DMR_KERNEL_BENCH:-0}" = 1 ]; then
		echo "$DMR_ROOT/kernel/bench.fragment"
	fi
}

# Cache key of the test kernel: kernel version + config fragments + rustc version.
dmr_kernel_key() {
	local src
	src=$(dmr_kernel_src)
	# shellcheck disable=SC2046
	{ basename "$src"; cat $(dmr_kernel_fragments); rustc --version; } |
		sha256sum | cut -c1-16
}

# Build directory (O=) of the cached test kernel.
dmr_kernel_build() { echo "$DMR_CACHE/kernel/$(dmr_kernel_key)"; }
