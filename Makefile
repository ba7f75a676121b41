# relaypro — plain Makefile, explicit object lists.
#
#   make            native (musl, static) build into build/<arch>/relaypro
#   make test       install what is missing, build, run unit tests (amd64 native, arm64
#                   under qemu) and the integration tests (twice: the second time against
#                   the ASan + UBSan relay), several at once; last line
#                   "total: N passed, N failed, N skipped"
#   make check      the quick tier for the edit loop: native build, layout, amd64 unit
#                   tests, check-config, one integration smoke (well under 90 s)
#   make sanitize   the integration suite against the ASan + UBSan relay, and a subset
#                   under valgrind (slow)
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
CFLAGS  := -std=c11 -D_GNU_SOURCE -Os $(CDEBUG) $(WARN) -fstack-protector-strong \
           -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables \
           -DRELAYPRO_VERSION='"$(VERSION)"' -DRELAYPRO_ARCH='"$(ARCH)"' \
           -I$(DEPS)/include -Isrc -MMD -MP
# -static without -pie: Debian's musl-gcc turns -static-pie into a dynamically linked file.
# arm64, -z norelro: its linker aligns the end of RELRO to the 64 KiB maximum page size by
# moving the data segment, which pads the file by up to 64 KiB once the code passes about
# 452 KiB (526 KiB instead of 468: over the 512 KiB limit). A static musl binary never
# applies RELRO (only musl's dynamic linker mprotects it), so nothing is lost; the
# segments stay 64 KiB-aligned, so kernels with 64 KiB pages still load the binary.
LDFLAGS_arm64 := -Wl,-z,norelro
LDFLAGS := -static -no-pie -Wl,--gc-sections -Wl,-O1 $(LDFLAGS_$(ARCH)) -s
LIBS    := $(DEPS)/lib/libbearssl.a $(DEPS)/lib/libinih.a

# Every module of the binary but main.o; the unit tests link the same list.
MODULES := admit anchors auth b64 body ca certfile cfgwrite config config_dump config_env config_keys \
           conn connmem cred deflate der dial err \
           fileio front hop http json jwt kdf limit listen log logfile logkeep loop metrics net notify pem \
           pending pollset priv priv_user probe proc proxyproto rand register register_cmd \
           register_dial register_wire relay reload request resolve respond revoke run secret server \
           sessioncli sessions shm socks5 spawn target tls tlscache token tunnel udptunnel units \
           upgrade upstream walk workers ws wstunnel x509 x509read
OBJS    := $(MODULES:%=$(BUILD)/%.o)

TESTS   := runner t_admit t_auth t_b64 t_body t_ca t_certfile t_cfgwrite t_config t_connmem t_deflate t_der t_http t_json t_jwt t_kdf t_limit t_log t_logrotate t_metrics \
           t_pending t_pollset t_priv t_proxyproto t_register t_secret t_sessions t_shm t_socks5 t_target t_token t_units t_upstream t_upstream_creds t_x509 t_ws
TOBJS   := $(TESTS:%=$(BUILD)/tests/%.o)

.PHONY: all dist test unit layout run-deps integration asan asan-relay check sanitize run clean deps bench callgrind callgrind-bin
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

# Test drivers (tests/tools/<name>.c) linked against the relay's modules, for the
# integration tests that build them (`make build/amd64/tools/register_tool`).
$(BUILD)/tools/%: tests/tools/%.c $(OBJS) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-missing-prototypes -static -no-pie -o $@ $< $(OBJS) $(LIBS)

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

# make test installs every tool its tests use (build.sh test-deps), make run only the
# native toolchain, curl, python3 and openssl (build.sh run-deps). tests/run.py runs the
# steps, several at once (JOBS=N; default 3), and prints the total last.
JOBS ?= $(if $(RELAYTEST_JOBS),$(RELAYTEST_JOBS),3)
test: deps
	./build.sh test-deps
	tests/run.py test -j $(JOBS)

unit: deps layout
	$(MAKE) ARCH=amd64 build/amd64/unit-tests
	build/amd64/unit-tests

# The source layout: no include cycle between modules, a contract comment at the top of
# every file, no file over 600 lines (tests/lint/test_layout.py).
layout:
	python3 tests/lint/test_layout.py

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

# The relay itself built the same way, for the integration suite under ASan (make test,
# make sanitize).
asan-relay: deps
	@mkdir -p $(ASAN_DIR)
	$(MAKE) -s -f vendor/bearssl.mk SRC=.deps/src/bearssl OUT=$(ASAN_DIR)/bearssl-obj \
	    CC=gcc LIB=$(ASAN_DIR)/libbearssl.a
	gcc -std=c11 -D_GNU_SOURCE -g -O1 $(WARN) -fsanitize=address,undefined \
	    -fno-sanitize-recover=all -DRELAYPRO_VERSION='"$(VERSION)"' -DRELAYPRO_ARCH='"$(NATIVE)"' \
	    -I.deps/$(NATIVE)/include -Isrc -o $(ASAN_DIR)/relaypro src/main.c \
	    $(MODULES:%=src/%.c) $(ASAN_DIR)/libbearssl.a .deps/$(NATIVE)/lib/libinih.a -lpthread

# The quick tier for the edit loop (tests/run.py check): native build, source layout,
# amd64 unit tests, check-config golden output and errors, one integration smoke.
check: deps
	tests/run.py check -j $(JOBS)

# Integration suite against the ASan+UBSan build, and a subset under valgrind (slow).
sanitize: deps
	tests/run.py sanitize -j $(JOBS)

run:
	./build.sh run-deps
	tests/demo.sh

# Benchmarks: ratios against a peer measured in the same run; never part of make test.
$(BUILD)/token-bench: tests/bench/token_bench.c $(OBJS) $(LIBS)
	$(CC) $(CFLAGS) -Wno-missing-prototypes -O2 -static -no-pie -o $@ $< $(OBJS) $(LIBS)

# BearSSL's primitives and whole in-memory connections, server side (tests/bench/crypto_bench.c).
$(BUILD)/crypto-bench: tests/bench/crypto_bench.c $(DEPS)/lib/libbearssl.a
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 $(WARN) -I$(DEPS)/include -Isrc -static -o $@ $< $(DEPS)/lib/libbearssl.a

# The load generator and echo backend (a test tool, never linked into relaypro).
$(BUILD)/loadgen: tests/bench/loadgen.c $(DEPS)/lib/libbearssl.a
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 $(WARN) -I$(DEPS)/include -static -o $@ $< \
	    $(DEPS)/lib/libbearssl.a -lpthread

# tests/bench/run.py: relaypro against squid and stunnel+tinyproxy (installed with apt when
# missing); BENCH_* variables in its header tune durations and counts. The binary measured
# is this tree's build unless RELAYPRO_BIN names another one (`make bench RELAYPRO_BIN=...`,
# e.g. the binary of an earlier commit; BENCH_BEFORE_BIN measures a second one beside it).
BENCH_BIN = $(if $(RELAYPRO_BIN),$(RELAYPRO_BIN),$(BUILD)/relaypro)
bench: deps $(BUILD)/token-bench $(BUILD)/crypto-bench $(BUILD)/relaypro $(BUILD)/loadgen
	$(BUILD)/token-bench
	$(BUILD)/crypto-bench
	LOADGEN_BIN=$(BUILD)/loadgen python3 tests/bench/run.py --bin $(BENCH_BIN)
	python3 tests/bench/slowloris_p99.py --bin $(BENCH_BIN)
	LOADGEN_BIN=$(BUILD)/loadgen python3 tests/bench/udp_bench.py --bin $(BENCH_BIN)

# Instructions per new tunnel under callgrind (tests/bench/callgrind_tunnel.py): the same -Os
# code as the release binary, with symbols and line tables, in its own build folder.
callgrind-bin: deps
	$(MAKE) -s BUILD=build/callgrind CDEBUG=-g LDFLAGS='-static -no-pie -Wl,--gc-sections -Wl,-O1' \
	    build/callgrind/relaypro
	$(MAKE) -s build/amd64/loadgen

callgrind: callgrind-bin
	python3 tests/bench/callgrind_tunnel.py

# Fuzzing (docs/fuzzing.md). One libFuzzer target per parser, tests/fuzz/fuzz_<name>.c,
# each defining only LLVMFuzzerTestOneInput; seeds in tests/fuzz/corpus/<name>/. A new
# target is one word here.
FUZZ_TARGETS := http jwt b64 token config units target upstream auth json der ca register ws proxyproto \
                certfile socks5 preauth body
FUZZ_SECONDS ?= 60
FUZZ_DIR     := build/fuzz
FUZZ_LIST    := $(foreach t,$(FUZZ_TARGETS),T($(t)))
# `make fuzz`: clang + libFuzzer + ASan + UBSan, glibc, like `make asan`. Needs clang.
# (clang's -Wformat=2 also flags vsnprintf(fmt) in wrappers without a format attribute.)
FUZZ_CC      := clang
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -g -O1 $(WARN) -Wno-missing-prototypes -Wno-format-nonliteral \
                -fno-sanitize-recover=all -DRELAYPRO_VERSION='"$(VERSION)"' \
                -DRELAYPRO_ARCH='"$(NATIVE)"' -I.deps/$(NATIVE)/include -Isrc -Itests/fuzz -MMD -MP
FUZZ_LIBS    := $(ASAN_DIR)/libbearssl.a .deps/$(NATIVE)/lib/libinih.a -lpthread
# The replay driver of `make test` (no clang): every corpus file, twice, through each
# target, built with gcc + ASan + UBSan (the flags of `make asan`) and with musl.
REPLAY_CFLAGS := $(FUZZ_CFLAGS) -fsanitize=address,undefined

.PHONY: fuzz fuzz-deps fuzz-build fuzz-replay fuzz-smoke
$(ASAN_DIR)/libbearssl.a: | $(DEPS)/include/bearssl.h
	@mkdir -p $(ASAN_DIR)
	$(MAKE) -s -f vendor/bearssl.mk SRC=.deps/src/bearssl OUT=$(ASAN_DIR)/bearssl-obj \
	    CC=gcc LIB=$(ASAN_DIR)/libbearssl.a

$(FUZZ_DIR)/obj/%.o: src/%.c | $(DEPS)/include/bearssl.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -c -o $@ $<

$(FUZZ_DIR)/fuzz-%: tests/fuzz/fuzz_%.c $(MODULES:%=$(FUZZ_DIR)/obj/%.o) $(ASAN_DIR)/libbearssl.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< \
	    $(MODULES:%=$(FUZZ_DIR)/obj/%.o) $(FUZZ_LIBS)

# clang and its libFuzzer runtime (Debian clang, libclang-rt-<N>-dev), installed when missing.
fuzz-deps:
	@command -v $(FUZZ_CC) >/dev/null || { echo "make fuzz: installing clang"; apt-get -qq update && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang >/dev/null; }
	@test -f "$$($(FUZZ_CC) --print-runtime-dir)/libclang_rt.fuzzer-$$(uname -m).a" || { \
	    p=libclang-rt-$$($(FUZZ_CC) -dumpversion | cut -d. -f1)-dev; echo "make fuzz: installing $$p"; \
	    apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$p >/dev/null; }

fuzz-build: deps fuzz-deps
	$(MAKE) -s $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz-%)

fuzz: fuzz-build
	tests/fuzz/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# A step of `make test`: the whole pre-authentication connection (fuzz_preauth.c) fuzzed for
# FUZZ_SMOKE_SECONDS under ASan + UBSan, from its corpus. Last line "fuzz: N passed, N failed".
# (tests/run.py builds with fuzz-smoke-build, beside other builds one at a time, and runs
# fuzz-smoke-run beside the integration scripts.)
FUZZ_SMOKE_SECONDS ?= 60
FUZZ_SMOKE_TARGETS ?= preauth
.PHONY: fuzz-smoke-build fuzz-smoke-run
fuzz-smoke: fuzz-smoke-build
	$(MAKE) -s fuzz-smoke-run
fuzz-smoke-build: deps fuzz-deps
	$(MAKE) -s $(FUZZ_SMOKE_TARGETS:%=$(FUZZ_DIR)/fuzz-%)
fuzz-smoke-run:
	tests/fuzz/fuzz.sh $(FUZZ_SMOKE_SECONDS) $(FUZZ_SMOKE_TARGETS)

$(FUZZ_DIR)/asan-obj/%.o: src/%.c | $(DEPS)/include/bearssl.h
	@mkdir -p $(dir $@)
	gcc $(REPLAY_CFLAGS) -c -o $@ $<

$(FUZZ_DIR)/asan-obj/fuzz_%.o: tests/fuzz/fuzz_%.c
	@mkdir -p $(dir $@)
	gcc $(REPLAY_CFLAGS) -DLLVMFuzzerTestOneInput=fuzz_$*_one -c -o $@ $<

$(FUZZ_DIR)/replay-asan: tests/fuzz/replay.c $(FUZZ_TARGETS:%=$(FUZZ_DIR)/asan-obj/fuzz_%.o) \
    $(MODULES:%=$(FUZZ_DIR)/asan-obj/%.o) $(ASAN_DIR)/libbearssl.a
	gcc $(REPLAY_CFLAGS) -DFUZZ_LIST='$(FUZZ_LIST)' -o $@ $< \
	    $(FUZZ_TARGETS:%=$(FUZZ_DIR)/asan-obj/fuzz_%.o) $(MODULES:%=$(FUZZ_DIR)/asan-obj/%.o) $(FUZZ_LIBS)

$(BUILD)/fuzz/fuzz_%.o: tests/fuzz/fuzz_%.c | $(DEPS)/include/bearssl.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-missing-prototypes -Itests/fuzz -DLLVMFuzzerTestOneInput=fuzz_$*_one -c -o $@ $<

$(BUILD)/fuzz-replay: tests/fuzz/replay.c $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%.o) $(OBJS) $(LIBS)
	$(CC) $(CFLAGS) -Wno-missing-prototypes -Itests/fuzz -DFUZZ_LIST='$(FUZZ_LIST)' -static -no-pie \
	    -o $@ $< $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%.o) $(OBJS) $(LIBS)

# Last line "fuzz-replay: N passed, N failed" (the sanitized run); tests/run.py tallies it.
fuzz-replay: deps
	$(MAKE) -s ARCH=$(NATIVE) build/$(NATIVE)/fuzz-replay $(FUZZ_DIR)/replay-asan
	build/$(NATIVE)/fuzz-replay -l fuzz-replay-musl tests/fuzz/corpus
	$(FUZZ_DIR)/replay-asan -l fuzz-replay tests/fuzz/corpus

clean:
	rm -rf build dist

-include $(wildcard $(BUILD)/*.d $(BUILD)/tests/*.d)
-include $(wildcard $(BUILD)/fuzz/*.d $(FUZZ_DIR)/*.d $(FUZZ_DIR)/obj/*.d $(FUZZ_DIR)/asan-obj/*.d)
