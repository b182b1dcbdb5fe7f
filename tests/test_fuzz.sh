#!/bin/sh
# Replay every fuzz target (tests/fuzz/readers.c) from its committed seed
# corpus (tests/fuzz/corpus/NAME) for a fixed number of executions with a
# fixed seed, under ASan + UBSan + LeakSanitizer, a 256 MB memory limit and a
# 10 s per-input timeout. Any crash, sanitizer report, leak, timeout or
# out-of-memory stop fails the target. Long runs: tests/README.md "Robustness".
#   FUZZ_RUNS=N  executions per target (default 2000)
set -u
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
RUNS=${FUZZ_RUNS:-2000}
CC_FUZZ=${FUZZ_CC:-clang}
TARGETS="ckpt tokfile tokround jsonl runjson template score hf llama2c gguf rundir"

if ! command -v "$CC_FUZZ" >/dev/null 2>&1; then
    echo "SKIP: $CC_FUZZ not found (libFuzzer needs clang; .ci/run installs it)"; echo "#summary 0 0"; exit 0
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' > "$probe/p.c"
if ! "$CC_FUZZ" -fsanitize=fuzzer,address,undefined -o "$probe/p" "$probe/p.c" >/dev/null 2>&1; then
    echo "SKIP: $CC_FUZZ cannot link libFuzzer (install libclang-rt-dev; .ci/run does)"; echo "#summary 0 0"; exit 0
fi

if make -s fuzz FUZZ_CC="$CC_FUZZ" > "$probe/build.log" 2>&1; then ok fuzz_build
else bad "fuzz_build: $(tail -5 "$probe/build.log")"; echo "#summary $pass $fail"; exit 1; fi

mkdir -p build/fuzz/artifacts
for t in $TARGETS; do
    seeds=tests/fuzz/corpus/$t
    if [ -z "$(ls "$seeds" 2>/dev/null)" ]; then bad "fuzz_$t: no seed corpus in $seeds"; continue; fi
    work=$probe/$t; mkdir -p "$work"
    start=$(date +%s)
    # new inputs go to $work (the first directory); the committed corpus is only read.
    # A fixed seed; -use_cmp=0 (compared values include heap addresses) and -reload=0
    # take out what varies most between runs, but libFuzzer still schedules partly by
    # time: a loaded machine can end a few edges of coverage apart (e.g. gguf 301 or 309).
    # ASan's quarantine of freed memory is cut to 32 MB so that the limit measures srlm.
    ASAN_OPTIONS=quarantine_size_mb=32 build/fuzz/$t -runs=$RUNS -seed=1 -use_cmp=0 -reload=0 -rss_limit_mb=256 -malloc_limit_mb=256 \
        -timeout=10 -artifact_prefix=build/fuzz/artifacts/$t- "$work" "$seeds" > "$probe/$t.log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    if [ $rc -eq 0 ] && grep -q "^Done $RUNS runs" "$probe/$t.log" && ! grep -q 'ERROR\|SUMMARY:' "$probe/$t.log"; then
        ok "fuzz_$t: $RUNS executions, $(sed -n 's/^#[0-9]*.*DONE *\(cov: [0-9]*\).*/\1/p' "$probe/$t.log"), ${secs}s"
    else
        bad "fuzz_$t (exit $rc): $(grep -m 3 'ERROR\|SUMMARY\|Test unit written' "$probe/$t.log")"
    fi
done
echo "#summary $pass $fail"
[ $fail -eq 0 ]
