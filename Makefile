# bulkhead's front door. 'make' builds, 'make check' runs every test, 'make demo' runs
# the default example, 'make bench' measures. Meson + ninja do the real work; inmates
# (freestanding guest programs) are built by inmates/Makefile with the host gcc.

BUILD      ?= build
ASAN_BUILD ?= build-asan
PYTHON     ?= /usr/bin/python3
BULKHEAD    = $(BUILD)/bulkhead

.PHONY: all deps bulkhead inmates asan check unit-check system-check demo bench fuzz clean guest rig

all: bulkhead inmates

deps:
	@scripts/deps.sh

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) >/dev/null

$(ASAN_BUILD)/build.ninja: | deps
	meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false >/dev/null

bulkhead: $(BUILD)/build.ninja
	ninja -C $(BUILD)

inmates: | deps
	$(MAKE) -C inmates O=$(abspath $(BUILD))/inmates

asan: $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

# Unit tests run twice: plain and under AddressSanitizer + UBSan. System tests drive the
# real binary (and again the sanitized one for the system-file checks).
check: all asan
	@scripts/check.sh $(BUILD) $(ASAN_BUILD)

demo: all
	$(BULKHEAD) check examples/demo.yaml
	$(BULKHEAD) run examples/demo.yaml
	$(BULKHEAD) run examples/storage.yaml
	$(BULKHEAD) run examples/network.yaml
	BULKHEAD=$(BULKHEAD) scripts/demo-restart.sh

bench: all
	@mkdir -p $(BUILD)/bench
	@scripts/bench.sh $(BUILD)

# The Linux guest image (kernel + initramfs) for Linux partitions, from Debian packages;
# does nothing when up to date. See docs/guest.md.
guest: | deps
	@$(PYTHON) guest/build.py --out $(abspath $(BUILD))/guest

# The rig: a QEMU-TCG machine (-cpu max) whose /dev/kvm is KVM on emulated SVM, with
# bulkhead, the inmates and the guest image inside; rig/run.py SYSTEM.yaml runs a system
# there. Does nothing when up to date. See docs/rig.md.
rig: all guest
	@$(PYTHON) rig/build.py --out $(abspath $(BUILD))/rig --bulkhead $(abspath $(BULKHEAD)) \
		--inmates $(abspath $(BUILD))/inmates --guest $(abspath $(BUILD))/guest

build-fuzz/build.ninja: | deps
	CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null

# Fuzzes the system-file loader, then the vring walker, FUZZ_SECONDS each (default 60).
# New interesting inputs go to build/fuzz-*; the committed seeds stay untouched.
fuzz: build-fuzz/build.ninja
	ninja -C build-fuzz
	mkdir -p build/fuzz-config build/fuzz-vring
	build-fuzz/tests/fuzz/fuzz_config -max_total_time=$${FUZZ_SECONDS:-60} -max_len=4096 \
		-dict=tests/fuzz/yaml.dict build/fuzz-config tests/fuzz/corpus
	build-fuzz/tests/fuzz/fuzz_vring -max_total_time=$${FUZZ_SECONDS:-60} \
		build/fuzz-vring tests/fuzz/vring-corpus

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
