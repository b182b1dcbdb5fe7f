#!/bin/sh
# Bit reproducibility across compilers and optimisation levels: the same
# short training run built with gcc -O0, gcc -O3 -march=native (also with
# -mprefer-vector-width=512 where gcc takes it) and clang -O2
# must produce checkpoints with the same SHA-256.
set -u
dir=build/repro
mkdir -p "$dir"
pass=0; fail=0
FLAGS="-std=c99 -pedantic -Wall -Wextra -ffp-contract=off"
SRC="srlm.c tensor.c tokenizer.c"
i=0; while [ $i -lt 200 ]; do echo "a tiny model learns: $i plus $((i % 7)) is $((i + i % 7)). the word cat reversed is tac."; i=$((i + 1)); done > "$dir/text.txt"
builds="gcc:-O0 gcc:-O3_-march=native"
# the Makefile's own build on AVX-512 machines: 512-bit vectors
if gcc -march=native -mprefer-vector-width=512 -x c -c -o /dev/null /dev/null >/dev/null 2>&1; then
    builds="$builds gcc:-O3_-march=native_-mprefer-vector-width=512"
fi
if command -v clang >/dev/null 2>&1; then builds="$builds clang:-O2"; else echo "SKIP: clang not installed, clang build not compared"; fi
first=""
for b in $builds; do
    cc=${b%%:*}; opt=$(echo "${b#*:}" | tr '_' ' ')
    name=$(echo "$b" | tr ':_ =' '----')
    if ! $cc $FLAGS $opt -o "$dir/srlm-$name" $SRC -lm 2>"$dir/build-$name.log"; then
        echo "FAIL build $cc $opt"; cat "$dir/build-$name.log"; fail=$((fail + 1)); continue
    fi
    "$dir/srlm-$name" train --data "$dir/text.txt" --dim 32 --layers 2 --heads 4 --kv-heads 2 --hidden 64 \
        --context 64 --steps 8 --batch 4 --seq 32 --dropout 0.1 --log-every 0 --out "$dir/$name.ckpt" >/dev/null 2>&1
    "$dir/srlm-$name" sample --model "$dir/$name.ckpt" --prompt "the word" --max-new 40 --seed 3 > "$dir/$name.sample" 2>&1
    digest=$("$dir/srlm-$name" info "$dir/$name.ckpt" | sed -n 's/^sha256 //p')
    sdig=$(cksum < "$dir/$name.sample")
    echo "  $cc $opt: checkpoint sha256 $digest"
    if [ -z "$first" ]; then first="$digest"; firsts="$sdig"; fi
    if [ -n "$digest" ] && [ "$digest" = "$first" ] && [ "$sdig" = "$firsts" ]; then
        pass=$((pass + 1)); echo "ok   repro_$name"
    else
        fail=$((fail + 1)); echo "FAIL repro_$name (checkpoint or sample differs from the first build)"
    fi
done
echo "#summary $pass $fail"
