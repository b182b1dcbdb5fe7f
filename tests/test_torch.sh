#!/bin/sh
# The independent PyTorch cross-check (tests/torch_check.py) when torch is
# importable, else a visible skip. Debian's python3-torch installs for the
# system interpreter, which may not be the first python3 on PATH, so both are
# tried. Prints the check's ok/FAIL lines and "#summary P F".
set -u
SRLM=${SRLM:-./srlm}
py=""
for cand in python3 /usr/bin/python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import torch' >/dev/null 2>&1; then py=$cand; break; fi
done
if [ -z "$py" ]; then
    echo "SKIP: python3-torch not installed"
    echo "#summary 0 0"
    exit 0
fi
if [ ! -x "$SRLM" ]; then
    echo "FAIL torch_check: $SRLM is not built"
    echo "#summary 0 1"
    exit 1
fi
"$py" "$(dirname "$0")/torch_check.py" "$SRLM"
