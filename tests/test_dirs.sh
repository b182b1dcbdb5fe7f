#!/bin/sh
# Directories are made in C (srlm.c make_dirs), never through a shell:
#  - srlm run --dir with a quote, spaces and shell syntax in it creates it,
#    parents too (a shell's "mkdir -p '...'" broke on the quote);
#  - srlm export --out creates missing parent directories;
#  - a file where a directory should be gives one line naming it.
set -u
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
base=build/dirstest
rm -rf $base; mkdir -p $base
nasty="$base/it's \"a\" dir; touch PWNED \$(touch PWNED)/run 1"
# the inputs do not exist: the run makes its directory and its lock, then stops at the first input
./srlm run --dir "$nasty" --m0 $base/none.ckpt --tokenizer $base/none.tok --template $base/none.txt --ift $base/none \
    --eft $base/none --test $base/none --ranked $base/none --grader "tiny_models/world grade" >/dev/null 2>$base/run.err
if [ -d "$nasty" ] && [ -f "$nasty/run.lock" ] && grep -q 'none.ckpt: cannot open' $base/run.err && [ ! -e PWNED ]; then
    ok run_dir_with_quote_and_shell_syntax
else
    bad "run_dir_with_quote_and_shell_syntax: $(cat $base/run.err)"
fi
rm -f PWNED
./srlm run --dir "$base/g" --m0 x --tokenizer x --template x --ift x --eft x --test x --ranked x --grader 'a "b' >/dev/null 2>$base/g.err
[ $? -eq 1 ] && [ "$(wc -l < $base/g.err)" -eq 1 ] && grep -q 'not closed' $base/g.err && [ ! -e "$base/g" ] \
    && ok run_refuses_unbalanced_grader_quote || bad "run_refuses_unbalanced_grader_quote: $(cat $base/g.err)"

i=0; while [ $i -lt 20 ]; do echo "the cat sat on the mat $i"; i=$((i + 1)); done > $base/text.txt
./srlm train --data $base/text.txt --dim 16 --layers 1 --heads 2 --hidden 24 --context 32 --steps 1 --batch 2 --seq 16 \
    --log-every 0 --out $base/m.ckpt >/dev/null 2>&1
if ./srlm export --model $base/m.ckpt --format llama2c --out "$base/exp/a b/c" >/dev/null 2>$base/exp.err \
   && [ -s "$base/exp/a b/c/model.bin" ]; then ok export_creates_parents; else bad "export_creates_parents: $(cat $base/exp.err)"; fi
: > $base/file
./srlm export --model $base/m.ckpt --format llama2c --out $base/file/sub >/dev/null 2>$base/file.err
[ $? -eq 1 ] && [ "$(wc -l < $base/file.err)" -eq 1 ] && grep -q "cannot create directory $base/file: a file of that name exists" $base/file.err \
    && ok file_in_the_way || bad "file_in_the_way: $(cat $base/file.err)"
echo "#summary $pass $fail"
