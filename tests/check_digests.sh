#!/bin/sh
# The world data in DIR must be exactly the committed recipe's output:
# its MANIFEST (options, template digest, per-file size and SHA-256) must
# equal tiny_models/MANIFEST.
dir=${1:-tiny_models/data}
if ! cmp -s tiny_models/MANIFEST "$dir/MANIFEST"; then
    echo "srlm: $dir/MANIFEST differs from tiny_models/MANIFEST (the world generator or its options changed):" >&2
    diff tiny_models/MANIFEST "$dir/MANIFEST" >&2
    exit 1
fi
