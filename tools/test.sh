#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs every test with ctest. Tests that need a
# broker start their own Mosquitto on a free loopback port (tests/support/mosquitto.*).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/build.sh"   # into build/, or $DNNSWARM_BUILD_DIR
cd "${DNNSWARM_BUILD_DIR:-$root/build}"
ctest --output-on-failure -j"$(nproc)" "$@"
