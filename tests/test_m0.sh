#!/bin/sh
# The shipped world, tokenizer and M0:
#  - the generator reproduces the committed MANIFEST (every file's SHA-256) from the seed;
#  - tokenizer and M0 load and match tiny_models/DIGESTS;
#  - M0 knows the world: its greedy continuations of corpus-style prefixes of
#    the canonical answers to the 256 held-out test tasks (the question and
#    'A: The word "', as the corpus's Q/A pages) are graded by the world's
#    checker. A word of the list picked at random fits both constraints of a
#    test task about 2% of the time; pretraining worked when more than a
#    quarter of M0's words do (the shipped M0: 144 of 256).
set -u
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
dir=build/m0test
rm -rf $dir; mkdir -p $dir/data
tiny_models/world gen $(make -s --no-print-directory print-world-args) --out $dir/data > /dev/null
cmp -s tiny_models/MANIFEST $dir/data/MANIFEST && ok world_data_matches_manifest || bad world_data_matches_manifest
for f in tokenizer.tok m0.ckpt; do
    want=$(sed -n "s/^$f //p" tiny_models/DIGESTS)
    got=$(sha256sum tiny_models/$f 2>/dev/null | cut -d' ' -f1)
    [ -n "$want" ] && [ "$want" = "$got" ] && ok "digest_$f" || bad "digest_$f: recorded $want, file $got"
done
./srlm info tiny_models/m0.ckpt > $dir/info 2>&1 && ok m0_loads || bad "m0_loads: $(cat $dir/info)"
./srlm tokenizer encode --tokenizer tiny_models/tokenizer.tok --input tiny_models/judge_template.txt > /dev/null 2>&1 \
    && ok tokenizer_loads || bad tokenizer_loads
sed 's/}$/, "response": ""}/' $dir/data/test_prompts.jsonl > $dir/tasks.jsonl
tiny_models/world prefixes $dir/tasks.jsonl $dir/prefixes.jsonl
./srlm answer --model tiny_models/m0.ckpt --tokenizer tiny_models/tokenizer.tok --input $dir/prefixes.jsonl \
    --raw prefix --max-new 24 --out $dir/continued.jsonl
tiny_models/world grade $dir/continued.jsonl $dir/grades.jsonl
n=$(wc -l < $dir/grades.jsonl)
correct=$(grep -c '"criteria": "[^"]*correct' $dir/grades.jsonl)
mean=$(sed 's/.*"grade": \([0-9]\).*/\1/' $dir/grades.jsonl | awk '{ s += $1 } END { if (NR) printf "%.2f", s / NR }')
echo "  M0 continuations: $correct of $n correct, mean grade $mean"
[ "$n" -gt 100 ] && [ $((correct * 4)) -gt "$n" ] && ok m0_knows_the_words || bad "m0_knows_the_words: $correct of $n"
echo "#summary $pass $fail"
