#!/usr/bin/env bash
# The main job on the embedded default: installs dependencies, builds, then runs the bundled LeNet-5
# (trained on real MNIST) over held-out digits on an emulated swarm of devices on this machine — a
# local Mosquitto, a pipeline, a replicated stage and a sharded layer — and prints one JSON line.
# Extra arguments go to `dnnswarm swarm` (see `build/dnnswarm swarm --help`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/build.sh" >&2
exec "${DNNSWARM_BUILD_DIR:-$root/build}/dnnswarm" swarm "$@"
