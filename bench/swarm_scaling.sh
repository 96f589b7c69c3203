#!/usr/bin/env bash
# Swarm scaling: AlexNet on 1..8 emulated devices of 0.15 core each (cgroup v1 quotas, exact while
# their sum stays under ~1.6 cores; see ../shared/notes/device-emulation.md), then heterogeneous
# replicas (one device with twice the quota of the other). One JSON line per configuration on
# stdout, also appended to bench/out/swarm.jsonl; bench/swarm_report.py turns them into the
# "Swarm" section of docs/benchmarks.md. Needs root. ~6 minutes.
#   bench/swarm_scaling.sh [max_devices] [seconds_per_point]
source "$(dirname "$0")/swarm_common.sh"
max=${1:-8}
seconds=${2:-15}
quota=0.15
need_models
input=$models/bench/alexnet/input.npy
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
result=$out/swarm.jsonl

# One configuration: frames sized for ~$seconds at the expected rate; window 3 per device keeps
# every replica's queue non-empty between frames.
point() {   # point NAME PLAN DEVICES EXPECTED_IPS [swarm options]
  local name=$1 plan=$2 devices=$3 rate=$4
  shift 4
  local frames=$(/usr/bin/python3 -c "print(max(20, int($rate * $seconds)))")
  swarm_run "$plan" "$input" "$frames" --window $((3 * devices + 2)) "$@"
}

# One device is measured first and again last: the report takes the better of the two as the base
# of the efficiency, so a slow first point (a busy machine) cannot flatter the others.
one=""   # images/s of one device, the base of the efficiency
for n in $(seq 1 "$max") 1; do
  best=""
  for stages in 0 2; do
    [ "$stages" -eq 2 ] && [ "$n" -lt 3 ] && continue
    "$dnnswarm" plan --model "$models/alexnet.dnns" --name alexnet --devices "$n" --stages "$stages" > "$tmp/plan.json"
    r=$(point "scaling" "$tmp/plan.json" "$n" "$(/usr/bin/python3 -c "print(${one:-4.5} * $n)")" --devices-cpu $quota)
    ips=$(json_get "$r" images_per_s)
    [ -n "$one" ] || one=$ips
    line=$(/usr/bin/python3 - "$r" "$tmp/plan.json" "$n" "$one" "$quota" "$stages" <<'PY'
import json, sys
r, plan = json.loads(sys.argv[1]), json.load(open(sys.argv[2]))
n, one, quota, stages = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
desc = " + ".join(f"{s['name']}[{s['begin']},{s['end']})" + (f" x{s['replicas']}" if s.get('replicas', 1) > 1 else "")
                  for s in plan["stages"])
print(json.dumps({"bench": "scaling", "model": "alexnet", "devices": n, "cpu_quota": quota,
                  "kind": "replicas" if len(plan["stages"]) == 1 else "pipeline+replicas", "plan": desc,
                  "images_per_s": r["images_per_s"], "efficiency": round(r["images_per_s"] / (n * one), 3),
                  "lost": r["lost"], "latency_ms_p50": r["latency_ms_p50"]}))
PY
)
    echo "$line" | tee -a "$result"
  done
done

# Heterogeneous replicas: each alone, then both serving one stage together.
"$dnnswarm" plan --model "$models/alexnet.dnns" --name alexnet --devices 1 > "$tmp/one.json"
fast=$(point "fast" "$tmp/one.json" 1 9 --devices-cpu 0.3)
slow=$(point "slow" "$tmp/one.json" 1 4.5 --devices-cpu 0.15)
/usr/bin/python3 - "$tmp/one.json" > "$tmp/pair.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
p["stages"][0].update({"replicas": 2, "cpu_quota": [0.3, 0.15]})
print(json.dumps(p))
PY
both=$(point "both" "$tmp/pair.json" 2 13.5)
/usr/bin/python3 - "$fast" "$slow" "$both" <<'PY' | tee -a "$result"
import json, sys
fast, slow, both = (json.loads(a) for a in sys.argv[1:4])
served = {n["id"]: n.get("processed", 0) for n in both["per_node"]}
print(json.dumps({"bench": "heterogeneous", "model": "alexnet", "quotas": [0.3, 0.15],
                  "fast_alone": fast["images_per_s"], "slow_alone": slow["images_per_s"],
                  "together": both["images_per_s"],
                  "ratio": round(both["images_per_s"] / (fast["images_per_s"] + slow["images_per_s"]), 3),
                  "frames_fast": served.get("s0-r0"), "frames_slow": served.get("s0-r1"), "lost": both["lost"]}))
PY
