#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs every test with ctest. Tests that need a
# broker start their own Mosquitto on a free loopback port (tests/support/mosquitto.*).
# DNN_CROSS_ARCHS="aarch64 armhf" then runs the same suite cross-built for ARM under qemu-user
# (tools/cross-test.sh; docs/building.md says why it is not on by default yet).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/build.sh"   # into build/, or $DNNSWARM_BUILD_DIR
cd "${DNNSWARM_BUILD_DIR:-$root/build}"
ctest --output-on-failure -j"$(nproc)" "$@"
for arch in ${DNN_CROSS_ARCHS-}; do
  "$root/tools/cross-test.sh" "$arch"
done
