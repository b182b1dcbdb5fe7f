#!/bin/sh
# make test-sanitize: the unit tests (tests/test_*.c) and the CLI tests built
# with AddressSanitizer + UndefinedBehaviorSanitizer (-fno-sanitize-recover=all,
# LeakSanitizer on) and run in build/san/tree, a copy of the top directory
# whose ./srlm and tiny_models/world are the sanitized builds (the rest are
# links to the real files). Every sanitizer report of every process, also one
# whose exit status a test ignores, goes to build/san/logs; any report fails.
#
# CLI tests: every tests/test_*.sh but those below, and the whole loop on a
# smaller run than test_run's (loop_sanitized). Not here: test_run (its reduced
# run trains M0 for 126 steps first: 22 tokens/s under these sanitizers against
# about 500, hours in all), test_fuzz (the fuzz targets are sanitized builds
# already), test_repro/test_cross/test_windows (they build their own
# binaries), test_torch (a numeric cross-check, no input handling). SAN_CC
# picks the compiler (default cc; gcc and clang both work).
set -u
CC_SAN=${SAN_CC:-cc}
top=$(pwd)
san=$top/build/san
FLAGS="-std=c99 -pedantic -Wall -Wextra -ffp-contract=off -O2 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all"
rm -rf "$san"
mkdir -p "$san/tree/build" "$san/tree/tiny_models" "$san/logs"

echo "building with $CC_SAN $FLAGS"
"$CC_SAN" $FLAGS -o "$san/tree/srlm" srlm.c tensor.c tokenizer.c -lm || exit 1
"$CC_SAN" $FLAGS -o "$san/tree/tiny_models/world" tiny_models/world.c tensor.c -lm || exit 1
bins=""
for t in tests/test_*.c; do
    b=build/$(basename "$t" .c)
    "$CC_SAN" $FLAGS -o "$san/tree/$b" "$t" tensor.c tokenizer.c -lm || exit 1
    bins="$bins $b"
done

# the tree: everything else is the real file. The shell tests that do not run
# this srlm are linked (test_docs checks that a run-by script exists) but not run.
mkdir "$san/tree/tests"
for f in Makefile README.md srlm.c tensor.c tensor.h tokenizer.c tokenizer.h; do ln -s "$top/$f" "$san/tree/$f"; done
shell_tests=""
for f in tests/*; do
    ln -s "$top/$f" "$san/tree/$f"
    case $f in
        tests/test_run.sh|tests/test_fuzz.sh|tests/test_repro.sh|tests/test_cross.sh|tests/test_windows.sh|tests/test_torch.sh) ;;
        tests/test_*.sh) shell_tests="$shell_tests $f" ;;
    esac
done
# the real consumers (tests/test_interop.sh) read the sanitized srlm's exports too
[ -d build/consumers ] && ln -s "$top/build/consumers" "$san/tree/build/consumers"
for f in tiny_models/*; do
    [ "$f" = tiny_models/world ] || [ "$f" = tiny_models/data ] || ln -s "$top/$f" "$san/tree/$f"
done

ASAN_OPTIONS="detect_leaks=1:log_path=$san/logs/asan"
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$san/logs/ubsan"
export ASAN_OPTIONS UBSAN_OPTIONS

# The whole loop under the sanitizers, in the background meanwhile: test_run's
# reduced run is hours here, so this one is smaller still (the shipped M0, the
# --small world cut to 24 IFT and 24 EFT records, 6 test prompts and 6 ranked
# sets, 4 new prompts per iteration, best of 2, no ablation). Its M3 and report
# must be the bytes the normal build writes from the same inputs.
mini="$san/mini"; mkdir -p "$mini/full" "$mini/d"
./tiny_models/world gen --seed 1 --small --families starts,ends,contains,at --out "$mini/full" > /dev/null || exit 1
head -n 24 "$mini/full/ift.jsonl" > "$mini/d/ift.jsonl"
head -n 24 "$mini/full/eft_train.jsonl" > "$mini/d/eft_train.jsonl"
head -n 6 "$mini/full/test_prompts.jsonl" > "$mini/d/test_prompts.jsonl"
head -n 6 "$mini/full/ranked_eval.jsonl" > "$mini/d/ranked_eval.jsonl"
mini_run() {  # BINARY DIR GRADER
    "$1" run --dir "$2" --preset tiny --seed 3 --m0 tiny_models/m0.ckpt --tokenizer tiny_models/tokenizer.tok \
        --template tiny_models/judge_template.txt --ift "$mini/d/ift.jsonl" --eft "$mini/d/eft_train.jsonl" \
        --test "$mini/d/test_prompts.jsonl" --ranked "$mini/d/ranked_eval.jsonl" --grader "$3 grade" \
        --max-similarity 0.95 --prompts 4 --bestof 2 --no-ablation
}
start=$(date +%s)
mini_run "$san/tree/srlm" "$mini/san" "$san/tree/tiny_models/world" > "$mini/san.log" 2>&1 &
mini_pid=$!

cd "$san/tree" || exit 1
SRLM_SHELL_TESTS="$shell_tests" sh tests/run.sh $bins > "$san/run.log" 2>&1
rc=$?
cd "$top" || exit 1
sed '$d' "$san/run.log"
last=$(tail -n 1 "$san/run.log")
passed=$(echo "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
failed=$(echo "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
[ -n "$passed" ] || { echo "FAIL: no summary from tests/run.sh: $last"; passed=0; failed=1; }
wait $mini_pid
mini_rc=$?
(unset ASAN_OPTIONS UBSAN_OPTIONS; mini_run ./srlm "$mini/plain" ./tiny_models/world > "$mini/plain.log" 2>&1)
if [ $mini_rc -ne 0 ]; then
    echo "FAIL loop_sanitized: exit $mini_rc: $(tail -n 2 "$mini/san.log")"; failed=$((failed + 1))
elif cmp -s "$mini/san/m3.ckpt" "$mini/plain/m3.ckpt" && cmp -s "$mini/san/report.md" "$mini/plain/report.md"; then
    echo "ok   loop_sanitized (the whole loop, same M3 and report as the normal build, $(( $(date +%s) - start )) s)"
    passed=$((passed + 1))
else
    echo "FAIL loop_sanitized: M3 or report.md differs from the normal build's"; failed=$((failed + 1))
fi
reports=$(ls "$san/logs" 2>/dev/null | wc -l)
if [ "$reports" -eq 0 ]; then
    echo "ok   no sanitizer reports"; passed=$((passed + 1))
else
    echo "FAIL $reports sanitizer report(s) in build/san/logs:"
    for f in "$san"/logs/*; do echo "--- $f"; head -n 30 "$f"; done
    failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ $rc -eq 0 ]
