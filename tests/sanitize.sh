#!/bin/sh
# make test-sanitize: the unit tests (tests/test_*.c) and the CLI tests built
# with AddressSanitizer + UndefinedBehaviorSanitizer (-fno-sanitize-recover=all,
# LeakSanitizer on) and run in build/san/tree, a copy of the top directory
# whose ./srlm and tiny_models/world are the sanitized builds (the rest are
# links to the real files). Every sanitizer report of every process, also one
# whose exit status a test ignores, goes to build/san/logs; any report fails.
#
# CLI tests: test_badinput, test_cli, test_dirs and test_m0. Not here:
# test_run (the reduced run trains M0 for 126 steps first: 22 tokens/s under
# these sanitizers against about 500, hours in all; a smaller run for it is
# still to be made), test_fuzz (the fuzz targets are sanitized builds
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

# the tree: everything else is the real file; tests/ without the shell tests that
# do not run this srlm (tests/run.sh runs every tests/test_*.sh it finds)
mkdir "$san/tree/tests"
for f in Makefile README.md srlm.c tensor.c tensor.h tokenizer.c tokenizer.h; do ln -s "$top/$f" "$san/tree/$f"; done
for f in tests/*; do
    case $f in
        tests/test_run.sh|tests/test_fuzz.sh|tests/test_repro.sh|tests/test_cross.sh|tests/test_windows.sh|tests/test_torch.sh) ;;
        *) ln -s "$top/$f" "$san/tree/$f" ;;
    esac
done
for f in tiny_models/*; do
    [ "$f" = tiny_models/world ] || [ "$f" = tiny_models/data ] || ln -s "$top/$f" "$san/tree/$f"
done

cd "$san/tree" || exit 1
ASAN_OPTIONS="detect_leaks=1:log_path=$san/logs/asan" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$san/logs/ubsan" \
    sh tests/run.sh $bins > "$san/run.log" 2>&1
rc=$?
cd "$top" || exit 1
sed '$d' "$san/run.log"
last=$(tail -n 1 "$san/run.log")
passed=$(echo "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
failed=$(echo "$last" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
[ -n "$passed" ] || { echo "FAIL: no summary from tests/run.sh: $last"; passed=0; failed=1; }
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
