#!/bin/sh
# srlm chat driven through stdin (the model: M0 after a few SFT steps): a turn's reply equals srlm answer's for the
# same instruction (text and, with --ids, tokens); /reset starts over (the
# same question after /reset gets the same reply as at first, while in the
# running conversation it sees the earlier turns); --system is its own turn;
# chat --judge shows each judgment's parsed score and the mean; a full
# stdout is an error.
set -u
SRLM=${SRLM:-./srlm}
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1${2:+: $2}"; }
d=build/chattest
rm -rf $d; mkdir -p $d/data
# M0 after 20 SFT steps on a small world's IFT: its replies are one line
tiny_models/world gen --seed 1 --small --families starts,ends,contains,at --out $d/data > /dev/null
$SRLM sft --model tiny_models/m0.ckpt --tokenizer tiny_models/tokenizer.tok --data $d/data/ift.jsonl --out $d/chat.ckpt \
    --steps 20 --batch 4 --lr 1e-3 --warmup 2 --log-every 0 > /dev/null 2>&1 || bad sft
m="--model $d/chat.ckpt --tokenizer tiny_models/tokenizer.tok"
q1='Name a 5-letter word that starts with "b".'
q2='Which 6-letter word ends with "r"?'
printf '{"instruction": "Name a 5-letter word that starts with \\"b\\"."}\n{"instruction": "Which 6-letter word ends with \\"r\\"?"}\n' > $d/q.jsonl
$SRLM answer $m --input $d/q.jsonl --max-new 16 --out $d/a.jsonl 2> /dev/null
want1=$(sed -n '1s/.*"response": "\(.*\)", "tokens".*/\1/p' $d/a.jsonl | sed 's/\\"/"/g')
want2=$(sed -n '2s/.*"response": "\(.*\)", "tokens".*/\1/p' $d/a.jsonl | sed 's/\\"/"/g')
printf '%s\n/reset\n%s\n%s\n/reset\n%s\n' "$q1" "$q2" "$q1" "$q1" | $SRLM chat $m --max-new 16 > $d/out.txt 2> $d/err.txt
[ -n "$want1" ] && [ -n "$want2" ] && [ "$want1" != "$want2" ] && ok answers_present || bad answers_present
[ "$(sed -n 1p $d/out.txt)" = "$want1" ] && ok chat_equals_answer_1 || bad chat_equals_answer_1 "$(sed -n 1p $d/out.txt) vs $want1"
[ "$(sed -n 2p $d/out.txt)" = "$want2" ] && ok chat_after_reset_equals_answer_2 || bad chat_after_reset_equals_answer_2
[ "$(sed -n 4p $d/out.txt)" = "$want1" ] && ok reset_forgets || bad reset_forgets
[ "$(wc -l < $d/out.txt)" -eq 4 ] && ok one_line_per_reply || bad one_line_per_reply "$(wc -l < $d/out.txt) lines"
grep -q 'conversation reset' $d/err.txt && ok reset_acknowledged || bad reset_acknowledged
# --ids gives the tokens of the text reply
printf '%s\n' "$q1" | $SRLM chat $m --max-new 16 --ids > $d/ids.txt 2> /dev/null
$SRLM tokenizer decode --tokenizer tiny_models/tokenizer.tok --input $d/ids.txt > $d/dec.txt 2> /dev/null
[ "$(cat $d/dec.txt)" = "$want1" ] && ok ids_decode_to_the_reply || bad ids_decode_to_the_reply
# --system: its own turn before the user's, so the prompt differs from answer's
printf '%s\n' "$q1" | $SRLM chat $m --max-new 16 --system "Be brief." > $d/sys.txt 2> /dev/null && [ -s $d/sys.txt ] \
    && ok system_turn_accepted || bad system_turn_accepted
# the judge: an instruction line, a response line; each judgment's parsed score and the mean
printf '%s\nThe word "black" has 5 letters and starts with "b".\n' "$q1" | \
    $SRLM chat --judge $m --template tiny_models/judge_template.txt --samples 2 --max-new 24 > $d/judge.txt 2> /dev/null
[ "$(grep -c '^--- judgment' $d/judge.txt)" -eq 2 ] && [ "$(grep -c '^parsed score: ' $d/judge.txt)" -eq 2 ] \
    && grep -q '^=== ' $d/judge.txt && ok judge_shows_parsed_scores || bad judge_shows_parsed_scores
# checked stdout: a full device is an error, not a silent success
if [ -w /dev/full ]; then
    printf '%s\n' "$q1" | $SRLM chat $m --max-new 4 > /dev/full 2> /dev/null && bad full_stdout_fails || ok full_stdout_fails
fi
echo "#summary $pass $fail"
[ $fail -eq 0 ]
