# courant: a Server-Sent Events hub.
#
#   make            optimized build/courant
#   make run        install what is missing, build, start courant --demo on :8000,
#                   its history kept in data/courant.db (survives restarts)
#   make test       install, build everything (parallel), run every test
#   make fuzz       build the libFuzzer targets (clang)
#   make bench      the side-by-side benchmark (see bench/)
#   make compile_commands.json   for clangd and clang-tidy
#   make format     reformat the C sources; make format-check fails on a diff
#   make analyze    clang's static analyzer over every source; a finding fails
#   make install    build/courant, its man page, example configuration and
#                   systemd unit under PREFIX (default /usr/local), DESTDIR honoured
#   make deb        a Debian package, build/courant_VERSION_ARCH.deb (scripts/deb.sh)
#   make conformance  the Mercure conformance suites (1.0 and draft-07) against one
#                   running courant; MERCURE_CONFORMANCE_V1 / _CLASSIC name
#                   copies of dunglas/mercure's conformance-tests (scripts/conformance.sh)
#   make docs       build/courant.1 (man page) and build/courant.conf.example,
#                   generated from the option tables by the binary
#
# Variables, as distributions expect: CC (gcc by default; clang works too),
# CPPFLAGS, CFLAGS (default -O2 -g), LDFLAGS and LDLIBS are honoured by every
# build; V=1 prints full command lines.
#
# Layout: each build variant compiles every src/*.c once into its own object
# directory, with header dependencies tracked (-MMD), so a change rebuilds
# only what it touches:
#   build/obj/     optimized (build/courant)
#   build/asan/    AddressSanitizer + UBSan: the server `make test` runs, unit tests
#   build/tsan/    ThreadSanitizer: the cross-thread tests
#   build/clang/   the same sources with clang, warnings as errors
#   build/fuzz/    libFuzzer targets

CC      ?= gcc
CLANG   ?= clang
BUILD   := build
NPROC   := $(shell nproc 2>/dev/null || echo 2)
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
# What every compilation needs, whatever the user's CFLAGS say.
BASE    := -std=gnu11 $(WARN) -D_GNU_SOURCE -pthread -Isrc -I$(BUILD) -MMD -MP
# libsqlite3-dev (--store), libssl-dev (JWT: libcrypto; HTTPS: libssl), libjansson-dev (JWT),
# libhiredis-dev (--redis), libcurl4-openssl-dev (--jwks-url: JWK Sets fetched over HTTPS),
# libnghttp2-dev (HTTP/2), libicu-dev (IDNA for URL hosts and identifiers in URL patterns)
LIBS    := -pthread -lsqlite3 -lssl -lcrypto -ljansson -lhiredis -lcurl -lnghttp2 -licuuc
SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

SRC     := $(filter-out src/main.c,$(wildcard src/*.c))
MODULES := $(patsubst src/%.c,%,$(SRC))
# The demo page (web/*) and the admin dashboard (web/admin/*), embedded.
WEB     := $(sort $(filter-out web/admin,$(wildcard web/*)) $(wildcard web/admin/*))
UNIT    := $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/*_test.c))
FUZZ    := $(patsubst fuzz/%.c,%,$(wildcard fuzz/*_fuzz.c))
FORMATTED := $(wildcard src/*.c src/*.h tests/unit/*.c tests/unit/*.h fuzz/*.c fuzz/*.h bench/*.c tools/*.c)

ifeq ($(V),1)
Q :=
else
Q := @
endif

.PHONY: FORCE all docs install uninstall deb run test fuzz bench bench-store clean setup clang-check unit format format-check analyze \
        check-layers test-build conformance
.DELETE_ON_ERROR:

all: $(BUILD)/courant

# ---- generated: the demo page embedded into the binary ----------------------
$(BUILD)/embed: tools/embed.c | $(BUILD)
	$(Q)$(CC) -std=gnu11 $(WARN) -O1 -o $@ $<

$(BUILD)/assets.c: $(BUILD)/embed $(WEB)
	$(Q)$(BUILD)/embed $(WEB) > $@

# ---- generated: the version (scripts/version.sh) ------------------------------
# Run at every make (FORCE), but the file is rewritten only when the version
# changed (a new commit, a tag, the tree becoming dirty), and only
# src/buildinfo.c includes it: an unchanged version rebuilds nothing.
$(BUILD)/version.h: FORCE | $(BUILD)
	$(Q)./scripts/version.sh --header $@

FORCE:

# ---- one object directory per variant -----------------------------------------
# variant NAME, COMPILER, FLAGS: rules for build/NAME/%.o from src/%.c and
# build/assets.c. Objects depend on assets.c and version.h only so that they
# exist first (-MMD records the real header dependencies).
define variant
$(BUILD)/$(1)/%.o: src/%.c | $(BUILD)/$(1) $(BUILD)/assets.c $(BUILD)/version.h
	@echo "  CC[$(1)] $$<"
	$(Q)$(2) $(BASE) $(CPPFLAGS) $(3) -c -o $$@ $$<
$(BUILD)/$(1)/assets.o: $(BUILD)/assets.c | $(BUILD)/$(1)
	$(Q)$(2) $(BASE) $(CPPFLAGS) $(3) -c -o $$@ $$<
$(BUILD)/$(1):
	$(Q)mkdir -p $$@
-include $(wildcard $(BUILD)/$(1)/*.d)
endef

$(eval $(call variant,obj,$(CC),$(CFLAGS)))
$(eval $(call variant,asan,$(CC),-g -O1 $(SAN)))
$(eval $(call variant,tsan,$(CC),-g -O1 -fsanitize=thread))
$(eval $(call variant,clang,$(CLANG),-O2))
$(eval $(call variant,fuzz,$(CLANG),-g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all))

objs = $(addprefix $(BUILD)/$(1)/,$(addsuffix .o,$(MODULES) assets))

# ---- optimized server --------------------------------------------------------
$(BUILD)/courant: $(BUILD)/obj/main.o $(call objs,obj)
	@echo "  LD $@"
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) $(LDLIBS)

# ---- documents generated from the option tables (src/confdoc.c) -------------
$(BUILD)/courant.1: $(BUILD)/courant
	$(Q)$(BUILD)/courant --help-man > $@

$(BUILD)/courant.conf.example: $(BUILD)/courant
	$(Q)$(BUILD)/courant --help-config > $@

docs: $(BUILD)/courant.1 $(BUILD)/courant.conf.example

# ---- make install / make deb ---------------------------------------------------
# GNU-style directories; a package build sets PREFIX=/usr SYSCONFDIR=/etc.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/courant
SYSCONFDIR ?= $(PREFIX)/etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
STATEDIR   ?= /var/lib/courant

# The configuration file the unit reads: the example, plus what the service
# sets (packaging/courant.conf.service.in: the store in its StateDirectory).
# Installed only when there is none: an administrator's file is never
# overwritten (the package marks it a conffile).
install: $(BUILD)/courant $(BUILD)/courant.1 $(BUILD)/courant.conf.example
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(DOCDIR) $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/courant
	install -m 755 $(BUILD)/courant $(DESTDIR)$(BINDIR)/courant
	install -m 644 $(BUILD)/courant.1 $(DESTDIR)$(MANDIR)/man1/courant.1
	install -m 644 $(BUILD)/courant.conf.example $(DESTDIR)$(DOCDIR)/courant.conf.example
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' packaging/courant.service.in \
	    > $(DESTDIR)$(UNITDIR)/courant.service
	chmod 644 $(DESTDIR)$(UNITDIR)/courant.service
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/courant/courant.conf ]; then \
	    echo "install: kept the existing $(DESTDIR)$(SYSCONFDIR)/courant/courant.conf"; \
	else \
	    { cat $(BUILD)/courant.conf.example; sed 's|@STATEDIR@|$(STATEDIR)|g' packaging/courant.conf.service.in; } \
	        > $(DESTDIR)$(SYSCONFDIR)/courant/courant.conf; \
	    chmod 644 $(DESTDIR)$(SYSCONFDIR)/courant/courant.conf; \
	fi

# Leaves $(SYSCONFDIR)/courant/courant.conf and the state directory alone.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/courant $(DESTDIR)$(MANDIR)/man1/courant.1 $(DESTDIR)$(UNITDIR)/courant.service
	rm -rf $(DESTDIR)$(DOCDIR)

deb:
	./scripts/deb.sh

# ---- sanitizer build: the server and the unit tests that `make test` runs ----
$(BUILD)/asan/courant: $(BUILD)/asan/main.o $(call objs,asan)
	@echo "  LD $@"
	$(Q)$(CC) -g $(SAN) $(LDFLAGS) -o $@ $^ $(LIBS) $(LDLIBS)

# A unit test may #include the .c it tests (to reach its statics), so it links
# every other module's object.
$(BUILD)/asan/%_test: tests/unit/%_test.c tests/unit/test.h $(call objs,asan)
	@echo "  TEST $@"
	$(Q)$(CC) $(BASE) $(CPPFLAGS) -g -O1 $(SAN) -Itests/unit $(LDFLAGS) -o $@ $< \
	    $(filter-out $(BUILD)/asan/$*.o,$(call objs,asan)) $(LIBS) $(LDLIBS)

# The URL pattern test driver: JSON lines in, JSON lines out, for the
# differential and web-platform-tests runs in tests/e2e/urlpattern-*.test.mjs.
$(BUILD)/asan/urlpattern_cli: tests/unit/urlpattern_cli.c $(call objs,asan)
	@echo "  CLI $@"
	$(Q)$(CC) $(BASE) $(CPPFLAGS) -g -O1 $(SAN) $(LDFLAGS) -o $@ $< $(call objs,asan) $(LIBS) $(LDLIBS)

unit: $(addprefix $(BUILD)/asan/,$(UNIT)) $(BUILD)/asan/urlpattern_cli

# ---- ThreadSanitizer build: the cross-worker code (hub, inboxes, stats) ------
$(BUILD)/tsan/courant: $(BUILD)/tsan/main.o $(call objs,tsan)
	@echo "  LD $@"
	$(Q)$(CC) -g -fsanitize=thread $(LDFLAGS) -o $@ $^ $(LIBS) $(LDLIBS)

# ---- the same sources must build clean with clang too ------------------------
$(BUILD)/clang/courant: $(BUILD)/clang/main.o $(call objs,clang)
	@echo "  LD $@"
	$(Q)$(CLANG) $(LDFLAGS) -o $@ $^ $(LIBS) $(LDLIBS)

clang-check: $(BUILD)/clang/courant

# ---- libFuzzer targets (clang only) ------------------------------------------
$(BUILD)/fuzz/%_fuzz: fuzz/%_fuzz.c fuzz/fuzz.h $(call objs,fuzz)
	@echo "  FUZZ $@"
	$(Q)$(CLANG) $(BASE) $(CPPFLAGS) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	    $(LDFLAGS) -o $@ $< $(call objs,fuzz) $(LIBS) $(LDLIBS)

fuzz: $(addprefix $(BUILD)/fuzz/,$(FUZZ))

$(BUILD):
	$(Q)mkdir -p $@

# ---- code checks that `make test` runs ---------------------------------------
format:
	clang-format -i $(FORMATTED)

format-check:
	@clang-format --dry-run --Werror $(FORMATTED) && echo "format-check: clean"

# Clang's static analyzer, one source at a time; any finding is an error.
analyze: $(BUILD)/assets.c $(BUILD)/version.h
	@fail=0; for f in src/*.c; do \
	    $(CLANG) --analyze -Xclang -analyzer-werror -Xanalyzer -analyzer-output=text \
	        -std=gnu11 -D_GNU_SOURCE -Isrc -I$(BUILD) $(CPPFLAGS) -o /dev/null $$f || fail=1; \
	done; [ $$fail = 0 ] && echo "analyze: no findings"

# The documented layer order (docs/ARCHITECTURE.md): no module includes one above it.
check-layers:
	@python3 scripts/check_layers.py .

# For clangd and clang-tidy: one entry per source, with the optimized build's flags.
compile_commands.json: $(SRC) src/main.c Makefile
	@{ echo '['; sep=''; for f in $(SRC) src/main.c; do \
	    printf '%s{"directory":"%s","file":"%s","command":"%s %s %s %s -c -o %s %s"}\n' "$$sep" \
	        "$(CURDIR)" "$$f" "$(CC)" "$(BASE)" "$(CPPFLAGS)" "$(CFLAGS)" "$(BUILD)/obj/$$(basename $$f .c).o" "$$f"; \
	    sep=','; done; echo ']'; } > $@
	@echo "wrote $@"

# ---- the README's two commands -----------------------------------------------
setup:
	./scripts/setup.sh

run:
	./scripts/setup.sh --run
	$(MAKE) -j$(NPROC) all
	@echo "courant: open http://localhost:8000/ (demo) or http://localhost:8000/events"
	mkdir -p data
	exec ./$(BUILD)/courant --demo --demo-auth --anonymous --listen 127.0.0.1:8000 --listen [::1]:8000 --store data/courant.db

test-build:
	$(MAKE) -j$(NPROC) $(BUILD)/courant $(BUILD)/asan/courant $(BUILD)/tsan/courant unit fuzz clang-check

test: setup
	$(MAKE) test-build
	./tests/run.sh

# Fetches nothing: the suites (AGPL, never in this repository) come from the
# paths the environment names; see scripts/conformance.sh.
conformance: $(BUILD)/courant
	./scripts/conformance.sh

bench: setup
	$(MAKE) -j$(NPROC) all
	QUICK=$(QUICK) BASELINE=$(BASELINE) ./bench/run.sh

# SQLite vs LMDB on the publish path (bench/store/RESULTS.md); needs liblmdb-dev,
# which only this benchmark links.
$(BUILD)/store_bench: bench/store/store_bench.c | $(BUILD)
	$(CC) -std=gnu11 $(WARN) $(CPPFLAGS) -O2 $(LDFLAGS) -o $@ $< -lsqlite3 -llmdb

bench-store: $(BUILD)/store_bench
	mkdir -p $(BUILD)/benchdir
	$(BUILD)/store_bench $(BUILD)/benchdir 20000

clean:
	rm -rf $(BUILD) compile_commands.json
