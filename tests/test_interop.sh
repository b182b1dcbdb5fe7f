#!/bin/sh
# srlm's exports in the real consumers (tests/README.md "Interoperability"):
#  - tests/interop_tokenizers.mjs: tokenizer.json in Hugging Face's Rust
#    tokenizers and tokenizers.js, the chat template in @huggingface/jinja;
#  - tests/interop_llama.mjs: the GGUF in llama.cpp through node-llama-cpp
#    (tokens, greedy generation, a chat turn through its chat session).
# The model is M0 after 40 SFT steps on a small world's IFT (it learns to end
# replies with <|eot|>). The texts are the small world's corpus opening, IFT
# and EFT; INTEROP_FULL=1 uses the whole shipped corpus, IFT and EFT files
# (the full proof of the pre-split rule; minutes). Needs node and the packages
# of tests/install_consumers.sh; without them a dev machine prints SKIP, CI
# (SRLM_CI=1, set by .ci/run) fails.
set -u
SRLM=${SRLM:-./srlm}
mods=build/consumers/node_modules
missing() {
    if [ "${SRLM_CI:-0}" = 1 ]; then echo "FAIL test_interop: $1"; echo "#summary 0 1"; exit 1; fi
    echo "SKIP: $1"; echo "#summary 0 0"; exit 0
}
command -v node >/dev/null 2>&1 || missing "node is not installed"
for p in tokenizers @huggingface/tokenizers @huggingface/jinja node-llama-cpp; do
    [ -d $mods/$p ] || missing "$p is not installed (sh tests/install_consumers.sh)"
done
d=build/interop
rm -rf $d; mkdir -p $d/data
fail() { echo "FAIL test_interop: $1"; echo "#summary 0 1"; exit 1; }
tok=tiny_models/tokenizer.tok
if [ "${INTEROP_FULL:-0}" = 1 ]; then
    tiny_models/world gen $(make -s --no-print-directory print-world-args) --out $d/data > /dev/null || fail "world gen"
    cmp -s tiny_models/MANIFEST $d/data/MANIFEST || fail "the world's data does not match tiny_models/MANIFEST"
    texts="$d/data/corpus.txt $d/data/ift.jsonl $d/data/eft_train.jsonl $d/data/eft_eval.jsonl $d/data/test_prompts.jsonl $d/data/ranked_eval.jsonl"
else
    tiny_models/world gen --seed 1 --small --families starts,ends,contains,at --out $d/data > /dev/null || fail "world gen"
    head -c 200000 $d/data/corpus.txt > $d/corpus_head.txt
    texts="$d/corpus_head.txt $d/data/ift.jsonl $d/data/eft_train.jsonl"
fi
$SRLM sft --model tiny_models/m0.ckpt --tokenizer $tok --data $d/data/ift.jsonl --out $d/chat.ckpt \
    --steps 40 --batch 8 --lr 1e-3 --warmup 5 --log-every 0 > /dev/null 2>&1 || fail "srlm sft"
$SRLM export --model $d/chat.ckpt --format hf --out $d/hf --tokenizer $tok > /dev/null || fail "export hf"
$SRLM export --model $d/chat.ckpt --format gguf --out $d/gguf --tokenizer $tok > /dev/null || fail "export gguf"
# each consumer in one node process; their "#summary P F" lines are summed
pass=0; failn=0
for script in "interop_tokenizers.mjs $SRLM $d/hf $tok $mods $texts" \
              "interop_llama.mjs $SRLM $d/gguf/model.gguf $d/chat.ckpt $tok $mods $texts"; do
    set -- $script
    name=$1; shift
    node tests/$name "$@" > $d/out.txt 2>&1
    rc=$?
    grep -v '^#summary' $d/out.txt
    sum=$(grep '^#summary' $d/out.txt | tail -n 1)
    if [ -z "$sum" ]; then echo "FAIL $name: exited $rc without a summary"; failn=$((failn + 1)); continue; fi
    pass=$((pass + $(echo "$sum" | cut -d' ' -f2))); failn=$((failn + $(echo "$sum" | cut -d' ' -f3)))
done
echo "#summary $pass $failn"
[ $failn = 0 ]
