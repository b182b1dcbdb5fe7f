# srlm - build, test, run. Plain make, one compiler, no packages.
#
#   make            build ./srlm and tiny_models/world
#   make test       run every test; the last line is "N passed, M failed"
#                   (test-cross and test-windows among them, where their tools are)
#   make run        the main job on the shipped tiny model
#   make bench      speed figures, one table (never part of the tests);
#                   make bench-detail: the per-op figures
#   make fuzz       the libFuzzer targets (build/fuzz/NAME; tests/README.md "Robustness")
#   make test-sanitize  the unit and CLI tests under ASan + UBSan + LeakSanitizer
#
# The flags in REQUIRED are not optional: -ffp-contract=off stops compilers
# from fusing a*b+c into FMA (which changes bits); never add -ffast-math or
# -Ofast (it turns on flush-to-zero for the whole process).

CC ?= cc
# -march=native is used where the compiler takes it: it changes speed, never
# bits (no contraction, no reassociation; tests/test_repro.sh checks).
NATIVE := $(shell $(CC) -march=native -x c -E /dev/null >/dev/null 2>&1 && echo -march=native)
# gcc and clang use 256-bit vectors on AVX-512 machines unless asked; the
# 16-wide matmul tile fits one 512-bit register (about 20% faster training).
WIDE := $(shell $(CC) -march=native -mprefer-vector-width=512 -x c -c -o /dev/null /dev/null >/dev/null 2>&1 \
          && echo -mprefer-vector-width=512)
OPT ?= -O3 $(NATIVE) $(WIDE)
REQUIRED = -std=c99 -pedantic -Wall -Wextra -ffp-contract=off
CFLAGS_ALL = $(REQUIRED) $(OPT) $(CFLAGS)
LDLIBS = -lm

CORE_SRC = tensor.c tokenizer.c
CORE_HDR = tensor.h tokenizer.h
BUILD = build

.PHONY: all fuzz test-sanitize test test-repro test-torch test-cross test-windows bench bench-detail bench-llama2c run clean tiny_models data

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
	@sh tests/test_repro.sh

test-torch: srlm
	@sh tests/test_torch.sh

# the cross matrix: gcc/clang -O0..-O3, native 256/512-bit, musl, i686, aarch64,
# armhf, s390x under qemu-user, one golden digest (tests/cross.digests)
test-cross:
	@sh tests/test_cross.sh

# srlm.exe (MinGW-w64) under wine: the reduced run gives tests/run_tiny.digests
test-windows: all
	@sh tests/test_windows.sh

# --- fuzzing (clang's libFuzzer): one binary, linked under each target's name ---
# build/fuzz/NAME CORPUS_DIR... fuzzes one reader (tests/fuzz/readers.c lists them);
# make test replays the committed corpus (tests/test_fuzz.sh); tests/README.md "Robustness"
# says how to run them for hours.
FUZZ_CC ?= clang
FUZZ_TARGETS = ckpt tokfile tokround jsonl runjson template score hf llama2c gguf rundir
FUZZ_FLAGS = -std=c99 -pedantic -Wall -Wextra -ffp-contract=off -g -O1 -fsanitize=fuzzer,address,undefined \
             -fno-sanitize-recover=all

$(BUILD)/fuzz/readers: tests/fuzz/readers.c srlm.c $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(BUILD)/fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/fuzz/readers.c $(CORE_SRC) $(LDLIBS)

fuzz: $(BUILD)/fuzz/readers
	@for t in $(FUZZ_TARGETS); do ln -sf readers $(BUILD)/fuzz/$$t; done

# the unit tests and the CLI tests under ASan + UBSan + LeakSanitizer (tests/sanitize.sh;
# SAN_CC=clang or gcc); .ci/run runs it after make test
test-sanitize: all
	@sh tests/sanitize.sh

# --- benchmarks (figures, not pass/fail) ---
$(BUILD)/bench_%: tests/bench_%.c srlm.c $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(CORE_SRC) $(LDLIBS)

# one table: every workload beside the measured core peak (tests/bench_model.c)
bench: $(BUILD)/bench_model
	@./$(BUILD)/bench_model

# the per-op figures (matmul shapes, attention, norms) and the tokenizer
# one-sequence decoding beside llama2.c's run.c on the same weights (LLAMA2C_RUN_C=path/to/run.c)
bench-llama2c: all $(BUILD)/bench_model
	@sh tests/bench_llama2c.sh

bench-detail: $(BUILD)/bench_ops $(BUILD)/bench_tokenizer
	@./$(BUILD)/bench_ops && ./$(BUILD)/bench_tokenizer

# --- the synthetic world, its tokenizer and M0 (tiny_models/) ---
# The data is rebuilt from the seed in a second (again whenever the world,
# its recorded MANIFEST or these options change); tokenizer and M0 are
# committed, and `make tiny_models` rebuilds both from scratch and checks
# every digest against tiny_models/DIGESTS.
WORLD_SEED = 1
WORLD_ARGS = --seed $(WORLD_SEED) --families starts,ends,contains,at --corpus-bytes 8000000 \
             --corpus-review-pct 24 --ift 1200 --ift-good-pct 95 --ift-habit-pcts 70,60,80,90 --eft-train 3000
DATA = tiny_models/data
TOKENIZER = tiny_models/tokenizer.tok
TOK_VOCAB = 768
M0 = tiny_models/m0.ckpt
M0_ARGS = --dim 128 --layers 4 --heads 4 --kv-heads 4 --hidden 352 --context 320 --tied 1 \
          --steps 2000 --batch 16 --seq 256 --lr 3e-3 --lr-min 3e-4 --warmup 30 --wd 0.1 --seed 1 --log-every 100

$(DATA)/MANIFEST: tiny_models/world tiny_models/MANIFEST Makefile
	@mkdir -p $(DATA)
	tiny_models/world gen $(WORLD_ARGS) --out $(DATA) > /dev/null
	@sh tests/check_digests.sh $(DATA) || { rm -f $(DATA)/MANIFEST; exit 1; }

data: $(DATA)/MANIFEST

tiny_models: all
	@sh tests/rebuild_tiny_models.sh

# --- the main job: the whole self-rewarding loop on the shipped M0 ---
RUN_DIR ?= runs/default
PRESET ?= default
SEED ?= 1
RUN_ARGS = --m0 $(M0) --tokenizer $(TOKENIZER) --template tiny_models/judge_template.txt \
           --ift $(DATA)/ift.jsonl --eft $(DATA)/eft_train.jsonl --test $(DATA)/test_prompts.jsonl \
           --ranked $(DATA)/ranked_eval.jsonl --grader "tiny_models/world grade"

# the recipe for the open world (README "What make run shows"): 8 candidates,
# the similarity cut open prompts need, confident pairs only, RPO
RECIPE_ARGS = --prompts 128 --candidates 8 --max-similarity 0.95 --min-margin 1 --min-chosen 4.5 --nll-weight 1

# best of 8 (evaluation only, after the loop) for M1: about a minute of one core;
# BESTOF=all (or a list such as m1,m2,m3) evaluates more models, a minute each
BESTOF ?= m1

run: all data
	./srlm run --dir $(RUN_DIR) --preset $(PRESET) --seed $(SEED) $(RUN_ARGS) $(RECIPE_ARGS) --bestof-models $(BESTOF)

clean:
	rm -rf $(BUILD) srlm tiny_models/world runs

print-world-args:
	@echo $(WORLD_ARGS)
print-m0-args:
	@echo $(M0_ARGS)
print-tok-vocab:
	@echo $(TOK_VOCAB)
