#!/bin/sh
# Runs every test binary and shell test given on the command line (plus
# tests/test_*.sh, or the list in SRLM_SHELL_TESTS when it is set), sums their "#summary P F" lines and ends with the one
# line "N passed, M failed". A test that crashes, times out or prints no
# summary counts as one failure. Exit status is non-zero on any failure.
passed=0
failed=0
out=$(mktemp)
run_one() {
    name=$1; shift
    start=$(date +%s)
    "$@" >"$out" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    grep -v '^#summary' "$out"
    summary=$(grep '^#summary' "$out" | tail -n 1)
    if [ -z "$summary" ]; then
        echo "FAIL $name: exited $rc without a summary"
        failed=$((failed + 1))
        return
    fi
    p=$(echo "$summary" | cut -d' ' -f2)
    f=$(echo "$summary" | cut -d' ' -f3)
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $name: exit status $rc"
        failed=$((failed + 1))
    fi
    echo "== $name: $p passed, $f failed (${secs}s)"
}
for t in "$@"; do
    run_one "$t" "./$t"
done
for s in ${SRLM_SHELL_TESTS-tests/test_*.sh}; do
    [ -f "$s" ] && run_one "$s" sh "$s"
done
rm -f "$out"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
