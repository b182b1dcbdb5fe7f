#!/bin/sh
# Bad input at the command line, as a user would type it (issue 23): one
# clear line on stderr, a non-zero exit below 128 (never a crash), nothing
# silent. Every input is made here. tests/README.md "Robustness" lists these cases,
# and each refusal is checked against its row there (exit status and the
# exact message, the temp directory written DIR), so the table cannot go stale.
set -u
SRLM=${SRLM:-./srlm}
README=${README:-tests/README.md}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
M0=tiny_models/m0.ckpt; TOK=tiny_models/tokenizer.tok

# refuses NAME PATTERN CMD...: exit 1, exactly one stderr line, containing PATTERN
refuses() {
    name=$1; pat=$2; shift 2
    "$@" >"$dir/out" 2>"$dir/err"
    rc=$?
    if [ $rc -eq 1 ] && [ "$(wc -l < "$dir/err")" -eq 1 ] && grep -q -- "$pat" "$dir/err"; then ok "$name"
    else bad "$name (exit $rc): $(head -c 300 "$dir/err")"; fi
    readme_row "$name" $rc
}

# readme_row NAME RC: README's bad-input row for NAME ("| `NAME` | input | RC | `message` |")
# shows this run's exit status and first stderr line (digest prefixes written HEX: the
# second tokenizer is trained on srlm's own source, which changes)
readme_row() {
    msg=$(head -n 1 "$dir/err" | sed "s#$dir#DIR#g; s/[0-9a-f]\{12\}\.\.\./HEX.../g")
    row=$(grep "^| \`$1\` |" "$README" 2>/dev/null | head -n 1)
    case "$row" in
        *"| $2 | \`$msg\` |") ok "readme_row_$1" ;;
        *) bad "readme_row_$1: README has '${row:-no row}'; the run gives: | $2 | \`$msg\` |" ;;
    esac
}

# defect 6: a full disk behind stdout is an error, not exit 0
printf '{"instruction": "spell cat"}\n{"instruction": "spell dog"}\n' > "$dir/p.jsonl"
$SRLM answer --model $M0 --tokenizer $TOK --input "$dir/p.jsonl" --max-new 4 > /dev/full 2>"$dir/err"; rc=$?
[ $rc -eq 1 ] && grep -q "writing to standard output failed" "$dir/err" && ok stdout_full_answer_stdout || bad "stdout_full_answer_stdout (exit $rc): $(cat "$dir/err")"
readme_row stdout_full_answer_stdout $rc
$SRLM info $M0 > /dev/full 2>"$dir/err"; rc=$?
[ $rc -eq 1 ] && grep -q "writing to standard output failed" "$dir/err" && ok stdout_full_info || bad "stdout_full_info (exit $rc)"
printf '{"instruction": "spell cat", "response": "cat"}\n' > "$dir/pair.jsonl"
$SRLM judge --model $M0 --tokenizer $TOK --template tiny_models/judge_template.txt --input "$dir/pair.jsonl" --samples 1 \
    --max-new 4 > /dev/full 2>"$dir/err"; rc=$?
[ $rc -eq 1 ] && grep -q "writing to standard output failed" "$dir/err" && ok stdout_full_judge || bad "stdout_full_judge (exit $rc): $(cat "$dir/err")"
$SRLM sample --model $M0 --tokenizer $TOK --prompt "the" --max-new 4 > /dev/full 2>"$dir/err"; rc=$?
[ $rc -eq 1 ] && grep -q "writing to standard output failed" "$dir/err" && ok stdout_full_sample || bad "stdout_full_sample (exit $rc): $(cat "$dir/err")"
$SRLM train --help > /dev/full 2>"$dir/err"; rc=$?
[ $rc -eq 1 ] && ok stdout_full_help || bad "stdout_full_help (exit $rc)"

# defect 10: one over-long prompt is named and marked, the others answered
long=$(i=0; while [ $i -lt 400 ]; do printf 'word%d ' $i; i=$((i + 1)); done)
printf '{"instruction": "spell cat"}\n{"instruction": "%s"}\n{"instruction": "spell dog"}\n' "$long" > "$dir/long.jsonl"
$SRLM answer --model $M0 --tokenizer $TOK --input "$dir/long.jsonl" --max-new 4 > "$dir/ans" 2>"$dir/err"; rc=$?
if [ $rc -eq 0 ] && [ "$(wc -l < "$dir/ans")" -eq 3 ] && grep -q "long.jsonl: record 2: prompt of .* tokens does not fit" "$dir/err" \
   && sed -n 2p "$dir/ans" | grep -q '"too_long": true' && ! sed -n 1p "$dir/ans" | grep -q too_long; then ok answer_long_prompt_marked
else bad "answer_long_prompt_marked (exit $rc): $(head -c 300 "$dir/err")"; fi

# defect 11: a batch larger than the old fixed array of 4096 rows (a model 8 wide with the
# shipped tokenizer: 4097 rows of M0 take minutes under the sanitizers)
printf 'some text to train on, some text to train on\n' > "$dir/t.txt"
$SRLM train --data "$dir/t.txt" --tokenizer $TOK --out "$dir/narrow.ckpt" --dim 8 --layers 1 --heads 2 --hidden 16 \
    --context 64 --steps 1 --batch 1 --seq 8 --log-every 0 >/dev/null 2>&1
i=0; while [ $i -lt 6 ]; do echo "{\"instruction\": \"say $i\", \"response\": \"ok $i\"}"; i=$((i + 1)); done > "$dir/sft.jsonl"
if $SRLM sft --model "$dir/narrow.ckpt" --tokenizer $TOK --data "$dir/sft.jsonl" --out "$dir/s.ckpt" --batch 4097 --steps 1 \
        --log-every 0 >/dev/null 2>"$dir/err"; then ok sft_batch_5000; else bad "sft_batch_5000: $(cat "$dir/err")"; fi

# defect 12: a tokenizer that is not the model's, with the same vocabulary size
[ -f "$dir/s.ckpt.tokenizer" ] && grep -q "^tokenizer sha256 $(sha256sum $TOK | cut -d' ' -f1)\$" "$dir/s.ckpt.tokenizer" \
    && ok tokenizer_recorded || bad tokenizer_recorded
cat srlm.c tokenizer.c > "$dir/corpus.txt"   # any corpus with enough pairs for 768 ids
$SRLM tokenizer train --input "$dir/corpus.txt" --vocab 768 --out "$dir/other.tok" 2>/dev/null
if [ "$(cmp -s "$dir/other.tok" $TOK; echo $?)" -eq 1 ]; then
    refuses tokenizer_mismatch_refused "not the tokenizer" \
        $SRLM answer --model "$dir/s.ckpt" --tokenizer "$dir/other.tok" --input "$dir/p.jsonl" --max-new 4
else bad "tokenizer_mismatch_refused: could not make a second 768-id tokenizer"; fi
cp $M0 "$dir/old.ckpt"   # no .tokenizer record beside it, as every checkpoint before the record existed
if $SRLM answer --model "$dir/old.ckpt" --tokenizer "$dir/other.tok" --input "$dir/p.jsonl" --max-new 2 >/dev/null 2>"$dir/err"; then
    ok older_checkpoint_without_record_loads; else bad "older_checkpoint_without_record_loads: $(cat "$dir/err")"; fi

# defect 13: model options with --init
refuses train_init_model_options "with --init the checkpoint's own config is used" \
    $SRLM train --init $M0 --tokenizer $TOK --data "$dir/t.txt" --out "$dir/x.ckpt" --dim 64 --layers 9 --steps 1

# defect 15, 16: a device and a directory given as files
refuses info_dev_zero "bad magic" $SRLM info /dev/zero
refuses info_directory "is a directory" $SRLM info "$dir"
refuses jsonl_directory "is a directory" $SRLM answer --model $M0 --tokenizer $TOK --input "$dir"

# defect 17: a repeated flag is named as repeated
refuses repeated_flag "option --steps is given twice" $SRLM train --data "$dir/t.txt" --out "$dir/x.ckpt" --steps 1 --steps 2

# defect 19: an HF error names its file once
mkdir -p "$dir/hf"
$SRLM export --model $M0 --tokenizer $TOK --format hf --out "$dir/hf" >/dev/null 2>&1
printf '\002\000\000\000\000\000\000\000{}' > "$dir/hf/model.safetensors"
refuses hf_error_names_file_once "model.safetensors: no tensor" $SRLM import --format hf --from "$dir/hf" --out "$dir/y.ckpt"
[ "$(grep -o 'model.safetensors' "$dir/err" | wc -l)" -eq 1 ] && ok hf_file_named_once || bad "hf_file_named_once: $(cat "$dir/err")"

# JSON a C string cannot hold (defect 14), at the command line
printf '{"instruction": "a\\u0000b"}\n' > "$dir/nul.jsonl"
refuses json_nul_escape_refused 'nul.jsonl: record 1: "instruction": a string holds \\u0000' \
    $SRLM answer --model $M0 --tokenizer $TOK --input "$dir/nul.jsonl"
printf '{"instruction": "a\377b"}\n' > "$dir/utf8.jsonl"
refuses json_bad_utf8_refused "not valid UTF-8" $SRLM answer --model $M0 --tokenizer $TOK --input "$dir/utf8.jsonl"

# damaged model files and importer inputs, as the audit made them
$SRLM train --data "$dir/t.txt" --out "$dir/small.ckpt" --dim 8 --layers 1 --heads 2 --hidden 16 --context 16 \
    --steps 1 --batch 1 --seq 8 --log-every 0 >/dev/null 2>&1
head -c 1000 "$dir/small.ckpt" > "$dir/cut.ckpt"
refuses ckpt_truncated "truncated" $SRLM info "$dir/cut.ckpt"
printf 'GGUF\003\000\000\000\001\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000' > "$dir/empty.gguf"
refuses gguf_no_keys "tensor count 1 cannot fit" $SRLM import --format gguf --from "$dir/empty.gguf" --out "$dir/g.ckpt"
printf 'GGML' > "$dir/short.gguf"
refuses gguf_too_short "short.gguf" $SRLM import --format gguf --from "$dir/short.gguf" --out "$dir/g.ckpt"
printf '\000\001\000\000' > "$dir/short.bin"
refuses llama2c_too_short "too short" $SRLM import --format llama2c --from "$dir/short.bin" --out "$dir/l.ckpt"
mkdir -p "$dir/hf7"
cp "$dir/hf/config.json" "$dir/hf7/config.json"
hdr='{"model.embed_tokens.weight": {"dtype": "F32", "shape": [0, 9007199254740992, 9007199254740992, 9007199254740992, 9007199254740992, 9007199254740992, 9007199254740992], "data_offsets": [0, 0]}}'
{ printf '\%03o' $(( ${#hdr} & 255 )) $(( ${#hdr} >> 8 )) 0 0 0 0 0 0 | xargs -0 printf; printf '%s' "$hdr"; } > "$dir/hf7/model.safetensors"
refuses hf_seven_dim_shape "model.safetensors" $SRLM import --format hf --from "$dir/hf7" --out "$dir/y.ckpt"
printf '{"hidden_size": 8' > "$dir/hf7/config.json"
refuses hf_config_not_json "hf7/config.json: not one well-formed" $SRLM import --format hf --from "$dir/hf7" --out "$dir/y.ckpt"

# data and template files
printf '{"instruction": "spell cat"}\n["not", "an", "object"]\n' > "$dir/arr.jsonl"
refuses jsonl_not_object "arr.jsonl:2: not a JSON object" $SRLM answer --model $M0 --tokenizer $TOK --input "$dir/arr.jsonl"
printf '{"prompt": "spell cat"}\n' > "$dir/noinst.jsonl"
refuses jsonl_missing_field 'has no "instruction"' $SRLM answer --model $M0 --tokenizer $TOK --input "$dir/noinst.jsonl"
printf 'Rate {instruction} / {answer}\n' > "$dir/tpl.txt"
refuses template_unknown_placeholder "unknown placeholder {answer}" $SRLM judge --model $M0 --tokenizer $TOK \
    --template "$dir/tpl.txt" --input "$dir/pair.jsonl"
printf 'Rate {instruction}\n' > "$dir/tpl1.txt"
refuses template_missing_response "{response} must appear exactly once" $SRLM judge --model $M0 --tokenizer $TOK \
    --template "$dir/tpl1.txt" --input "$dir/pair.jsonl"
head -c 100 $TOK > "$dir/cut.tok"
refuses tokenizer_truncated "cut.tok" $SRLM answer --model $M0 --tokenizer "$dir/cut.tok" --input "$dir/p.jsonl"

# arguments
refuses unknown_option "unknown argument '--stesp'" $SRLM train --data "$dir/t.txt" --out "$dir/x.ckpt" --stesp 1
refuses option_out_of_range "--batch" $SRLM sft --model $M0 --tokenizer $TOK --data "$dir/sft.jsonl" --out "$dir/s2.ckpt" --batch 0
refuses missing_file "cannot open" $SRLM info "$dir/nope.ckpt"

# defect 18: --help frees what it allocated (LeakSanitizer in make test-sanitize); here: exit 0
for c in train sample sft dpo judge answer eval-rm run vectors export import; do
    $SRLM $c --help >/dev/null 2>"$dir/err" || bad "help_$c: $(cat "$dir/err")"
done
ok help_exits_0
echo "#summary $pass $fail"
