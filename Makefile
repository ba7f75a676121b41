# relaypro — plain Makefile, explicit object lists.
#
#   make            native (musl, static) build into build/<arch>/relaypro
#   make test       install what is missing, build, run unit tests (amd64 native, arm64
#                   under qemu) and the integration tests; last line "N passed, N failed"
#   make asan       glibc build of the unit tests with ASan+UBSan, and run it
#   make run        local demo (see README)
#   make clean
#
# ARCH=amd64|arm64 selects the musl cross compiler; build.sh builds both into dist/.

VERSION := 0.1.0
NATIVE  := $(shell uname -m | sed -e 's/x86_64/amd64/' -e 's/aarch64/arm64/')
ARCH    ?= $(NATIVE)
BUILD   := build/$(ARCH)
DEPS    := .deps/$(ARCH)

CC_amd64 := musl-gcc
CC_arm64 := aarch64-linux-musl-gcc
CC       := $(CC_$(ARCH))

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wcast-qual \
           -Wformat=2 -Wvla -Werror
CFLAGS  := -std=c11 -D_GNU_SOURCE -Os $(WARN) -fstack-protector-strong \
           -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables \
           -DRELAYPRO_VERSION='"$(VERSION)"' -DRELAYPRO_ARCH='"$(ARCH)"' \
           -I$(DEPS)/include -Isrc -MMD -MP
# -static without -pie: Debian's musl-gcc turns -static-pie into a dynamically linked file.
LDFLAGS := -static -no-pie -Wl,--gc-sections -Wl,-O1 -s
LIBS    := $(DEPS)/lib/libbearssl.a $(DEPS)/lib/libinih.a

# Every module of the binary but main.o; the unit tests link the same list.
MODULES := auth b64 ca cfgwrite config conn deflate der err fileio http json jwt kdf limit log loop net notify rand register resolve \
           secret server target tls token units upstream x509
OBJS    := $(MODULES:%=$(BUILD)/%.o)

TESTS   := runner t_b64 t_ca t_cfgwrite t_config t_deflate t_der t_http t_json t_jwt t_kdf t_limit t_log t_logrotate \
           t_register t_target t_token t_units t_x509
TOBJS   := $(TESTS:%=$(BUILD)/tests/%.o)

.PHONY: all dist test unit integration asan run clean deps bench
all: $(BUILD)/relaypro

$(BUILD)/relaypro: $(BUILD)/main.o $(OBJS) $(LIBS)
	$(CC) $(LDFLAGS) -o $@ $(BUILD)/main.o $(OBJS) $(LIBS)

$(BUILD)/%.o: src/%.c | $(DEPS)/include/bearssl.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%.o: tests/unit/%.c | $(DEPS)/include/bearssl.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-missing-prototypes -c -o $@ $<

$(BUILD)/unit-tests: $(TOBJS) $(OBJS) $(LIBS)
	$(CC) -static -no-pie -o $@ $(TOBJS) $(OBJS) $(LIBS)

$(DEPS)/include/bearssl.h $(LIBS):
	vendor/fetch.sh $(ARCH)

# dist/: the release binary, refused unless the file really is static.
dist: $(BUILD)/relaypro
	@mkdir -p dist
	@file -b $< | grep -q 'statically linked' || { echo "$< is not statically linked: $$(file -b $<)" >&2; exit 1; }
	cp $< dist/relaypro-linux-$(ARCH)

deps: .deps/stamp-deps
.deps/stamp-deps: build.sh vendor/fetch.sh vendor/deps.lock vendor/bearssl.mk
	./build.sh deps
	@touch $@

test: deps
	tests/run.sh

unit: deps
	$(MAKE) ARCH=amd64 build/amd64/unit-tests
	build/amd64/unit-tests

# glibc + sanitizers: catches what the musl build cannot show (leaks, UB, overflows).
ASAN_DIR := build/asan
asan: deps
	@mkdir -p $(ASAN_DIR)
	$(MAKE) -s -f vendor/bearssl.mk SRC=.deps/src/bearssl OUT=$(ASAN_DIR)/bearssl-obj \
	    CC=gcc LIB=$(ASAN_DIR)/libbearssl.a
	gcc -std=c11 -D_GNU_SOURCE -g -O1 $(WARN) -Wno-missing-prototypes -fsanitize=address,undefined \
	    -fno-sanitize-recover=all -DRELAYPRO_VERSION='"$(VERSION)"' -DRELAYPRO_ARCH='"$(NATIVE)"' \
	    -I.deps/$(NATIVE)/include -Isrc -o $(ASAN_DIR)/unit-tests \
	    $(MODULES:%=src/%.c) $(TESTS:%=tests/unit/%.c) \
	    $(ASAN_DIR)/libbearssl.a .deps/$(NATIVE)/lib/libinih.a -lpthread
	$(ASAN_DIR)/unit-tests

run: deps
	tests/demo.sh

# Benchmarks: ratios against a peer measured in the same run; never part of make test.
$(BUILD)/token-bench: tests/bench/token_bench.c $(OBJS) $(LIBS)
	$(CC) $(CFLAGS) -Wno-missing-prototypes -O2 -static -no-pie -o $@ $< $(OBJS) $(LIBS)

# The load generator and echo backend (a test tool, never linked into relaypro).
$(BUILD)/loadgen: tests/bench/loadgen.c $(DEPS)/lib/libbearssl.a
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 $(WARN) -I$(DEPS)/include -static -o $@ $< \
	    $(DEPS)/lib/libbearssl.a -lpthread

# tests/bench/run.py: relaypro against squid and stunnel+tinyproxy (installed with apt when
# missing); BENCH_* variables in its header tune durations and counts.
bench: deps $(BUILD)/token-bench $(BUILD)/relaypro $(BUILD)/loadgen
	$(BUILD)/token-bench
	RELAYPRO_BIN=$(BUILD)/relaypro LOADGEN_BIN=$(BUILD)/loadgen python3 tests/bench/run.py

clean:
	rm -rf build dist

-include $(wildcard $(BUILD)/*.d $(BUILD)/tests/*.d)
