# srlm - build, test, run. Plain make, one compiler, no packages.
#
#   make            build ./srlm and tiny_models/world
#   make test       run every test; the last line is "N passed, M failed"
#   make run        the main job on the shipped tiny model
#   make bench      speed figures (never part of the tests)
#
# The flags in REQUIRED are not optional: -ffp-contract=off stops compilers
# from fusing a*b+c into FMA (which changes bits); never add -ffast-math or
# -Ofast (it turns on flush-to-zero for the whole process).

CC ?= cc
OPT ?= -O2
REQUIRED = -std=c99 -pedantic -Wall -Wextra -ffp-contract=off
CFLAGS_ALL = $(REQUIRED) $(OPT) $(CFLAGS)
LDLIBS = -lm

CORE_SRC = tensor.c tokenizer.c
CORE_HDR = tensor.h tokenizer.h
BUILD = build

.PHONY: all test test-repro test-torch bench run clean tiny_models

all: srlm tiny_models/world

srlm: srlm.c $(CORE_SRC) $(CORE_HDR)
	$(CC) $(CFLAGS_ALL) -o $@ srlm.c $(CORE_SRC) $(LDLIBS)

tiny_models/world: tiny_models/world.c tensor.c tensor.h
	$(CC) $(CFLAGS_ALL) -o $@ tiny_models/world.c tensor.c $(LDLIBS)

# --- tests: each tests/test_*.c is one binary (tests may #include srlm.c) ---
TEST_SRC = $(wildcard tests/test_*.c)
TEST_BIN = $(patsubst tests/%.c,$(BUILD)/%,$(TEST_SRC))

$(BUILD)/test_%: tests/test_%.c tests/check.h srlm.c tiny_models/world.c $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(CORE_SRC) $(LDLIBS)

test: all $(TEST_BIN)
	@sh tests/run.sh $(TEST_BIN)

# the same short training run built three ways must give the same SHA-256
test-repro: srlm
	@sh tests/repro.sh

test-torch: srlm
	@sh tests/torch_check.sh

# --- benchmarks (figures, not pass/fail) ---
BENCH_SRC = $(wildcard tests/bench_*.c)
BENCH_BIN = $(patsubst tests/%.c,$(BUILD)/%,$(BENCH_SRC))
$(BUILD)/bench_%: tests/bench_%.c srlm.c $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(BUILD)
	$(CC) $(REQUIRED) -O3 $(CFLAGS) -o $@ $< $(CORE_SRC) $(LDLIBS)

bench: $(BENCH_BIN)
	@for b in $(BENCH_BIN); do ./$$b || exit 1; done

# --- the main job ---
run: all
	@sh tests/demo.sh

clean:
	rm -rf $(BUILD) srlm tiny_models/world runs
