#!/bin/sh
# make tiny_models: rebuild the world data, the tokenizer and M0 from
# scratch with the recipe in the Makefile and check each against what is
# committed (MANIFEST digests, then the tokenizer and M0 byte for byte).
set -eu
out=build/rebuild
mkdir -p $out/data
start=$(date +%s)
args=$(make -s --no-print-directory print-world-args)
m0args=$(make -s --no-print-directory print-m0-args)
vocab=$(make -s --no-print-directory print-tok-vocab)
echo "world gen $args"
tiny_models/world gen $args --out $out/data > /dev/null
cmp tiny_models/MANIFEST $out/data/MANIFEST && echo "ok   data matches tiny_models/MANIFEST"
./srlm tokenizer train --input $out/data/corpus.txt --vocab $vocab --out $out/tokenizer.tok
cmp tiny_models/tokenizer.tok $out/tokenizer.tok && echo "ok   tokenizer matches tiny_models/tokenizer.tok"
echo "srlm train $m0args (this is the long part)"
./srlm train --data $out/data/corpus.txt --tokenizer $out/tokenizer.tok $m0args --out $out/m0.ckpt
cmp tiny_models/m0.ckpt $out/m0.ckpt && echo "ok   M0 matches tiny_models/m0.ckpt"
cmp tiny_models/m0.ckpt.tokenizer $out/m0.ckpt.tokenizer && echo "ok   M0's tokenizer record matches"
echo "rebuilt and verified in $(( $(date +%s) - start )) s"
