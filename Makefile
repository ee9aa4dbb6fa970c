# derpd: one non-recursive Makefile.
#
#   make            build everything under build/
#   make run        build, then run a local dev relay (plain HTTP, 127.0.0.1:3340)
#   make check      unit tests, fuzz-corpus replay, integration tests
#   make SAN=address,undefined check    the same with sanitizers (build/san/)
#   make bench      relay benchmark; results under bench/results/
#   make soak       long fault/hostile variants and the soak run (SOAK_SECONDS)
#   make bench-scale 100,000 idle TLS clients on one node (8 workers)
#   make fuzz T=frame   run one libFuzzer target (clang)
#   make install DESTDIR=... PREFIX=/usr
#   make deb / make rpm     packages under build/pkg/
#   make check-packaging    build both, lint, inspect, install into a chroot
#
# Missing Debian packages are installed by `make deps` (root) or printed.

PREFIX	?= /usr/local
DESTDIR	?=
CC	?= cc
SAN	?=

comma	:= ,
ifeq ($(SAN),)
B	:= build
SANFLAGS :=
else
B	:= build/san
# GCC's "undefined" leaves out float-cast-overflow (clang's includes it).
SANFLAGS := -fsanitize=$(SAN)$(if $(findstring undefined,$(SAN)),$(comma)float-cast-overflow) \
	    -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

# Libraries with a pkg-config file; http-parser and wslay ship none on Debian.
PKGS	:= openssl libsodium jansson libconfig libzmq libsystemd libcurl libseccomp
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
TOOLS	:= derpcat derpbench stunbench derpprobe
BINS	:= $(B)/derpd $(addprefix $(B)/,$(TOOLS))

$(B)/derpd: $(SUP_OBJ) $(ARCHIVES)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/derpcat: $(B)/tools/derpcat.o $(ARCHIVES)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/derpbench: $(B)/tools/derpbench.o $(B)/tools/derpbench_idle.o \
    $(B)/tools/derpbench_storm.o $(B)/tools/derpbench_paced.o $(ARCHIVES)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread

$(B)/stunbench: $(B)/tools/stunbench.o $(ARCHIVES)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/derpprobe: $(patsubst %.c,$(B)/%.o,$(wildcard tools/derpprobe*.c)) \
	    $(ARCHIVES)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread

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
	$(CC) $(ALL_LDFLAGS) $(UNIT_WRAP) -o $@ $^ $(PKG_LIBS) $(CMOCKA_LIBS)

# test_link plays the resolver: its lookups must stay in flight on cue.
$(B)/tests/unit/test_link: UNIT_WRAP := -Wl,--wrap=getaddrinfo_a \
	-Wl,--wrap=gai_error -Wl,--wrap=gai_cancel -Wl,--wrap=gai_suspend

$(B)/tests/integration/%: $(B)/tests/integration/%.o $(ITEST_LIB) $(ARCHIVES)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CMOCKA_LIBS)

SOAK_BIN := $(B)/tests/soak/test_soak
# The registry's node-wide walks at 100,000 clients (tests/bench/walks.c):
# built with the tests so it keeps compiling, run by bench-walks.
WALKS_BIN := $(B)/tests/bench/walks
# The bus's replay after a snapshot (tests/bench/replay.c), the same way.
REPLAYB_BIN := $(B)/tests/bench/replay
$(B)/tests/soak/%: $(B)/tests/soak/%.o $(ITEST_LIB) $(ARCHIVES)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CMOCKA_LIBS)

$(B)/tests/fuzz/replay_%: $(B)/tests/fuzz/fuzz_%.o $(B)/tests/fuzz/replay.o $(ARCHIVES)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

# derpprobe's request reader lives with the tool, outside the archives.
FUZZ_EXTRA_probehttp := tools/derpprobe_http.c
$(B)/tests/fuzz/replay_probehttp $(B)/tests/unit/test_probehttp: \
    $(B)/tools/derpprobe_http.o

# The Go DERP client of test_gointerop (tests/interop/go): Debian's go
# in GOPATH mode with golang.org/x/crypto from
# golang-golang-x-crypto-dev, so no module download and no network; the
# cache and HOME under build/ (CI runs as root with no home to write).
GO	?= go
GO_ENV	:= GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off GOFLAGS= \
	   GOCACHE=$(CURDIR)/$(B)/gocache HOME=$(CURDIR)/$(B) CGO_ENABLED=0
DERPGO	:= $(B)/derpgo
$(DERPGO): $(wildcard tests/interop/go/derpgo/*.go)
	@mkdir -p $(B)/gocache
	@echo "  GO      tests/interop/go/derpgo"
	@cd tests/interop/go/derpgo && $(GO_ENV) $(GO) vet . && \
	    $(GO_ENV) $(GO) build -o $(CURDIR)/$@ .

.SECONDARY:

tests: $(UNIT_BIN) $(ITEST_BIN) $(REPLAY_BIN) $(SOAK_BIN) $(DERPGO) $(WALKS_BIN) \
    $(REPLAYB_BIN)

check: deps
	$(MAKE) all tests
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; \
	    VECTORS=../shared/vectors $$t; done
	@set -e; for n in $(FUZZ_NAMES); do echo "== replay $$n"; \
	    $(B)/tests/fuzz/replay_$$n tests/fuzz/corpus/$$n; done
	@set -e; for t in $(ITEST_BIN); do echo "== $$t"; \
	    DERPD_BIN=$(B)/derpd DERPCAT_BIN=$(B)/derpcat \
	    DERPPROBE_BIN=$(B)/derpprobe DERPBENCH_BIN=$(B)/derpbench \
	    DERPGO_BIN=$(DERPGO) VECTORS=../shared/vectors $$t; done
	@echo "check: all passed"

# The integration tests with derpd under valgrind memcheck (slow: run a
# few with VG_T="relay lifecycle"); deadlines scaled by TEST_TIME_SCALE.
# Not test_sandbox: valgrind runs the guest's system calls itself, so a
# seccomp filter installed by the guest stops valgrind.  Not test_hang:
# it times SIGSTOP windows against the supervisor's fixed stop deadline,
# which a valgrind-slowed exit overruns.  Not test_hostile_load: its
# thousands of TLS handshakes and its RSS bound measure the load, which
# memcheck's slowdown and shadow memory change.
VG_T	?= $(filter-out sandbox hang hostile_load,$(patsubst tests/integration/test_%.c,%,$(ITEST_SRC)))
check-valgrind: all tests
	@command -v valgrind >/dev/null || { echo "install valgrind"; exit 1; }
	@rm -rf $(B)/valgrind && mkdir -p $(B)/valgrind && \
	    chmod 1777 $(B)/valgrind	# workers may run as another user
	@set -e; for t in $(VG_T); do echo "== $$t (valgrind)"; \
	    VG_LOG_DIR=$(CURDIR)/$(B)/valgrind \
	    DERPD_BIN=tests/valgrind/derpd.sh DERPD_REAL=$(B)/derpd \
	    TEST_TIME_SCALE=$${TEST_TIME_SCALE:-10} DERPCAT_BIN=$(B)/derpcat \
	    DERPGO_BIN=$(DERPGO) VECTORS=../shared/vectors $(B)/tests/integration/test_$$t || \
	    { find $(B)/valgrind -type f -size +0 -exec tail -n +1 {} +; exit 1; }; \
	    done
	@if find $(B)/valgrind -type f -size +0 | grep -q .; then \
	    find $(B)/valgrind -type f -size +0 -exec tail -n +1 {} +; exit 1; fi
	@echo "check-valgrind: all passed"

# Not part of check: minutes long.  The fault and hostile tests' long
# variants (SOAK=1), then the soak run (SOAK_SECONDS, default 600).
SOAK_ENV := DERPD_BIN=$(B)/derpd DERPCAT_BIN=$(B)/derpcat VECTORS=../shared/vectors
soak: deps all tests
	$(call install_pkgs,gnuplot-nox)
	@mkdir -p bench/results
	$(SOAK_ENV) SOAK=1 $(B)/tests/integration/test_faults
	$(SOAK_ENV) SOAK=1 $(B)/tests/integration/test_hostile_load
	$(SOAK_ENV) $(SOAK_BIN)

check-unit: all tests
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; \
	    VECTORS=../shared/vectors $$t; done

# ---- fuzzing (clang libFuzzer) ----
# fuzz_ws runs with -entropic=0: under the entropic scheduler it crawls.
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -I. $(PKG_CFLAGS) \
	       -fsanitize=fuzzer,address,undefined
fuzz:
	@test -n "$(T)" || { echo "usage: make fuzz T=<$(FUZZ_NAMES)>"; exit 2; }
	@mkdir -p build/fuzz tests/fuzz/corpus/$(T)
	clang $(FUZZ_CFLAGS) -o build/fuzz/fuzz_$(T) tests/fuzz/fuzz_$(T).c \
	    $(FUZZ_EXTRA_$(T)) $(derp_SRC) $(common_SRC) $(conf_SRC) $(mesh_SRC) $(worker_SRC) $(PKG_LIBS)
	build/fuzz/fuzz_$(T) $(if $(filter ws,$(T)),-entropic=0) -max_total_time=$${FUZZ_SECONDS:-60} tests/fuzz/corpus/$(T)

# ---- running ----
run: deps-build all
	$(B)/derpd --dev

# In-process handshake cost of the libraries alone (tests/bench/floor.c).
FLOOR_BIN := $(B)/tests/bench/floor
$(FLOOR_BIN): $(B)/tests/bench/floor.o $(ARCHIVES)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(WALKS_BIN): $(B)/tests/bench/walks.o $(B)/tests/bench/fleet.o $(ARCHIVES)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

bench-walks: all $(WALKS_BIN)
	$(WALKS_BIN)

$(REPLAYB_BIN): $(B)/tests/bench/replay.o $(B)/tests/bench/fleet.o $(ARCHIVES)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

bench-replay: all $(REPLAYB_BIN)
	$(REPLAYB_BIN)

bench: deps all $(FLOOR_BIN)
	tests/bench/relay.sh $(B)

bench-scale: deps all
	tests/bench/scale.sh $(B)

# ---- dependencies (Debian) ----
BUILD_PKGS := build-essential pkg-config libssl-dev libsodium-dev \
	    libjansson-dev libconfig-dev libzmq3-dev libsystemd-dev \
	    libcurl4-openssl-dev libhttp-parser-dev libwslay-dev libseccomp-dev \
	    openssl
# The tests' real peers: clang (libFuzzer), STUN, Prometheus, ACME, a
# browser, GnuTLS, and Go's TLS and HTTP stacks (Tailscale's clients').
TEST_PKGS := clang libcmocka-dev curl coturn python3 prometheus pebble uacme \
	    chromium node-tweetnacl gnuplot-nox gnutls-bin golang-go \
	    golang-golang-x-crypto-dev
DEB_PKGS := $(BUILD_PKGS) $(TEST_PKGS)
# Install what is missing of $(1) (root), or print the command.
define install_pkgs
	@missing=""; for p in $(1); do \
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
endef
deps:
	$(call install_pkgs,$(DEB_PKGS))
deps-build:
	$(call install_pkgs,$(BUILD_PKGS))

# ---- manual pages ----
# derpd.conf(5) embeds the commented example, so the two never disagree.
$(B)/man/derpd.conf.5: doc/derpd.conf.5.in conf/derpd.conf
	@mkdir -p $(dir $@)
	{ cat doc/derpd.conf.5.in; \
	  sed -e 's/\\/\\e/g' -e "s/^[.']/\\\\\&&/" conf/derpd.conf; \
	  printf '.ft R\n.fi\n.SH SEE ALSO\n.BR derpd (8),\n.BR derpprobe (1)\n'; \
	} > $@
MAN8	:= doc/derpd.8
MAN5	:= $(B)/man/derpd.conf.5
man: $(MAN5)

# ---- install ----
install: all man
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin \
	    $(DESTDIR)/etc/derpd $(DESTDIR)$(PREFIX)/share/man/man5 \
	    $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(B)/derpd $(DESTDIR)$(PREFIX)/sbin/derpd
	install -m 0755 $(addprefix $(B)/,$(TOOLS)) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 conf/derpd.conf $(DESTDIR)/etc/derpd/derpd.conf
	install -m 0644 $(MAN8) $(DESTDIR)$(PREFIX)/share/man/man8/
	install -m 0644 $(MAN5) $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 0644 $(wildcard tools/*.1) $(DESTDIR)$(PREFIX)/share/man/man1/

# ---- packages (packaging/) ----
VERSION	:= $(shell sed -n 's/^\#define DERPD_VERSION[^"]*"\(.*\)"/\1/p' \
	     supervisor/main.c)
PKGDIR	:= build/pkg
# The source tree as committed plus local edits, without build output.
$(PKGDIR)/derpd-$(VERSION).tar.gz: FORCE
	@mkdir -p $(PKGDIR)
	rm -rf $(PKGDIR)/derpd-$(VERSION)
	mkdir -p $(PKGDIR)/derpd-$(VERSION)
	tar -c --exclude=./build --exclude=./.git --exclude='./tests/fuzz/corpus' . | \
	    tar -x -C $(PKGDIR)/derpd-$(VERSION)
	tar -C $(PKGDIR) -czf $@ derpd-$(VERSION)
deb: $(PKGDIR)/derpd-$(VERSION).tar.gz
	rm -rf $(PKGDIR)/derpd-$(VERSION)/debian
	cp -r packaging/debian $(PKGDIR)/derpd-$(VERSION)/debian
	for f in service socket sysusers tmpfiles; do \
	    cp packaging/systemd/derpd.$$f $(PKGDIR)/derpd-$(VERSION)/debian/; done
	cd $(PKGDIR)/derpd-$(VERSION) && dpkg-buildpackage -us -uc -b
	@ls -l $(PKGDIR)/*.deb
rpm: $(PKGDIR)/derpd-$(VERSION).tar.gz
	@mkdir -p $(PKGDIR)/rpm/SOURCES
	cp $< $(PKGDIR)/rpm/SOURCES/
	rpmbuild -bb --nodeps --define "_topdir $(CURDIR)/$(PKGDIR)/rpm" \
	    packaging/rpm/derpd.spec
	@ls -l $(PKGDIR)/rpm/RPMS/*/*.rpm
PKG_DEB_PKGS := debhelper lintian rpm rpmlint debootstrap systemd-container \
	    fakeroot
check-packaging: deps
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(PKG_DEB_PKGS)"
	tests/packaging/check.sh
FORCE:

clean:
	rm -rf build

.PHONY: all check check-unit check-valgrind soak tests fuzz run bench \
	bench-walks bench-replay bench-scale deps deps-build install clean \
	man deb rpm check-packaging FORCE

-include $(shell find $(B) -path build/pkg -prune -o -name '*.d' -type f -print 2>/dev/null)
