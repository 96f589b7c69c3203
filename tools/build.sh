#!/usr/bin/env bash
# Configures and builds dnnswarm (Release, -O3, host SIMD) into build/. Usage: tools/build.sh [cmake args]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/deps.sh"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$root/build" -j"$(nproc)"
