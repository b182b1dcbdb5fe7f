#!/bin/sh
# Windows: srlm.exe built with MinGW-w64 and run under wine.
#  - srlm.exe, world.exe and test_platform.exe build warning-free;
#  - test_platform.exe passes (the grader from an argument list with
#    quoted arguments, make_dirs, the atomic write replacing a file);
#  - world.exe generates the same bytes as the Linux world;
#  - sampled text on stdout is the same bytes as on Linux (binary stdout);
#  - the reduced `srlm run` of tests/test_run.sh (preset tiny, seed 3) gives
#    every model the SHA-256 recorded in tests/run_tiny.digests, and a second
#    run in its directory meanwhile is refused (the Windows run lock).
# Needs x86_64-w64-mingw32-gcc and wine (apt: gcc-mingw-w64-x86-64 wine
# wine64); without them: SKIP here, FAIL in CI (CI=true).
set -u
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
done_() { echo "#summary $pass $fail"; [ "$fail" -eq 0 ]; exit $?; }
MINGW=x86_64-w64-mingw32-gcc
WINE=$(command -v wine || command -v wine64 || { [ -x /usr/lib/wine/wine64 ] && echo /usr/lib/wine/wine64; })
for t in "$MINGW" "$WINE"; do
    if [ -z "$t" ] || ! command -v "$t" >/dev/null 2>&1; then
        if [ "${CI:-}" = true ]; then bad "windows: ${t:-wine} is not installed (.ci/run installs it)"
        else echo "SKIP: windows: ${t:-wine} not installed (apt-get install gcc-mingw-w64-x86-64 wine wine64)"; fi
        done_
    fi
done
win=build/win
rm -rf $win; mkdir -p $win/data
FLAGS="-std=c99 -pedantic -Wall -Wextra -ffp-contract=off -O2"
start=$(date +%s)
$MINGW $FLAGS -o $win/srlm.exe srlm.c tensor.c tokenizer.c > $win/build.log 2>&1 &
$MINGW $FLAGS -o $win/world.exe tiny_models/world.c tensor.c >> $win/build.log 2>&1 \
    && $MINGW $FLAGS -o $win/test_platform.exe tests/test_platform.c tensor.c tokenizer.c >> $win/build.log 2>&1
wait
if [ -f $win/srlm.exe ] && [ -f $win/world.exe ] && [ -f $win/test_platform.exe ] && [ ! -s $win/build.log ]; then
    ok mingw_builds_warning_free
else
    bad "mingw_builds_warning_free: $(head -5 $win/build.log)"; done_
fi
echo "  MinGW-w64 builds: $(( $(date +%s) - start )) s"

# a throwaway wine prefix, no display, no debug output, no Mono/Gecko installers
WINEPREFIX=$(mktemp -d); WINEDEBUG=-all; WINEDLLOVERRIDES="mscoree,mshtml="
export WINEPREFIX WINEDEBUG WINEDLLOVERRIDES; unset DISPLAY WAYLAND_DISPLAY
WINESERVER=$(command -v wineserver || echo /usr/lib/wine/wineserver)
cleanup() { "$WINESERVER" -k >/dev/null 2>&1; rm -rf "$WINEPREFIX"; }
trap cleanup EXIT
wine() { "$WINE" "$@" < /dev/null; }
start=$(date +%s)
wine $win/test_platform.exe "$win/world grade" > $win/platform.out 2>&1
grep -v '^#summary\|^wine: ' $win/platform.out | tr -d '\r' | sed 's/^/  wine test_platform: /'
summary=$(grep '^#summary' $win/platform.out | tr -d '\r')  # its stdout is in text mode: \r\n
if [ -n "$summary" ] && [ "$(echo "$summary" | cut -d' ' -f3)" = 0 ]; then ok test_platform_under_wine
else bad "test_platform_under_wine: $(tail -3 $win/platform.out)"; fi
echo "  wine start and test_platform.exe: $(( $(date +%s) - start )) s"

wine $win/world.exe gen --seed 1 --small --families starts,ends,contains,at --out $win/data > /dev/null 2>&1
mkdir -p $win/data.linux
tiny_models/world gen --seed 1 --small --families starts,ends,contains,at --out $win/data.linux > /dev/null
[ -s $win/data/MANIFEST ] && cmp -s $win/data/MANIFEST $win/data.linux/MANIFEST && ok world_exe_same_bytes \
    || bad "world_exe_same_bytes: the Windows world's MANIFEST differs from Linux's"

./srlm sample --model tiny_models/m0.ckpt --tokenizer tiny_models/tokenizer.tok --prompt "Q: Name a word" --max-new 60 --seed 2 --n 2 \
    > $win/sample.linux 2>/dev/null
wine $win/srlm.exe sample --model tiny_models/m0.ckpt --tokenizer tiny_models/tokenizer.tok --prompt "Q: Name a word" --max-new 60 \
    --seed 2 --n 2 > $win/sample.win 2>/dev/null
[ -s $win/sample.linux ] && cmp -s $win/sample.linux $win/sample.win && ok sample_stdout_same_bytes \
    || bad "sample_stdout_same_bytes: $(cmp $win/sample.linux $win/sample.win 2>&1)"

# the reduced loop, with test_run.sh's arguments; the Linux world's data
run() { wine $win/srlm.exe run --dir "$1" --preset tiny --seed 3 --m0 tiny_models/m0.ckpt --tokenizer tiny_models/tokenizer.tok \
        --template tiny_models/judge_template.txt --ift $win/data.linux/ift.jsonl --eft $win/data.linux/eft_train.jsonl \
        --test $win/data.linux/test_prompts.jsonl --ranked $win/data.linux/ranked_eval.jsonl --grader "$win/world grade" \
        --max-similarity 0.95; }
start=$(date +%s)
run $win/a > $win/a.out 2> $win/a.err &
pid=$!
i=0; while [ ! -f $win/a/run.cfg ] && [ $i -lt 300 ]; do sleep 0.2; i=$((i + 1)); done
if run $win/a > /dev/null 2> $win/lock.err; then bad "second_run_refused: it ran"
elif grep -q 'another srlm run is working in this directory' $win/lock.err && [ "$(wc -l < $win/lock.err)" -eq 1 ]; then ok second_run_refused
else bad "second_run_refused: $(head -3 $win/lock.err)"; fi
if wait $pid; then ok run_tiny_completes; else bad "run_tiny_completes: $(tail -3 $win/a.err)"; fi
echo "  srlm.exe run --preset tiny under wine: $(( $(date +%s) - start )) s"
for m in sft m1 m2 m3 m2pos; do
    got=$(./srlm info $win/a/$m.ckpt 2>/dev/null | sed -n 's/^sha256 //p')
    want=$(sed -n "s/^$m //p" tests/run_tiny.digests)
    if [ -n "$got" ] && [ "$got" = "$want" ]; then ok "windows_digest_$m"; else bad "windows_digest_$m: got $got, recorded $want"; fi
done
[ -s $win/a/report.md ] && ok windows_report || bad windows_report
done_
