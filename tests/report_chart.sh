#!/bin/sh
# A text chart of a run's head-to-head results: one line per pair of
# report.md's head-to-head table whose left model is M1, M2 or M3, 50 marks
# split into wins (+), ties (=) and losses (-) in proportion, then W/T/L.
#   sh tests/report_chart.sh runs/default/report.md
[ $# -eq 1 ] && [ -f "$1" ] || { echo "usage: sh tests/report_chart.sh DIR/report.md" >&2; exit 2; }
awk -F' [|] ' '$1 ~ /^[|] M[0-9] vs / && $5 ~ /^[0-9]+\/[0-9]+\/[0-9]+$/ {
    split($5, n, "/"); bar = ""
    for (i = 1; i <= 3; i++)
        for (j = 0; j < int(n[i] * 50 / (n[1] + n[2] + n[3]) + 0.5); j++) bar = bar substr("+=-", i, 1)
    sub(/^[|] /, "", $1)
    printf "%-24s %s %s\n", $1, bar, $5
}' "$1"
