# maxpool — GNU make + pkg-config. `make` builds ./maxpool; `make test` runs every tier.
# See README.md for the targets; DESIGN.md for the layout.

PKGS      := libuv libcurl jansson openssl sqlite3 ncursesw
BUILD     ?= build
CC        ?= cc
OPT       ?= -O2 -g
WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
             -Wno-unused-parameter -Wformat=2 -Wno-format-nonliteral
SAN       ?=
CFLAGS    ?= $(OPT)
CFLAGS    += -std=gnu11 $(WARN) $(SAN) -fno-omit-frame-pointer
CPPFLAGS  += -Isrc -D_GNU_SOURCE -MMD -MP
PREFIX    ?= /usr/local

# Install missing libraries once (scripts/install-deps uses apt-get as root,
# otherwise prints the exact command). Skipped for targets that need nothing.
NODEPS_GOALS := clean fmt distclean help
ifneq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
DEPS_OK := $(shell pkg-config --exists $(PKGS) && test -f /usr/include/http_parser.h \
             && test -f /usr/include/criterion/criterion.h && echo ok)
ifneq ($(DEPS_OK),ok)
$(info maxpool: libraries missing, running scripts/install-deps)
DEPS_RC := $(shell scripts/install-deps >&2; echo $$?)
ifneq ($(DEPS_RC),0)
$(error scripts/install-deps failed; install the packages it printed and run make again)
endif
endif
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lm
CPPFLAGS   += $(PKG_CFLAGS)
LDLIBS     := $(PKG_LIBS)

MAIN_SRC  := src/cli/main.c
LIB_SRC   := $(filter-out $(MAIN_SRC),$(sort $(wildcard src/*/*.c)))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB_A     := $(BUILD)/libmaxpool.a
UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))

.PHONY: all test unit e2e test-long e2e-asan asan fuzz fuzz-smoke fmt lint install clean demo bench help
all: maxpool

ifeq ($(BUILD),build)
maxpool: $(BUILD)/maxpool
	@cp $< $@
endif

$(BUILD)/maxpool: $(BUILD)/src/cli/main.o $(LIB_A)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(LIB_A): $(LIB_OBJ)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

# `make V=1` shows full command lines.
Q := $(if $(V),,@)
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/test_%: tests/unit/test_%.c $(LIB_A) tests/unit/testutil.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) -o $@ $< $(LIB_A) $(LDFLAGS) $(LDLIBS) -lcriterion

# Every unit test binary runs in its own processes (Criterion forks per test).
unit: $(UNIT_BIN) $(BUILD)/maxpool
	@MAXPOOL_BIN=$(CURDIR)/$(BUILD)/maxpool scripts/run-unit $(UNIT_BIN)

e2e: maxpool
	@scripts/run-e2e

# The long end-to-end tests (tests/e2e/long_*.test.mjs, e.g. how long Claude Code waits on a
# heartbeat-only stream: holds of 1, 3, 6 and 10 min, ~21 min in all); `make e2e` skips them.
test-long: maxpool
	@MAXPOOL_E2E_LONG=1 scripts/run-e2e tests/e2e/long_*.test.mjs

test: all
	@MAKE="$(MAKE)" scripts/run-tests

# The e2e suite against an ASan/UBSan build (build-asan/maxpool), without the claude CLI
# runs. Sanitizer reports go to build-asan/e2e-reports/; any report fails the target.
E2E_REPORTS := $(CURDIR)/build-asan/e2e-reports
e2e-asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g" SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" build-asan/maxpool
	@rm -rf $(E2E_REPORTS) && mkdir -p $(E2E_REPORTS)
	@rc=0; MAXPOOL_BIN=$(CURDIR)/build-asan/maxpool MAXPOOL_E2E_SANITIZED=1 MAXPOOL_E2E_NO_CLI=1 \
	  ASAN_OPTIONS=detect_leaks=1:log_path=$(E2E_REPORTS)/asan \
	  UBSAN_OPTIONS=print_stacktrace=1:log_path=$(E2E_REPORTS)/ubsan scripts/run-e2e || rc=$$?; \
	if [ -n "$$(ls $(E2E_REPORTS))" ]; then cat $(E2E_REPORTS)/*; \
	  echo "e2e-asan: sanitizer reports above"; rc=1; fi; exit $$rc

asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g" SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" unit

# libFuzzer harnesses; `make fuzz` runs each for FUZZ_SECONDS (default 60).
FUZZ_SECONDS ?= 60
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
build-fuzz/libmaxpool-fuzz.a: $(LIB_SRC)
	$(MAKE) BUILD=build-fuzz CC=clang OPT="-O1 -g" \
	  SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" build-fuzz/libmaxpool.a
	@cp build-fuzz/libmaxpool.a $@
build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c build-fuzz/libmaxpool-fuzz.a
	clang $(CPPFLAGS) -std=gnu11 -O1 -g -fsanitize=fuzzer,address,undefined \
	  -fno-sanitize-recover=all -o $@ $< \
	  build-fuzz/libmaxpool-fuzz.a $(LDLIBS)
fuzz: $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do n=$$(basename $$f); mkdir -p build-fuzz/corpus/$$n; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 build-fuzz/corpus/$$n \
	    $$(test -d tests/fuzz/corpus/$$n && echo tests/fuzz/corpus/$$n) >build-fuzz/$$n.log 2>&1 \
	    || { tail -40 build-fuzz/$$n.log; exit 1; }; echo "fuzz $$n: ok ($(FUZZ_SECONDS)s)"; done
fuzz-smoke:
	@if [ -n "$(FUZZ_SRC)" ]; then $(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$${FUZZ_SMOKE_SECONDS:-10}; fi

demo: maxpool
	./maxpool demo

bench: maxpool
	@scripts/install-deps --bench
	@bench/run

# The scheduling-policy simulator (docs/routing.md): `make bench-policy POLICY_ARGS="--seed 7"`.
$(BUILD)/bench/policy: bench/policy/policy.c $(LIB_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LIB_A) $(LDFLAGS) $(LDLIBS)
.PHONY: bench-policy
bench-policy: $(BUILD)/bench/policy
	@$(BUILD)/bench/policy $(POLICY_ARGS)

FMT_FILES = $(shell git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 'bench/*.c')
fmt:
	clang-format -i $(FMT_FILES)

lint: $(BUILD)/maxpool
	@clang-format --dry-run --Werror $(FMT_FILES)
	@cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
	  --suppress=missingIncludeSystem --suppress=unknownMacro -Isrc src
	@if git grep -nE '\b(sprintf|strcpy|strcat|atoi|gets)[[:space:]]*\(' -- 'src/*.c' 'src/*.h' 'tests/*.c' 'bench/*.c'; then \
	  echo "lint: banned call (use snprintf, strtol, bounded copies)"; exit 1; fi
	@echo "lint: ok"

install: maxpool
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 maxpool $(DESTDIR)$(PREFIX)/bin/maxpool

clean:
	rm -rf build build-asan build-fuzz maxpool

-include $(LIB_OBJ:.o=.d) $(BUILD)/src/cli/main.d
