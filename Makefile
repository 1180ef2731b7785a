# SPDX-License-Identifier: GPL-2.0
#
# Builds dm-remap.ko against the cached test kernel (scripts/build-kernel), or against any
# Rust-enabled kernel build tree given as KDIR=.
#
#   make                 build dm-remap.ko
#   make DMR_TEST_HOOKS=1  the test build (src/test_hooks.rs: fault injection for tests)
#   make KDIR=/path      build against another kernel (configured with CONFIG_RUST=y)
#   make check           rustfmt + clippy (kernel CLIPPY=1) with zero warnings
#   make test            the whole test suite (tests/run_tests.sh)
#   make clean

SHELL := /bin/bash
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
CACHE := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/dm-remap

# Evaluated once, and only by targets that need a kernel (so `make clean` does not build one).
ifeq ($(KDIR),)
KDIR = $(eval KDIR := $(shell $(ROOT)/scripts/build-kernel))$(KDIR)
endif
RUSTFMT_CONFIG = $(firstword $(wildcard $(KDIR)/source/.rustfmt.toml $(KDIR)/.rustfmt.toml))

# The toolchain pieces scripts/setup installs; harmless when building against a kernel
# whose tools are found otherwise.
TOOLENV = $(shell source $(ROOT)/scripts/lib.sh && dmr_toolchain_env >/dev/null 2>&1 && \
	echo LIBCLANG_PATH=$$LIBCLANG_PATH PATH=$$PATH RUST_LIB_SRC=$$RUST_LIB_SRC)

KMAKE = env $(TOOLENV) $(MAKE) -C $(KDIR) M=$(ROOT)

# Crate roots: rustfmt follows their `mod` declarations (not the generated bindings, which
# come in through include!).
RUST_ROOTS = $(ROOT)/src/dm_remap.rs $(ROOT)/src/logic/userspace.rs

.PHONY: all modules check fmt clean test

all: modules

modules:
	$(KMAKE) modules

# rustfmt with the kernel's configuration, then clippy builds (the kernel's CLIPPY=1
# runs clippy-driver with the kernel's lint set) of the test build (DMR_TEST_HOOKS=1) and
# the normal one, failing on any warning. The normal module is what is left built.
check:
	rustfmt --check --edition 2021 --config-path $(RUSTFMT_CONFIG) $(RUST_ROOTS)
	cargo fmt --all --check
	cargo clippy --quiet --workspace --all-targets -- -D warnings
	@touch $(ROOT)/src/dm_remap.rs
	@set -o pipefail; { $(KMAKE) CLIPPY=1 DMR_TEST_HOOKS=1 modules && \
		$(KMAKE) CLIPPY=1 modules; } 2>&1 | tee $(ROOT)/.clippy.log
	@if grep -q '^\(warning\|error\)' $(ROOT)/.clippy.log; then \
		echo "make check: clippy or rustc reported warnings (see above)"; exit 1; fi
	@rm -f $(ROOT)/.clippy.log
	@# Layering: no FFI outside rust/ (its own bindings are private to it; the kernel
	@# crate's are public, so this grep), and no exception to `deny(unsafe_code)` beyond
	@# the one documented in src/dm_remap.rs.
	@if grep -rn 'bindings::' $(ROOT)/src $(ROOT)/sysfs --include='*.rs' | grep -v '^[^:]*:[0-9]*: *//'; then \
		echo "make check: FFI outside rust/ (above)"; exit 1; fi
	@n=$$(grep -rn 'allow(unsafe_code)' $(ROOT)/src $(ROOT)/sysfs --include='*.rs' | grep -v '^[^:]*:[0-9]*: *//' | wc -l); \
	if [ "$$n" != 1 ]; then grep -rn 'allow(unsafe_code)' $(ROOT)/src $(ROOT)/sysfs --include='*.rs'; \
		echo "make check: $$n allow(unsafe_code) outside rust/, want 1 (see src/dm_remap.rs)"; exit 1; fi
	@# No import cycle among the modules of src/ and sysfs/.
	@$(ROOT)/scripts/module-graph $(ROOT) >/dev/null
	@echo "make check: clean"

fmt:
	rustfmt --edition 2021 --config-path $(RUSTFMT_CONFIG) $(RUST_ROOTS)

test:
	$(ROOT)/tests/run_tests.sh

clean:
	rm -rf $(ROOT)/target
	find $(ROOT)/src $(ROOT)/rust \( -name '*.o' -o -name '.*.cmd' -o -name '*.d' \) -delete
	rm -f $(ROOT)/*.ko $(ROOT)/*.mod $(ROOT)/*.mod.c $(ROOT)/.*.cmd $(ROOT)/modules.order \
		$(ROOT)/Module.symvers $(ROOT)/rust/bindings_generated.rs
