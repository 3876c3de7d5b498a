# courant: a Server-Sent Events hub.
#
#   make            optimized build/courant
#   make run        install what is missing, build, start courant --demo on :8000,
#                   its history kept in data/courant.db (survives restarts)
#   make test       install, build with ASan+UBSan, run every test
#   make fuzz       build the libFuzzer targets (clang)
#   make bench      the side-by-side benchmark (see bench/)
#
# Variables: CC (gcc by default; clang works too), V=1 for full command lines.

CC      ?= gcc
CLANG   ?= clang
BUILD   := build
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
BASEFLAGS := -std=gnu11 $(WARN) -D_GNU_SOURCE -pthread -g -Isrc -I$(BUILD)
CFLAGS  ?= -O2
LDLIBS  := -pthread -lsqlite3 -lcrypto -ljansson -lhiredis   # libsqlite3-dev (--store), libssl-dev + libjansson-dev (JWT), libhiredis-dev (--redis)

SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

SRC     := $(filter-out src/main.c,$(wildcard src/*.c))
HDR     := $(wildcard src/*.h)
WEB     := $(sort $(wildcard web/*))
UNIT    := $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/*_test.c))
FUZZ    := $(patsubst fuzz/%.c,%,$(wildcard fuzz/*_fuzz.c))

.PHONY: all run test fuzz bench bench-store clean setup clang-check unit
.DELETE_ON_ERROR:

all: $(BUILD)/courant

# ---- generated: the demo page embedded into the binary ----------------------
$(BUILD)/embed: tools/embed.c | $(BUILD)
	$(CC) -std=gnu11 $(WARN) -O1 -o $@ $<

$(BUILD)/assets.c: $(BUILD)/embed $(WEB)
	$(BUILD)/embed $(WEB) > $@

# ---- optimized server --------------------------------------------------------
$(BUILD)/courant: src/main.c $(SRC) $(HDR) $(BUILD)/assets.c
	$(CC) $(BASEFLAGS) $(CFLAGS) -o $@ src/main.c $(SRC) $(BUILD)/assets.c $(LDLIBS)

# ---- sanitizer build: the server and the unit tests that `make test` runs ----
$(BUILD)/asan/courant: src/main.c $(SRC) $(HDR) $(BUILD)/assets.c | $(BUILD)/asan
	$(CC) $(BASEFLAGS) -O1 $(SAN) -o $@ src/main.c $(SRC) $(BUILD)/assets.c $(LDLIBS)

$(BUILD)/asan/%_test: tests/unit/%_test.c tests/unit/test.h $(SRC) $(HDR) $(BUILD)/assets.c | $(BUILD)/asan
	$(CC) $(BASEFLAGS) -O1 $(SAN) -Itests/unit -o $@ $< $(filter-out src/$*.c,$(SRC)) $(BUILD)/assets.c $(LDLIBS)

unit: $(addprefix $(BUILD)/asan/,$(UNIT))

# ---- ThreadSanitizer build: the cross-worker code (hub, inboxes, stats) ------
$(BUILD)/tsan/courant: src/main.c $(SRC) $(HDR) $(BUILD)/assets.c | $(BUILD)/tsan
	$(CC) $(BASEFLAGS) -O1 -fsanitize=thread -o $@ src/main.c $(SRC) $(BUILD)/assets.c $(LDLIBS)

# ---- the same sources must build clean with clang too ------------------------
$(BUILD)/clang/courant: src/main.c $(SRC) $(HDR) $(BUILD)/assets.c | $(BUILD)/clang
	$(CLANG) $(BASEFLAGS) -O2 -o $@ src/main.c $(SRC) $(BUILD)/assets.c $(LDLIBS)

clang-check: $(BUILD)/clang/courant

# ---- libFuzzer targets (clang only) ------------------------------------------
$(BUILD)/fuzz/%_fuzz: fuzz/%_fuzz.c $(SRC) $(HDR) $(BUILD)/assets.c | $(BUILD)/fuzz
	$(CLANG) $(BASEFLAGS) -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	    -o $@ $< $(SRC) $(BUILD)/assets.c $(LDLIBS)

fuzz: $(addprefix $(BUILD)/fuzz/,$(FUZZ))

$(BUILD) $(BUILD)/asan $(BUILD)/tsan $(BUILD)/clang $(BUILD)/fuzz:
	mkdir -p $@

# ---- the README's two commands -----------------------------------------------
setup:
	./scripts/setup.sh

run:
	./scripts/setup.sh --run
	$(MAKE) all
	@echo "courant: open http://localhost:8000/ (demo) or http://localhost:8000/events"
	mkdir -p data
	exec ./$(BUILD)/courant --demo --demo-auth --anonymous --listen 127.0.0.1:8000 --listen [::1]:8000 --store data/courant.db

test: setup
	$(MAKE) $(BUILD)/courant $(BUILD)/asan/courant $(BUILD)/tsan/courant unit fuzz clang-check
	./tests/run.sh

bench: setup all
	QUICK=$(QUICK) ./bench/run.sh

# SQLite vs LMDB on the publish path (bench/store/RESULTS.md); needs liblmdb-dev,
# which only this benchmark links.
$(BUILD)/store_bench: bench/store/store_bench.c | $(BUILD)
	$(CC) -std=gnu11 $(WARN) -O2 -o $@ $< -lsqlite3 -llmdb

bench-store: $(BUILD)/store_bench
	mkdir -p $(BUILD)/benchdir
	$(BUILD)/store_bench $(BUILD)/benchdir 20000

clean:
	rm -rf $(BUILD)
