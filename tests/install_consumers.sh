#!/bin/sh
# Installs the real consumers that tests/test_interop.sh holds srlm's exports
# against, pinned, into build/consumers (git-ignored): Hugging Face's Rust
# tokenizers (npm `tokenizers`, the engine of Python transformers) and
# tokenizers.js, @huggingface/jinja (chat templates), and node-llama-cpp with
# its prebuilt llama.cpp binary for this platform. --omit=optional skips the
# CUDA/Vulkan/other-platform binaries; the one for this machine is named
# explicitly, and NODE_LLAMA_CPP_SKIP_DOWNLOAD stops a fallback build of
# llama.cpp from source (20+ minutes on 2 cores). .ci/run calls this.
set -eu
command -v npm >/dev/null 2>&1 || { echo "install_consumers: npm is not installed" >&2; exit 1; }
case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) plat=linux-x64 ;;
    Linux-aarch64) plat=linux-arm64 ;;
    Darwin-arm64) plat=mac-arm64-metal ;;
    Darwin-x86_64) plat=mac-x64 ;;
    *) echo "install_consumers: no prebuilt node-llama-cpp for $(uname -s)-$(uname -m)" >&2; exit 1 ;;
esac
dir=build/consumers
mkdir -p $dir
[ -f $dir/package.json ] || echo '{ "name": "srlm-consumers", "private": true, "version": "0.0.0" }' > $dir/package.json
cd $dir
NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --omit=optional --no-audit --no-fund --loglevel=error \
    tokenizers@0.23.2 @huggingface/tokenizers@0.2.0 @huggingface/jinja@0.5.13 \
    node-llama-cpp@3.21.1 @node-llama-cpp/$plat@3.21.1
