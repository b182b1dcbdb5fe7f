#!/bin/sh
# Make the seed corpus of the fuzz targets (tests/fuzz/corpus/NAME/) from
# the shipped files, a tiny model srlm trains and exports here, and the files
# of a finished run directory:
#
#   sh tests/fuzz/make_corpus.sh RUN_DIR
#
# RUN_DIR: a finished `srlm run` directory with the world data it was made
# from in ../data: build/runtest/a after `sh tests/test_run.sh` (the --small
# world, the reduced preset, seed 3; the committed corpus). Run from the top
# directory after `make`. The seeds are kept small (a 4-wide, one-layer
# model; run files cut to two prompts), so the committed corpus stays small
# and replays fast; the fuzzers grow their own corpora from it.
set -eu
run=${1:?usage: sh tests/fuzz/make_corpus.sh RUN_DIR (a finished srlm run directory)}
[ -f "$run/report.md" ] || { echo "$run: not a finished run directory (no report.md)" >&2; exit 1; }
[ -x ./srlm ] || { echo "./srlm missing: run make first" >&2; exit 1; }
out=tests/fuzz/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf $out
for t in ckpt tokfile tokround jsonl runjson template score hf llama2c gguf rundir; do mkdir -p $out/$t; done

# prefix BYTE FILE OUT: OUT = the mode byte (octal escape) and FILE's bytes
prefix() { { printf "$1"; cat "$2"; } > "$3"; }

# the world data beside the run directory (test_run.sh: build/runtest/data, the --small world)
data=$(dirname "$run")/data
[ -f $data/ift.jsonl ] || { echo "$data/ift.jsonl missing: the run's data directory must sit beside it" >&2; exit 1; }

# a tiny byte-level model (vocab 264, dim 4, one layer) and a tiny tokenizer
head -c 3000 $data/corpus.txt > $tmp/text
./srlm train --data $tmp/text --out $tmp/tiny.ckpt --dim 4 --layers 1 --heads 1 --hidden 8 --context 8 \
    --steps 1 --batch 1 --seq 8 --seed 1 --log-every 0 > /dev/null 2>&1
./srlm train --data $tmp/text --out $tmp/tied.ckpt --dim 4 --layers 1 --heads 2 --kv-heads 1 --hidden 8 --context 8 \
    --tied 1 --steps 1 --batch 1 --seq 8 --seed 2 --log-every 0 > /dev/null 2>&1
./srlm tokenizer train --input $tmp/text --merges 24 --out $tmp/small.tok > /dev/null 2>&1
./srlm tokenizer train --input $tmp/text --merges 12 --no-presplit --out $tmp/nopre.tok > /dev/null 2>&1

# ckpt, tokfile: mode byte 1 = the harness fixes the checksum, 0 = as is
prefix '\001' $tmp/tiny.ckpt $out/ckpt/tiny_fix
prefix '\001' $tmp/tied.ckpt $out/ckpt/tied_fix
prefix '\001' tiny_models/tokenizer.tok $out/tokfile/shipped_fix
prefix '\000' tiny_models/tokenizer.tok $out/tokfile/shipped_raw
prefix '\001' $tmp/small.tok $out/tokfile/small_fix
prefix '\001' $tmp/nopre.tok $out/tokfile/nopre_fix

# tokround: text of every kind the tokenizer meets
cp tiny_models/judge_template.txt $out/tokround/template
head -c 600 $tmp/text > $out/tokround/corpus
printf 'caf\303\251 \342\200\224 na\303\257ve \360\237\230\200 <|eot|> \377\376 12345 tab\there\n\n  x' > $out/tokround/mixed

# jsonl: data records of each file the commands read
for f in ift eft_train test_prompts ranked_eval; do head -n 2 $data/$f.jsonl | head -c 4000 > $out/jsonl/$f; done
head -n 2 $run/aift1.jsonl > $out/jsonl/pairs
printf '{"instruction": "a\\u00e9\\ud83d\\ude00\\n\\t\\"q\\"", "response": "ok", "n": [1, -2.5e3, true, null, {"k": []}]}\n\n{}\n' > $out/jsonl/escapes

# runjson: the JSON files the report reads back
cp $run/rm_m1.json $out/runjson/rm
cp $run/aift1.stats.json $out/runjson/stats

cp tiny_models/judge_template.txt $out/template/shipped
printf 'Q: {instruction}\nA: {response}\nScore 0-5.' > $out/template/short

printf 'The answer is relevant and correct.\nScore: 4' > $out/score/plain
printf 'score = 3.5/5 ... Final score: 2 out of 5' > $out/score/denominators
printf 'Score \342\200\234-1\342\200\235, score: 7, SCORE\357\274\2325.0' > $out/score/invalid

# importers: the tiny models exported
for m in tiny tied; do
    ./srlm export --model $tmp/$m.ckpt --format hf --out $tmp/hf_$m > /dev/null
    { cat $tmp/hf_$m/config.json; printf '\000'; cat $tmp/hf_$m/model.safetensors; } > $out/hf/$m
    ./srlm export --model $tmp/$m.ckpt --format llama2c --out $tmp/l2c_$m > /dev/null
    cp $tmp/l2c_$m/model.bin $out/llama2c/$m
    ./srlm export --model $tmp/$m.ckpt --format gguf --out $tmp/gg_$m > /dev/null
    cp $tmp/gg_$m/model.gguf $out/gguf/$m
done

# rundir: the run's files in the harness's order (tests/fuzz/readers.c,
# RUNDIR_FILES), NUL-separated; the per-prompt files cut to 1 prompt
# (best of 8: 8 samples) with outputs.sha256 recomputed for the cut files,
# and once with the run's own outputs.sha256 (every digest then mismatches)
files="rm_sft.json rm_m1.json rm_m2.json rm_m3.json rm_m2pos.json aift1.stats.json aift2.stats.json
answers_sft.jsonl grades_sft.jsonl answers_m1.jsonl grades_m1.jsonl answers_m2.jsonl grades_m2.jsonl
answers_m3.jsonl grades_m3.jsonl answers_m2pos.jsonl grades_m2pos.jsonl bestof_m1.jsonl bestof_grades_m1.jsonl
audit_aift1.jsonl audit_aift2.jsonl m2.dpo.jsonl m3.dpo.jsonl aift1.candidates.jsonl"
mkdir $tmp/cut
for f in $files; do
    case $f in
        answers_*|grades_*) head -n 1 $run/$f ;;
        bestof_*) head -n 8 $run/$f ;;
        audit_*|m2.dpo.jsonl|m3.dpo.jsonl) head -n 4 $run/$f ;;
        aift1.candidates.jsonl) head -n 1 $run/$f ;;
        *) cat $run/$f ;;
    esac > $tmp/cut/$f
done
(cd $tmp/cut && for f in $files; do sha256sum $f; done) > $tmp/cut/outputs.sha256
pack() {
    cat "$1"
    for f in $files; do printf '\000'; cat $tmp/cut/$f; done
}
pack $tmp/cut/outputs.sha256 > $out/rundir/cut
pack $run/outputs.sha256 > $out/rundir/cut_old_digests

du -sk $out | sed 's/\t.*/ KB in tests\/fuzz\/corpus/'
