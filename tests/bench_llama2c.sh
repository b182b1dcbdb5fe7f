#!/bin/sh
# Decoding beside llama2.c (issue 21's yardstick; a benchmark, never a test):
# Karpathy's llama2.c run.c, built -O3 and -Ofast -march=native, runs srlm's
# own llama2.c export of the bench's two random models (m0's shape and dim
# 288), greedy, 300 steps; srlm's one-sequence decode rows run on the same
# weights, in turn with run.c, three rounds, so both see the same machine.
# srlm does not ship run.c: give its path.
#   LLAMA2C_RUN_C=/path/to/llama2.c/run.c make bench-llama2c
# run.c reports wall-clock tokens/s over its steps after the first; srlm's
# rows are CPU time over the generated tokens (make bench's decode rows).
set -u
run_c=${LLAMA2C_RUN_C:-}
[ -n "$run_c" ] && [ -f "$run_c" ] || { echo "bench_llama2c: set LLAMA2C_RUN_C to llama2.c's run.c" >&2; exit 2; }
dir=build/bench_llama2c
rm -rf $dir; mkdir -p $dir
cc -Ofast -march=native -o $dir/run_ofast "$run_c" -lm || exit 1
cc -O3 -o $dir/run_o3 "$run_c" -lm || exit 1
./build/bench_model --decode $dir > $dir/srlm.txt || exit 1
for m in d128 d288; do
    ./srlm export --model $dir/$m.ckpt --format llama2c --out $dir/$m --tokenizer tiny_models/tokenizer.tok > /dev/null || exit 1
done
run() {  # BINARY MODEL: run.c's tokens/s
    ./$dir/$1 $dir/$2/model.bin -z $dir/$2/tokenizer.bin -t 0 -n 300 -i 'Q: Name a word' 2>&1 >/dev/null |
        sed -n 's/.*achieved tok\/s: \([0-9]*\).*/\1/p'
}
echo "one sequence, greedy, 300 steps, tokens/s (three rounds, in turn)"
printf '%-34s %8s %8s %8s\n' "" "round 1" "round 2" "round 3"
srlm_m0=""; srlm_288=""; o3_m0=""; o3_288=""; of_m0=""; of_288=""
for r in 1 2 3; do
    ./build/bench_model --decode $dir > $dir/srlm.txt || exit 1
    srlm_m0="$srlm_m0 $(sed -n 's/^| decode, 1 sequence (m0) *| [^|]*| *\([0-9]*\) .*/\1/p' $dir/srlm.txt)"
    of_m0="$of_m0 $(run run_ofast d128)"; o3_m0="$o3_m0 $(run run_o3 d128)"
    srlm_288="$srlm_288 $(sed -n 's/^| decode, 1 sequence (dim 288) *| [^|]*| *\([0-9]*\) .*/\1/p' $dir/srlm.txt)"
    of_288="$of_288 $(run run_ofast d288)"; o3_288="$o3_288 $(run run_o3 d288)"
done
line() { printf '%-34s' "$1"; shift; for v in "$@"; do printf ' %8s' "$v"; done; echo; }
line "srlm, m0's shape (dim 128 L4)" $srlm_m0
line "run.c -Ofast -march=native, m0" $of_m0
line "run.c -O3, m0" $o3_m0
line "srlm, dim 288 L6" $srlm_288
line "run.c -Ofast -march=native, 288" $of_288
line "run.c -O3, dim 288" $o3_288
