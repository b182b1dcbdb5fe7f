#!/bin/sh
# CLI-level refusals: damaged checkpoints and bad arguments must give one
# line on stderr naming the file and the fault, and a non-zero exit; never a
# crash (exit >= 128) and never a silent load.
set -u
SRLM=./srlm
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

i=0; while [ $i -lt 40 ]; do echo "the cat sat on the mat and the dog sat on the log $i"; i=$((i + 1)); done > "$dir/text.txt"
if $SRLM train --data "$dir/text.txt" --dim 16 --layers 1 --heads 2 --hidden 24 --context 32 \
        --steps 3 --batch 2 --seq 16 --log-every 0 --out "$dir/ok.ckpt" >/dev/null 2>"$dir/err"; then
    ok train_tiny
else
    bad train_tiny; cat "$dir/err"
fi
size=$(wc -c < "$dir/ok.ckpt")

# srlm train --init records the checkpoint it started from (name and SHA-256) in the provenance
if $SRLM train --init "$dir/ok.ckpt" --data "$dir/text.txt" --steps 1 --batch 2 --seq 16 --log-every 0 \
        --out "$dir/cont.ckpt" >/dev/null 2>"$dir/err" && want=$($SRLM info "$dir/ok.ckpt" | sed -n 's/^sha256 //p') \
        && $SRLM info "$dir/cont.ckpt" | grep -q "^meta .* init=ok.ckpt sha256=$want\$"; then
    ok train_init_in_provenance
else
    bad "train_init_in_provenance: $($SRLM info "$dir/cont.ckpt" 2>&1 | grep '^meta')"
fi

# expect_refusal NAME FILE PATTERN: srlm info FILE fails cleanly with PATTERN in one line
expect_refusal() {
    $SRLM info "$2" >/dev/null 2>"$dir/err"
    rc=$?
    lines=$(wc -l < "$dir/err")
    if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$lines" -eq 1 ] && grep -q -- "$2" "$dir/err" && grep -q -- "$3" "$dir/err"; then
        ok "$1"
    else
        bad "$1 (exit $rc, $lines lines): $(cat "$dir/err")"
    fi
}

$SRLM info "$dir/ok.ckpt" > "$dir/info" 2>&1 && grep -q '^sha256 [0-9a-f]\{64\}$' "$dir/info" && ok info_good || bad info_good
# the digest srlm prints is the SHA-256 of the file's bytes
if command -v sha256sum >/dev/null; then
    want=$(sha256sum "$dir/ok.ckpt" | cut -d' ' -f1)
    grep -q "sha256 $want" "$dir/info" && ok info_digest_matches_sha256sum || bad info_digest_matches_sha256sum
fi

: > "$dir/empty.ckpt"; expect_refusal empty "$dir/empty.ckpt" "empty"
for cut in 5 20 52 60 100 $((size / 2)) $((size - 1)); do
    head -c $cut "$dir/ok.ckpt" > "$dir/cut$cut.ckpt"
    expect_refusal "truncated_at_$cut" "$dir/cut$cut.ckpt" "truncated\|magic"
done
{ printf 'XRLMCKPT'; tail -c +9 "$dir/ok.ckpt"; } > "$dir/magic.ckpt"; expect_refusal wrong_magic "$dir/magic.ckpt" "magic"
{ head -c 8 "$dir/ok.ckpt"; printf '\011\000\000\000'; tail -c +13 "$dir/ok.ckpt"; } > "$dir/ver.ckpt"
expect_refusal future_version "$dir/ver.ckpt" "version 9"
cp "$dir/ok.ckpt" "$dir/flip.ckpt"
printf '\377' | dd of="$dir/flip.ckpt" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
expect_refusal flipped_byte "$dir/flip.ckpt" "checksum"
# a NaN weight with a correct checksum: patch the first parameter, re-sign
body=$((size - 32))
{ head -c $((body - 4)) "$dir/ok.ckpt"; printf '\000\000\300\177'; } > "$dir/nan.body"
hex=$(sha256sum "$dir/nan.body" | cut -d' ' -f1)
{ cat "$dir/nan.body"; for b in $(echo "$hex" | sed 's/../& /g'); do printf "\\$(printf '%03o' $((0x$b)))"; done; } > "$dir/nan.ckpt"
expect_refusal nan_weight "$dir/nan.ckpt" "non-finite"
expect_refusal missing_file "$dir/nope.ckpt" "cannot open"

# bad arguments: one clear line, non-zero exit
$SRLM train --data "$dir/text.txt" --out "$dir/x.ckpt" --stesp 3 >/dev/null 2>"$dir/err"
[ $? -eq 1 ] && grep -q "unknown argument '--stesp'" "$dir/err" && ok unknown_option || bad "unknown_option: $(cat "$dir/err")"
$SRLM train --data "$dir/text.txt" --out "$dir/x.ckpt" --dim 10 --heads 3 >/dev/null 2>"$dir/err"
[ $? -eq 1 ] && grep -q "n_heads must divide dim" "$dir/err" && ok bad_config || bad "bad_config: $(cat "$dir/err")"
$SRLM sample --model "$dir/flip.ckpt" >/dev/null 2>"$dir/err"
[ $? -eq 1 ] && grep -q "checksum" "$dir/err" && ok sample_refuses_bad_checkpoint || bad sample_refuses_bad_checkpoint
for o in "--max-similarity 2" "--min-margin -1" "--min-chosen 6"; do  # the run's AIFT knobs are range-checked
    $SRLM run --dir "$dir/r" $o >/dev/null 2>"$dir/err"
    [ $? -eq 1 ] && [ "$(wc -l < "$dir/err")" -eq 1 ] && grep -q "option ${o% *} must be a number" "$dir/err" \
        && ok "run_range ${o% *}" || bad "run_range ${o% *}: $(cat "$dir/err")"
done
$SRLM frobnicate >/dev/null 2>&1; [ $? -eq 1 ] && ok unknown_command || bad unknown_command
for c in train sample info tokenizer; do
    $SRLM $c --help >/dev/null 2>&1 && ok "help_$c" || bad "help_$c"
done
echo "#summary $pass $fail"
