#!/bin/sh
# The cross matrix (make test-cross; make test runs it too): one short
# command - train a small model with the shipped tokenizer, sample from it,
# DPO it on eight pairs - built every way below, run natively or under
# qemu-user, and every digest (both checkpoints' SHA-256 and the sampled
# bytes' SHA-256) checked against the one golden value in tests/cross.digests.
#   gcc, clang       -O0, -O2, -O3
#   gcc              -O3 -march=native, 256-bit and 512-bit vectors (the latter
#                    only where the CPU has AVX-512)
#   musl             musl-gcc -O2 -static
#   i686             i686-linux-gnu-gcc -O2 -msse2 -mfpmath=sse -static, qemu-i386
#   aarch64, armhf   -O2 -static, qemu-aarch64, qemu-arm
#   s390x            -O2 -fexcess-precision=fast -static, qemu-s390x (big-endian)
# And no silent x87/double build: i686 without its flags and s390x without
# its flag must stop at tensor.h's #error, which names the missing flags.
# Cross compilers, musl-gcc and qemu come from apt (see .ci/run); a missing
# tool is a SKIP line here and a failure in CI (CI=true). Two builds at a time.
set -u
dir=build/cross
rm -rf $dir; mkdir -p $dir
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
missing() {
    if [ "${CI:-}" = true ]; then bad "$1: $2 is not installed (.ci/run installs it)"
    else echo "SKIP: $1: $2 not installed"; fi
}
golden=tests/cross.digests
FLAGS="-std=c99 -pedantic -Wall -Wextra -ffp-contract=off"
TOK=tiny_models/tokenizer.tok

# the inputs: a text and eight preference pairs
i=0; while [ $i -lt 200 ]; do echo "a tiny model learns: $i plus $((i % 7)) is $((i + i % 7)). the word cat reversed is tac."; i=$((i + 1)); done > $dir/text.txt
i=0; while [ $i -lt 8 ]; do
    printf '{"prompt": "What is %d plus %d?", "chosen": "%d plus %d is %d.", "rejected": "It is %d."}\n' \
        $i $((i % 7)) $i $((i % 7)) $((i + i % 7)) $((i * 3 + 1))
    i=$((i + 1))
done > $dir/pairs.jsonl

# one NAME CC "FLAGS" [RUNNER]: build, run the command, write NAME.digests (or NAME.fail)
one() {
    name=$1; cc=$2; flags=$3; runner=${4:-}; d=$dir/$name
    mkdir -p $d
    if ! $cc $FLAGS $flags -o $d/srlm srlm.c tensor.c tokenizer.c -lm > $d/build.log 2>&1 || [ -s $d/build.log ]; then
        echo "the build failed or warned: $(head -3 $d/build.log)" > $d.fail; return
    fi
    s="$runner $d/srlm"
    if ! $s train --data $dir/text.txt --tokenizer $TOK --dim 32 --layers 2 --heads 4 --kv-heads 2 --hidden 96 \
            --context 64 --steps 8 --batch 4 --seq 32 --dropout 0.1 --log-every 0 --out $d/train.ckpt > $d/run.log 2>&1 \
       || ! $s sample --model $d/train.ckpt --tokenizer $TOK --prompt "the word" --max-new 48 --seed 3 --n 2 > $d/sample.txt 2>> $d/run.log \
       || ! $s dpo --model $d/train.ckpt --tokenizer $TOK --pairs $dir/pairs.jsonl --out $d/dpo.ckpt --steps 4 --batch 4 >> $d/run.log 2>&1; then
        echo "the command failed: $(tail -2 $d/run.log)" > $d.fail; return
    fi
    { echo "train $(sha256sum < $d/train.ckpt | cut -d' ' -f1)"
      echo "sample $(sha256sum < $d/sample.txt | cut -d' ' -f1)"
      echo "dpo $(sha256sum < $d/dpo.ckpt | cut -d' ' -f1)"; } > $d.digests
}

# the matrix: NAME|CC|FLAGS|RUNNER|TOOLS THAT MUST EXIST
native512=""
grep -q avx512f /proc/cpuinfo 2>/dev/null && native512=yes
cat > $dir/matrix <<EOF
gcc-O0|gcc|-O0||gcc
gcc-O2|gcc|-O2||gcc
gcc-O3|gcc|-O3||gcc
clang-O0|clang|-O0||clang
clang-O2|clang|-O2||clang
clang-O3|clang|-O3||clang
gcc-native-256|gcc|-O3 -march=native -mprefer-vector-width=256||gcc
gcc-native-512|gcc|-O3 -march=native -mprefer-vector-width=512||gcc ${native512:-avx512f-cpu}
musl-static|musl-gcc|-O2 -static||musl-gcc
i686-sse2|i686-linux-gnu-gcc|-O2 -msse2 -mfpmath=sse -static|qemu-i386|i686-linux-gnu-gcc qemu-i386
aarch64|aarch64-linux-gnu-gcc|-O2 -static|qemu-aarch64|aarch64-linux-gnu-gcc qemu-aarch64
armhf|arm-linux-gnueabihf-gcc|-O2 -static|qemu-arm|arm-linux-gnueabihf-gcc qemu-arm
s390x|s390x-linux-gnu-gcc|-O2 -fexcess-precision=fast -static|qemu-s390x|s390x-linux-gnu-gcc qemu-s390x
EOF

start=$(date +%s)
names=""
running=0
while IFS='|' read -r name cc flags runner tools; do
    lack=""
    for t in $tools; do
        if [ "$t" = avx512f-cpu ]; then lack="$lack (this CPU has no AVX-512)"
        elif ! command -v $t > /dev/null 2>&1; then lack="$lack $t"; fi
    done
    if [ -n "$lack" ]; then
        case $lack in
            *AVX-512*) echo "SKIP: $name: this CPU has no AVX-512" ;;  # hardware, not a tool
            *) missing "$name" "$lack" ;;
        esac
        continue
    fi
    names="$names $name"
    one "$name" "$cc" "$flags" "$runner" < /dev/null &
    running=$((running + 1))
    if [ $running -eq 2 ]; then wait; running=0; fi
done < $dir/matrix
wait
echo "  matrix: $(( $(date +%s) - start )) s"

for name in $names; do
    if [ -f $dir/$name.fail ]; then bad "cross_$name: $(cat $dir/$name.fail)"; continue; fi
    same=1
    for k in train sample dpo; do
        got=$(sed -n "s/^$k //p" $dir/$name.digests); want=$(sed -n "s/^$k //p" $golden)
        if [ -z "$want" ] || [ "$got" != "$want" ]; then same=0; echo "  $name: $k $got, golden ${want:-missing}"; fi
    done
    [ $same -eq 1 ] && ok "cross_$name" || bad "cross_$name: digests differ from $golden"
done

# no silent other bits: without its flags a wide-evaluating target must not compile
refuse() {
    name=$1; cc=$2; flags=$3; want=$4
    if ! command -v $cc > /dev/null 2>&1; then missing "$name" "$cc"; return; fi
    if $cc $FLAGS $flags -fsyntax-only tensor.c > $dir/$name.log 2>&1; then bad "$name: compiled without $want"
    elif grep -q -- "#error.*$want" $dir/$name.log; then ok "$name"
    else bad "$name: $(head -2 $dir/$name.log)"; fi
}
refuse i686_x87_refused i686-linux-gnu-gcc "-O2" "-msse2 -mfpmath=sse"
refuse s390x_double_refused s390x-linux-gnu-gcc "-O2" "-fexcess-precision=fast"
echo "#summary $pass $fail"
[ $fail -eq 0 ]
