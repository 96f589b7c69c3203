#!/usr/bin/env bash
# Configures and builds dnnswarm (Release, -O3, host SIMD) into build/, or into $DNNSWARM_BUILD_DIR
# (any folder, inside the checkout or not). Usage: tools/build.sh [cmake args]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${DNNSWARM_BUILD_DIR:-$root/build}
"$root/tools/deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
