#!/usr/bin/env bash
# Every swarm figure in one run: scaling and heterogeneous replicas, VGG16 memory, overhead; then the
# "Swarm" section of docs/benchmarks.md with its plots. Needs root. ~12 minutes on an idle machine
# (the figures assume nothing else runs: emulated devices share its 2 cores).
#   bench/swarm_all.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: > "$here/out/swarm.jsonl" 2>/dev/null || { mkdir -p "$here/out"; : > "$here/out/swarm.jsonl"; }
"$here/swarm_scaling.sh"
"$here/swarm_memory.sh"
"$here/swarm_overhead.sh"
/usr/bin/python3 "$here/swarm_report.py" "$here/out/swarm.jsonl" "$here/../docs/benchmarks.md" "bench/swarm_all.sh"
