# derpd: one non-recursive Makefile.
#
#   make            build everything under build/
#   make run        build, then run a local dev relay (plain HTTP, 127.0.0.1:3340)
#   make check      unit tests, fuzz-corpus replay, integration tests
#   make SAN=address,undefined check    the same with sanitizers (build/san/)
#   make bench      relay benchmark; results under bench/results/
#   make fuzz T=frame   run one libFuzzer target (clang)
#   make install DESTDIR=... PREFIX=/usr
#
# Missing Debian packages are installed by `make deps` (root) or printed.

PREFIX	?= /usr/local
DESTDIR	?=
CC	?= cc
SAN	?=

ifeq ($(SAN),)
B	:= build
SANFLAGS :=
else
B	:= build/san
SANFLAGS := -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

# Libraries with a pkg-config file; http-parser and wslay ship none on Debian.
PKGS	:= openssl libsodium jansson libconfig libzmq libsystemd libcurl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lwslay -lresolv -lm
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

WARN	:= -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	   -Wmissing-prototypes -Wformat=2 -Wpointer-arith -Wcast-qual \
	   -Wno-format-nonliteral
CFLAGS	?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(CFLAGS) $(WARN) \
	   -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE -MMD -MP \
	   -I. $(PKG_CFLAGS) $(SANFLAGS)
LDFLAGS	?=
ALL_LDFLAGS := -pie -Wl,-z,relro,-z,now $(SANFLAGS) $(LDFLAGS)

# ---- archives (dependency order: derp <- common <- conf <- mesh, worker) ----
MODULES	:= derp common conf mesh worker
$(foreach m,$(MODULES),$(eval $(m)_SRC := $(wildcard $(m)/*.c)))
$(foreach m,$(MODULES),$(eval $(m)_OBJ := $(patsubst %.c,$(B)/%.o,$($(m)_SRC))))
$(foreach m,$(MODULES),$(eval $(B)/lib$(m).a: $($(m)_OBJ)))
ARCHIVES := $(B)/libworker.a $(B)/libmesh.a $(B)/libconf.a \
	    $(B)/libcommon.a $(B)/libderp.a

$(B)/%.a:
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -c -o $@ $<

# ---- binaries ----
SUP_OBJ	:= $(patsubst %.c,$(B)/%.o,$(wildcard supervisor/*.c))
TOOLS	:= derpcat derpbench stunbench
BINS	:= $(B)/derpd $(addprefix $(B)/,$(TOOLS))

$(B)/derpd: $(SUP_OBJ) $(ARCHIVES)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/derpcat: $(B)/tools/derpcat.o $(ARCHIVES)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/derpbench: $(B)/tools/derpbench.o $(B)/tools/derpbench_idle.o $(ARCHIVES)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread

$(B)/stunbench: $(B)/tools/stunbench.o $(ARCHIVES)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

all: $(BINS)
.DEFAULT_GOAL := all

# ---- tests ----
export LSAN_OPTIONS := suppressions=$(CURDIR)/tests/fuzz/lsan.supp

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(UNIT_SRC))
ITEST_SRC := $(wildcard tests/integration/test_*.c)
ITEST_BIN := $(patsubst tests/integration/%.c,$(B)/tests/integration/%,$(ITEST_SRC))
ITEST_LIB := $(patsubst %.c,$(B)/%.o,$(filter-out tests/integration/test_%.c,\
	     $(wildcard tests/integration/*.c)))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRC))
REPLAY_BIN := $(addprefix $(B)/tests/fuzz/replay_,$(FUZZ_NAMES))

$(B)/tests/unit/%: $(B)/tests/unit/%.o $(ARCHIVES)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CMOCKA_LIBS)

$(B)/tests/integration/%: $(B)/tests/integration/%.o $(ITEST_LIB) $(ARCHIVES)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CMOCKA_LIBS)

$(B)/tests/fuzz/replay_%: $(B)/tests/fuzz/fuzz_%.o $(B)/tests/fuzz/replay.o $(ARCHIVES)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

.SECONDARY:

tests: $(UNIT_BIN) $(ITEST_BIN) $(REPLAY_BIN)

check: deps
	$(MAKE) all tests
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; \
	    VECTORS=../shared/vectors $$t; done
	@set -e; for n in $(FUZZ_NAMES); do echo "== replay $$n"; \
	    $(B)/tests/fuzz/replay_$$n tests/fuzz/corpus/$$n; done
	@set -e; for t in $(ITEST_BIN); do echo "== $$t"; \
	    DERPD_BIN=$(B)/derpd DERPCAT_BIN=$(B)/derpcat \
	    DERPBENCH_BIN=$(B)/derpbench VECTORS=../shared/vectors $$t; done
	@echo "check: all passed"

check-unit: all tests
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; \
	    VECTORS=../shared/vectors $$t; done

# ---- fuzzing (clang libFuzzer) ----
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -I. $(PKG_CFLAGS) \
	       -fsanitize=fuzzer,address,undefined
fuzz:
	@test -n "$(T)" || { echo "usage: make fuzz T=<$(FUZZ_NAMES)>"; exit 2; }
	@mkdir -p build/fuzz tests/fuzz/corpus/$(T)
	clang $(FUZZ_CFLAGS) -o build/fuzz/fuzz_$(T) tests/fuzz/fuzz_$(T).c \
	    $(derp_SRC) $(common_SRC) $(conf_SRC) $(mesh_SRC) $(worker_SRC) $(PKG_LIBS)
	build/fuzz/fuzz_$(T) -max_total_time=$${FUZZ_SECONDS:-60} tests/fuzz/corpus/$(T)

# ---- running ----
run: deps all
	$(B)/derpd --dev

bench: deps all
	tests/bench/relay.sh $(B)

# ---- dependencies (Debian) ----
DEB_PKGS := build-essential pkg-config clang libssl-dev libsodium-dev \
	    libjansson-dev libconfig-dev libzmq3-dev libsystemd-dev \
	    libcurl4-openssl-dev libhttp-parser-dev libwslay-dev libcmocka-dev \
	    openssl curl coturn python3 prometheus pebble uacme chromium \
	    node-tweetnacl
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	    dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive \
		    apt-get install -y --no-install-recommends $$missing; \
	    else \
		echo "missing packages; run: sudo apt-get install -y$$missing"; \
		exit 1; \
	    fi; \
	fi

# ---- install ----
install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin \
	    $(DESTDIR)/etc/derpd
	install -m 0755 $(B)/derpd $(DESTDIR)$(PREFIX)/sbin/derpd
	install -m 0755 $(addprefix $(B)/,$(TOOLS)) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 conf/derpd.conf $(DESTDIR)/etc/derpd/derpd.conf
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 $(wildcard tools/*.1) $(DESTDIR)$(PREFIX)/share/man/man1/

clean:
	rm -rf build

.PHONY: all check check-unit tests fuzz run bench deps install clean

-include $(shell find $(B) -name '*.d' 2>/dev/null)
