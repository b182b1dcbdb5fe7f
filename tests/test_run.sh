#!/bin/sh
# The whole loop on the reduced preset (seconds): SFT baseline, M1,
# AIFT(M1), M2, AIFT(M2), M3, ablation, evaluation, report. Checks:
#  - every model's SHA-256 equals the one recorded in tests/run_tiny.digests;
#  - a second run in a directory another run is using is refused;
#  - a run killed with SIGKILL mid-stage (twice) and then rerun reaches the
#    same bytes in every output file as the uninterrupted run;
#  - the report and charts exist;
#  - eval.jsonl recomputed outside srlm (awk) gives the report's correctness and
#    best-of numbers, and a planted wrong grade moves them by exactly that;
#  - run.cfg names the best-of models, and more of them can be added to a finished run.
set -u
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
base=build/runtest
rm -rf $base; mkdir -p $base/data
if [ ! -f tiny_models/m0.ckpt ] || [ ! -f tiny_models/tokenizer.tok ]; then
    bad "tiny_models/m0.ckpt or tokenizer.tok missing"; echo "#summary $pass $fail"; exit 1
fi
tiny_models/world gen --seed 1 --small --families starts,ends,contains,at --out $base/data > /dev/null || { bad world_gen; echo "#summary $pass $fail"; exit 1; }
# run DIR [flags]: exec, so that "run ... &" makes $! srlm's own pid and kill -9 hits srlm itself
# (killing a subshell would leave srlm running beside the resumed run); call it in ( ) otherwise
run() { d=$1; shift; exec ./srlm run --dir "$d" --preset tiny --seed 3 --m0 tiny_models/m0.ckpt --tokenizer tiny_models/tokenizer.tok \
        --template tiny_models/judge_template.txt --ift $base/data/ift.jsonl --eft $base/data/eft_train.jsonl \
        --test $base/data/test_prompts.jsonl --ranked $base/data/ranked_eval.jsonl --grader "tiny_models/world grade" --max-similarity 0.95 "$@"; }

start=$(date +%s)
if (run $base/a) > $base/a.out 2> $base/a.err; then ok run_tiny_completes; else bad "run_tiny_completes: $(tail -3 $base/a.err)"; fi
echo "  uninterrupted run: $(( $(date +%s) - start )) s"
for f in report.md winrate.svg rm_by_model.svg; do
    [ -s $base/a/$f ] && ok "writes_$f" || bad "writes_$f"
done
grep -q '<svg' $base/a/winrate.svg && grep -q '</svg>' $base/a/winrate.svg && ok svg_well_formed || bad svg_well_formed
# README's text chart: tests/report_chart.sh draws each M-pair row of the head-to-head table as 49-51 marks
sh tests/report_chart.sh $base/a/report.md > $base/a.chart 2>&1
want=$(grep -c '^| M[0-9] vs .* | [0-9]*/[0-9]*/[0-9]* |' $base/a/report.md)
if [ "$want" -gt 0 ] && [ "$(wc -l < $base/a.chart)" -eq "$want" ] \
        && awk '{ b = $(NF - 1); if (b !~ /^[-+=]+$/ || length(b) < 49 || length(b) > 51) bad = 1 } END { exit bad }' $base/a.chart; then
    ok report_chart_draws_every_pair
else
    bad "report_chart_draws_every_pair: want $want lines, got: $(cat $base/a.chart)"
fi

# recorded digests (update tests/run_tiny.digests only when a change is meant to alter results)
for m in sft m1 m2 m3 m2pos; do
    got=$(./srlm info $base/a/$m.ckpt 2>/dev/null | sed -n 's/^sha256 //p')
    want=$(sed -n "s/^$m //p" tests/run_tiny.digests 2>/dev/null)
    if [ -n "$got" ] && [ "$got" = "$want" ]; then ok "digest_$m"; else bad "digest_$m: got $got, recorded $want"; fi
done

# kill -9 twice mid-run, then finish: same bytes as the uninterrupted run
# after each kill nothing in the run directory may change any more (the kill hit srlm, not a
# wrapper) and the run must be unfinished (the kill was mid-run)
killed_stays_still() {
    a=$(ls -l $base/b; cat $base/b/* 2>/dev/null | cksum); sleep 3; b=$(ls -l $base/b; cat $base/b/* 2>/dev/null | cksum)
    if [ "$a" = "$b" ] && [ ! -f $base/b/report.md ]; then ok "killed_mid_run_$1"; else bad "killed_mid_run_$1: the run went on or had finished"; fi
}
run $base/b > /dev/null 2>&1 &
pid=$!
sleep 4
# a second run in the same directory meanwhile is refused (run.lock), with one clear line
if (run $base/b) > /dev/null 2> $base/lock.err; then bad "second_run_refused: it ran"
elif grep -q 'another srlm run is working in this directory' $base/lock.err && [ "$(wc -l < $base/lock.err)" -eq 1 ]; then ok second_run_refused
else bad "second_run_refused: $(head -3 $base/lock.err)"; fi
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
killed_stays_still 1
run $base/b > /dev/null 2>&1 &
pid=$!
i=0; while [ ! -f $base/b/m2.ckpt ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i + 1)); done
sleep 1; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
killed_stays_still 2
ls $base/b/*.tmp >/dev/null 2>&1 && echo "  (a temp file was left behind by the kill; the rerun replaces it)"
if (run $base/b) > $base/b.out 2> $base/b.err; then ok resume_completes; else bad "resume_completes: $(tail -3 $base/b.err)"; fi
same=1
for f in $base/a/*.ckpt $base/a/*.jsonl $base/a/*.json $base/a/report.md; do
    g=$base/b/$(basename $f)
    if ! cmp -s "$f" "$g"; then same=0; echo "  differs after resume: $(basename $f)"; fi
done
[ $same -eq 1 ] && ok resume_reaches_same_bytes || bad resume_reaches_same_bytes
# resume checks what it reuses (outputs.sha256): a stage output replaced by another (m2 by m1), a
# truncated one (rm_sft.json, which the report reads back) and a stale temp file from a killed write;
# the rerun redoes exactly those stages, says so, and reaches the uninterrupted run's bytes
cp -r $base/a $base/d && rm -f $base/d/report.md
cp $base/d/m1.ckpt $base/d/m2.ckpt
head -c 40 $base/a/rm_sft.json > $base/d/rm_sft.json
echo half > $base/d/m3.ckpt.4242.0.tmp
if (run $base/d) > $base/d.out 2> $base/d.err && grep -q 'm2.ckpt does not match its recorded digest' $base/d.err \
   && grep -q 'rm_sft.json does not match its recorded digest' $base/d.err && grep -q 'removed 1 temp file' $base/d.err \
   && ! grep -q 'm1.ckpt does not match' $base/d.err && ! ls $base/d/*.tmp >/dev/null 2>&1; then
    same=1
    for f in $base/a/*.ckpt $base/a/*.jsonl $base/a/*.json $base/a/report.md; do cmp -s "$f" $base/d/$(basename $f) || same=0; done
    [ $same -eq 1 ] && ok resume_redoes_damaged_outputs || bad "resume_redoes_damaged_outputs: other bytes"
else
    bad "resume_redoes_damaged_outputs: $(grep -v '^\[' $base/d.err | head -3; grep 'digest\|temp' $base/d.err | head -3)"
fi

# aiftK.candidates.jsonl: one line per kept prompt, every candidate, and an outcome per
# prompt that agrees with the stats and with the pairs file (same prompts, same order)
num() { sed -n "s/.*\"$2\": \([0-9]*\).*/\1/p" $1; }
for k in 1 2; do
    c=$base/a/aift$k.candidates.jsonl; s=$base/a/aift$k.stats.json
    lines=$(wc -l < $c 2>/dev/null); resp=$(grep -o '{"response": ' $c 2>/dev/null | wc -l)
    npair=$(grep -c '"outcome": "pair"' $c 2>/dev/null); ntie=$(grep -c '"outcome": "tie"' $c 2>/dev/null)
    nident=$(grep -c '"outcome": "identical"' $c 2>/dev/null)
    grep '"outcome": "pair"' $c 2>/dev/null | sed 's/, "candidates": .*//' > $base/cand_prompts$k
    sed 's/, "chosen": .*//' $base/a/aift$k.jsonl > $base/pair_prompts$k
    if [ -s $c ] && [ "$lines" = "$(num $s prompts_kept)" ] && [ "$resp" = "$(num $s candidates)" ] \
       && [ "$npair" = "$(num $s pairs)" ] && [ "$ntie" = "$(num $s ties)" ] && [ "$nident" = "$(num $s identical)" ] \
       && [ -s $base/pair_prompts$k ] && cmp -s $base/cand_prompts$k $base/pair_prompts$k; then
        ok "candidates_file_$k"
    else
        bad "candidates_file_$k: lines $lines, responses $resp, pairs $npair, ties $ntie, identical $nident; stats: $(cat $s)"
    fi
done
# eval.jsonl: an outside recomputation (awk, independent of srlm's code) of every correctness and
# best-of number the report prints for M1, and of the correctness split of three pairs; then a planted
# wrong grade (a copy of the run with one greedy answer of M1 and prompt 0's best-of samples graded
# wrong) must move the report by exactly that, and the recomputation must still agree with it
harness() {
awk -v labels="SFT baseline,M1,M2,M3,M2 positive-only" '
function arr(s, key, out,   i, r) {
    i = index(s, "\"" key "\": ["); if (!i) return 0
    r = substr(s, i + length(key) + 5); r = substr(r, 1, index(r, "]") - 1)
    return split(r, out, ", ")
}
function pc(a, b) { return b > 0 ? sprintf("%.1f", 100.0 * a / b) : "0.0" }
BEGIN { split(labels, lab, ",") }
NR == 1 { nm = arr($0, "models", mods); next }
{
    n++; arr($0, "grade", g); arr($0, "correct", c)
    cat = "null"; if (match($0, /"category": "[^"]*"/)) cat = substr($0, RSTART + 13, RLENGTH - 14)
    if (!(cat in seen)) { seen[cat] = 1; cats[++ncat] = cat }
    for (m = 1; m <= nm; m++) { cor[m] += c[m]; G[n, m] = g[m] + 0; C[n, m] = c[m] + 0 }
    b = index($0, "\"bestof\": {\"m1\": ")
    if (b) {
        nbo++; s = substr($0, b); arr(s, "mean", mean); arr(s, "correct", bc)
        for (t = 1; t <= 4; t++) {
            k = 2 ^ (t - 1); best = 0; any = 0
            for (j = 1; j <= k; j++) if (mean[j] != "null" && (best == 0 || mean[j] + 0 > mean[best] + 0)) best = j
            if (best == 0) best = 1
            for (j = 1; j <= k; j++) if (bc[j] + 0) any = 1
            self[t] += bc[best] + 0; orc[t] += any
            if (k == 8) { cs[cat] += bc[best] + 0; co[cat] += any; cg[cat] += c[2] + 0; cn[cat]++ }
        }
    }
}
END {
    for (m = 1; m <= nm; m++) printf "| %s | %d/%d | %s |\n", lab[m], cor[m], n, pc(cor[m], n)
    np = split("3 2,4 3,4 2", pairs, ",")
    for (q = 1; q <= np; q++) {
        split(pairs[q], ab, " "); a = ab[1] + 0; bb = ab[2] + 0; oa = ob = wc = wf = wo = lc = lf = lo = 0
        for (i = 1; i <= n; i++) {
            x = C[i, a]; y = C[i, bb]
            if (x && !y) oa++
            if (y && !x) ob++
            if (G[i, a] > G[i, bb]) { if (x && !y) wc++; else if (x == y) wf++; else wo++ }
            if (G[i, a] < G[i, bb]) { if (y && !x) lc++; else if (x == y) lf++; else lo++ }
        }
        printf "%s vs %s;%d / %d;%d / %d / %d;%d / %d / %d\n", lab[a], lab[bb], oa, ob, wc, wf, wo, lc, lf, lo
    }
    if (nbo != n) { print "best-of rows: " nbo " of " n; exit }
    printf "| M1 all | %d | %s | %s | %s |\n", n, pc(cor[2], n), pc(self[4], n), pc(orc[4], n)
    for (q = 1; q <= ncat; q++) { k = cats[q]; printf "| M1 %s | %d | %s | %s | %s |\n", k, cn[k], pc(cg[k], cn[k]), pc(cs[k], cn[k]), pc(co[k], cn[k]) }
    printf "| M1 | self-judge |"; for (t = 1; t <= 4; t++) printf " %s |", pc(self[t], n); printf "\n"
    printf "| M1 | grader |"; for (t = 1; t <= 4; t++) printf " %s |", pc(orc[t], n); printf "\n"
    printf "#counts %d %d\n", cor[2], orc[4]
}' $1/eval.jsonl
}
# the report's rows in the harness's shape: correct rows cut after "correct %", pair rows without p
report_rows() {
    sed -n 's/^\(| [^|]* | [0-9]*\/[0-9]* | [0-9.]* |\).*/\1/p' $1/report.md
    awk -F' [|] ' '/^[|] .* vs .* [|] [0-9]+ \/ [0-9]+ [|]/ { sub(/^[|] /, "", $1); sub(/ [|]$/, "", $5); print $1 ";" $2 ";" $4 ";" $5 }' $1/report.md
    grep '^| M1 ' $1/report.md
}
agrees() {  # DIR NAME: every recomputed row is in the report
    harness $1 > $1.harness; report_rows $1 > $1.rows; missing=0
    [ "$(wc -l < $1.harness)" -ge 12 ] || missing=1
    grep -v '^#' $1.harness | while IFS= read -r line; do grep -qxF "$line" $1.rows || echo "  not in the report: $line"; done > $1.missing
    [ -s $1.missing ] && { missing=1; cat $1.missing; }
    [ $missing -eq 0 ] && ok "$2" || bad "$2: $(head -3 $1.harness)"
}
agrees $base/a eval_jsonl_recomputes_report
grep -q '^{"format": "srlm eval", "version": 1, ' $base/a/eval.jsonl && ok eval_jsonl_header || bad eval_jsonl_header
# the planted files get their digests recorded (as if the grader had written them), so that the
# resume takes them as finished stage outputs rather than redoing them
sha() { if command -v sha256sum > /dev/null; then sha256sum "$1"; else shasum -a 256 "$1"; fi | cut -d' ' -f1; }
rerecord() { grep -v "  $2\$" $1/outputs.sha256 > $1/outputs.new; echo "$(sha $1/$2)  $2" >> $1/outputs.new; mv $1/outputs.new $1/outputs.sha256; }
rm -rf $base/p; cp -r $base/a $base/p
awk '!done && /useful,correct/ { sub(/"grade": [0-9]+, "criteria": "[^"]*"/, "\"grade\": 3, \"criteria\": \"relevant,substantial,useful\""); done = 1 } { print }' \
    $base/a/grades_m1.jsonl > $base/p/grades_m1.jsonl
awk 'NR <= 8 { sub(/"grade": [0-9]+, "criteria": "[^"]*"/, "\"grade\": 3, \"criteria\": \"relevant,substantial,useful\"") } { print }' \
    $base/a/bestof_grades_m1.jsonl > $base/p/bestof_grades_m1.jsonl
rerecord $base/p grades_m1.jsonl; rerecord $base/p bestof_grades_m1.jsonl
if (run $base/p) > /dev/null 2> $base/p.err; then
    agrees $base/p planted_grade_recomputes_report
    # M1's greedy correct count falls by one; its grader best of 8 by one if prompt 0 had a correct sample
    set -- $(sed -n 's/^#counts //p' $base/a.harness) $(sed -n 's/^#counts //p' $base/p.harness)
    any0=$(head -8 $base/a/bestof_grades_m1.jsonl | grep -c 'useful,correct')
    [ "$any0" -gt 0 ] && want=$(($2 - 1)) || want=$2
    if [ $# -eq 4 ] && [ "$3" = "$(($1 - 1))" ] && [ "$4" = "$want" ] && ! cmp -s $base/a/report.md $base/p/report.md; then ok planted_grade_moves_report
    else bad "planted_grade_moves_report: M1 correct ${1:-?} -> ${3:-?}, grader best of 8 ${2:-?} -> ${4:-?} (want $want)"; fi
else bad "planted_grade_rerun: $(tail -3 $base/p.err)"; fi

# --candidates N reaches AIFT: N responses per kept prompt, and run.cfg says so
(run $base/c --candidates 3 --no-ablation --bestof 0) > /dev/null 2> $base/c.err || bad "run_candidates_3: $(tail -3 $base/c.err)"
kept=$(sed -n 's/.*"prompts_kept": \([0-9]*\).*/\1/p' $base/c/aift1.stats.json 2>/dev/null)
cand=$(sed -n 's/.*"candidates": \([0-9]*\).*/\1/p' $base/c/aift1.stats.json 2>/dev/null)
if [ -n "$kept" ] && [ "$kept" -gt 0 ] && [ "$cand" = "$((kept * 3))" ] && grep -q 'candidates=3 ' $base/c/run.cfg; then
    ok candidates_option_used
else
    bad "candidates_option_used: kept $kept, candidates $cand"
fi

# run.cfg names the best-of models last (evaluation only): a finished run given more models
# resumes, evaluates them, rewrites that line and keeps every other byte; a run.cfg from before the
# line resumes too and gains it; other settings are still refused
rm -rf $base/e; cp -r $base/a $base/e
if [ "$(tail -n 1 $base/a/run.cfg)" = "bestof-models m1" ] && (run $base/e --bestof-models m1,m3) > /dev/null 2> $base/e.err \
   && [ "$(tail -n 1 $base/e/run.cfg)" = "bestof-models m1,m3" ] && grep -q 'run.cfg updated' $base/e.err \
   && [ -s $base/e/bestof_m3.jsonl ] && grep -q '"bestof_models": \["m1", "m3"\]' $base/e/eval.jsonl \
   && cmp -s $base/a/m3.ckpt $base/e/m3.ckpt && [ "$(sed '$d' $base/a/run.cfg)" = "$(sed '$d' $base/e/run.cfg)" ]; then
    ok run_cfg_records_bestof_models
else bad "run_cfg_records_bestof_models: $(tail -n 1 $base/e/run.cfg); $(tail -2 $base/e.err)"; fi
sed '$d' $base/a/run.cfg > $base/e/run.cfg
if (run $base/e) > /dev/null 2> $base/e2.err && [ "$(tail -n 1 $base/e/run.cfg)" = "bestof-models m1" ] \
   && ! (run $base/e --beta 0.2) > /dev/null 2> $base/e3.err && grep -q 'other settings' $base/e3.err; then
    ok run_cfg_older_resumes_other_refused
else bad "run_cfg_older_resumes_other_refused: $(tail -2 $base/e2.err) $(tail -1 $base/e3.err)"; fi

# srlm answer: greedy by default; --temperature samples, one stream per prompt from --seed
ans() { ./srlm answer --model $base/a/m1.ckpt --tokenizer tiny_models/tokenizer.tok --input $base/data/test_prompts.jsonl "$@" 2>/dev/null; }
ans > $base/g0; ans --temperature 0 > $base/g1; ans --temperature 1 --seed 5 > $base/s5; ans --temperature 1 --seed 5 > $base/s5b
ans --temperature 1 --seed 6 > $base/s6
cmp -s $base/g0 $base/g1 && [ -s $base/g0 ] && ok answer_temperature_0_is_greedy || bad answer_temperature_0_is_greedy
cmp -s $base/s5 $base/s5b && [ -s $base/s5 ] && ok answer_sampling_same_seed_same_bytes || bad answer_sampling_same_seed_same_bytes
! cmp -s $base/s5 $base/s6 && ! cmp -s $base/s5 $base/g0 && ok answer_sampling_seed_matters || bad answer_sampling_seed_matters
echo "#summary $pass $fail"
