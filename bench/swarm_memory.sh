#!/usr/bin/env bash
# Swarm memory: VGG16 (553 MB of weights) on devices capped at 512 MB. One such device cannot load
# it (the kernel kills the attempt); the swarm of deploy/vgg16-512mb.json — conv stack in 2 stages,
# fc6 in 4 shards by output rows, fc7+fc8 — serves it, every node's peak RSS <= its weight slice
# + 64 MB. JSON lines on stdout and in bench/out/swarm.jsonl. Needs root (cgroup v1). ~2 minutes.
source "$(dirname "$0")/swarm_common.sh"
need_models
limit_mb=512
input=$models/large/vgg16/input.npy
result=$out/swarm.jsonl

# 1. The whole model in one 512 MB device: `dnnswarm run` inside a memory cgroup of that size.
memcg=/sys/fs/cgroup/memory$(grep ':memory:' /proc/self/cgroup | cut -d: -f3)/dnnswarm-bench-$$
mkdir "$memcg"
trap 'rmdir "$memcg" 2>/dev/null || true' EXIT
echo "${limit_mb}M" > "$memcg/memory.limit_in_bytes"
set +e
sh -c "echo \$\$ > $memcg/cgroup.procs && exec '$dnnswarm' run --model '$models/vgg16.dnns' --input '$input' --output /dev/null" \
  >/dev/null 2>"$out/vgg16-one-device.log"
rc=$?
set -e
oom=$(awk '/oom_kill /{print $2}' "$memcg/memory.oom_control")
peak=$(( $(cat "$memcg/memory.max_usage_in_bytes") >> 20 ))
echo "{\"bench\": \"memory-one-device\", \"model\": \"vgg16\", \"limit_mb\": $limit_mb, \"exit_code\": $rc, \"oom_kills\": $oom, \"peak_mb\": $peak, \"served\": $([ $rc -eq 0 ] && echo true || echo false)}" | tee -a "$result"

# 2. The swarm of 512 MB devices. Its images/s depend on what else runs: the load average says.
load=$(cut -d' ' -f1 /proc/loadavg)
r=$(swarm_run "$root/deploy/vgg16-512mb.json" "$input" 8 --window 4)
/usr/bin/python3 - "$r" "$limit_mb" "$load" <<'PY' | tee -a "$result"
import json, sys
r, limit, load = json.loads(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
for n in r["per_node"]:
    print(json.dumps({"bench": "memory-swarm", "model": "vgg16", "node": n["id"], "limit_mb": limit,
                      "weight_mb": n["weight_mb"], "peak_rss_mb": n["peak_rss_mb"],
                      "within_slice_plus_64": n["peak_rss_mb"] is not None and n["peak_rss_mb"] <= n["weight_mb"] + 64}))
print(json.dumps({"bench": "memory-swarm-total", "model": "vgg16", "nodes": r["nodes"], "frames": r["frames"],
                  "lost": r["lost"], "images_per_s": r["images_per_s"], "load_before": load}))
PY
