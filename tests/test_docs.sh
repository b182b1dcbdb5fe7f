#!/bin/sh
# The documentation's commands still work. In README.md, tiny_models/README.md,
# tiny_models/PROBES.md and tests/README.md every fenced block opened with
#   ```sh doctest       is run (sh -e), one block at a time, in file order;
#   ```python doctest   is run with python3;
#   ```sh run-by tests/NAME   is not run here (too slow: a whole srlm run, make
#                       run, a rebuild of M0) and names the script that runs it:
#                       that file must exist, each "srlm X" / "world X" the block
#                       uses must appear in it (and each "sh tests/X.sh"), and
#                       each "make T" must be a Makefile target.
# Any other ```sh block is a failure: no command shown goes unchecked.
# Blocks run in a scratch directory laid out like the repository: ./srlm,
# tiny_models/world, the shipped tokenizer, M0 and judge template, and the
# --small world with the open families (what tests/test_run.sh uses) in
# tiny_models/data/. "make" runs in the repository itself (quietly).
set -u
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
repo=$(pwd)
sb=$repo/build/doctest
rm -rf "$sb"; mkdir -p "$sb/tiny_models" "$sb/bin" "$sb/blocks"
ln -s "$repo/srlm" "$sb/srlm"
for f in world m0.ckpt m0.ckpt.tokenizer tokenizer.tok judge_template.txt MANIFEST DIGESTS; do
    ln -s "$repo/tiny_models/$f" "$sb/tiny_models/$f"
done
real_make=$(command -v make)
printf '#!/bin/sh\nexec "%s" -s -C "%s" "$@" >/dev/null\n' "$real_make" "$repo" > "$sb/bin/make"
chmod +x "$sb/bin/make"
mkdir -p "$sb/tiny_models/data"
if ! tiny_models/world gen --seed 1 --small --families starts,ends,contains,at --out "$sb/tiny_models/data" >/dev/null; then
    bad "world gen --small"; echo "#summary $pass $fail"; exit 1
fi

# split FILE: writes blocks/TAG.N.{sh,py,runby} and prints one line per block: KIND N LINE
split_blocks() {
    awk -v dir="$sb/blocks" -v tag="$2" '
        /^```/ && !inb {
            inb = 1; n++; info = substr($0, 4); kind = "text"
            if (info == "sh doctest") kind = "sh"
            else if (info == "python doctest") kind = "py"
            else if (info ~ /^sh run-by /) { kind = "runby"; print substr(info, 11) > (dir "/" tag "." n ".by") }
            else if (info ~ /^(sh|bash|shell|console)( |$)/) kind = "unmarked"
            out = dir "/" tag "." n "." kind
            printf "" > out
            print kind, n, NR
            next
        }
        /^```/ && inb { inb = 0; close(out); next }
        inb { print >> out }
    ' "$1"
}

for doc in README.md tiny_models/README.md tiny_models/PROBES.md tests/README.md; do
    [ -f "$doc" ] || continue
    tag=$(echo "$doc" | tr '/.' '__')
    split_blocks "$doc" "$tag" > "$sb/blocks/$tag.list"
    while read -r kind n line; do
        block="$sb/blocks/$tag.$n.$kind"
        name="$doc:$line"
        case $kind in
        sh)
            if (cd "$sb" && PATH="$sb/bin:$PATH" sh -e "$block") > "$sb/blocks/out" 2>&1; then ok "$name runs"
            else bad "$name: $(tail -3 "$sb/blocks/out")"; fi ;;
        py)
            if ! command -v python3 >/dev/null; then echo "SKIP: $name needs python3"; continue; fi
            if (cd "$sb" && python3 "$block") > "$sb/blocks/out" 2>&1; then ok "$name runs"
            else bad "$name: $(tail -3 "$sb/blocks/out")"; fi ;;
        runby)
            by=$(cat "$sb/blocks/$tag.$n.by")
            if [ ! -f "$by" ]; then bad "$name: run-by $by: no such file"; continue; fi
            missing=$(grep -o '\(srlm\|world\) [a-z-]*\|^make [a-z_/.-]*\|sh tests/[a-z_]*\.sh' "$block" | sort -u | while read -r prog cmd; do
                if [ "$prog" = make ]; then
                    grep -q "^$cmd:" Makefile || echo "make $cmd"
                else
                    grep -q "$prog $cmd" "$by" || echo "$prog $cmd"
                fi
            done)
            if [ -z "$missing" ]; then ok "$name run by $by"
            else bad "$name: $by does not run: $(echo $missing)"; fi ;;
        unmarked)
            bad "$name: a shell block must be \`\`\`sh doctest or \`\`\`sh run-by tests/NAME" ;;
        esac
    done < "$sb/blocks/$tag.list"
done
# PROBES.md's recipe for redoing a probe (srlm dpo, srlm answer, world grade),
# on M0 as the run's model and two pairs: each step must give its file
mkdir -p "$sb/probe"
printf '%s\n' '{"prompt": "Name a 5-letter word that starts with \"b\".", "chosen": "The word \"bread\" has 5 letters and starts with \"b\".", "rejected": "The word \"bread\" has 5 letters and starts with \"b\". Hope this helps!"}' \
    '{"prompt": "Which 4-letter word ends with \"k\"?", "chosen": "The word \"milk\" has 4 letters and ends with \"k\".", "rejected": "The word \"milk\" has 4 letters and ends with \"k\". I hope that is clear."}' > "$sb/probe/pairs.jsonl"
head -8 "$sb/tiny_models/data/test_prompts.jsonl" > "$sb/probe/test.jsonl"
if (cd "$sb/probe" && ../srlm dpo --model ../tiny_models/m0.ckpt --tokenizer ../tiny_models/tokenizer.tok --pairs pairs.jsonl \
        --out m2x.ckpt --steps 2 --batch 2 && ../srlm answer --model m2x.ckpt --tokenizer ../tiny_models/tokenizer.tok \
        --input test.jsonl --out answers.jsonl && ../tiny_models/world grade answers.jsonl grades.jsonl) > "$sb/probe/out" 2>&1 \
        && [ "$(wc -l < "$sb/probe/grades.jsonl")" -eq 8 ]; then
    ok "PROBES.md: srlm dpo, srlm answer, world grade redo a probe"
else
    bad "PROBES.md's probe recipe: $(tail -3 "$sb/probe/out")"
fi

echo "#summary $pass $fail"
[ "$fail" -eq 0 ]
