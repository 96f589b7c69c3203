#!/usr/bin/env bash
# Swarm overhead on loopback, unconstrained nodes (1 thread each):
#  - per-hop latency of broker + serialization for a 100 KB tensor: ResNet18 as 1 stage and as 3
#    stages whose two cuts each send 100,352 bytes (layer4 activations); one request in flight;
#    per hop = (transit of 3 stages - transit of 1 stage) / 2, where transit is a frame's latency
#    minus the time nodes spent computing and queueing it (p50 over frames) (from the per-hop timestamps), so that
#    compute noise on a shared machine cancels out;
#  - a balanced 3-stage ResNet18 pipeline (dnnswarm plan --stages 3) against `dnnswarm bench` on
#    the whole model with the same total thread count (3).
# JSON lines on stdout and in bench/out/swarm.jsonl. ~2 minutes.
source "$(dirname "$0")/swarm_common.sh"
model=$models/bench/resnet18/resnet18.onnx
input=$models/bench/resnet18/input.npy
[ -f "$model" ] || { model=$shared/fixtures/resnet18/resnet18.onnx; input=$shared/fixtures/resnet18/input.npy; }
frames=${1:-200}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
result=$out/swarm.jsonl

cat > "$tmp/one.json" <<JSON
{"model": "resnet18", "model_path": "$model", "stages": [
  {"name": "all", "from": "/conv1/Conv", "to": "/fc/Gemm"}]}
JSON
cat > "$tmp/three.json" <<JSON
{"model": "resnet18", "model_path": "$model", "stages": [
  {"name": "a", "from": "/conv1/Conv", "to": "/layer4/layer4.0/downsample/downsample.0/Conv"},
  {"name": "b", "from": "/layer4/layer4.1/conv1/Conv", "to": "/layer4/layer4.1/conv2/Conv"},
  {"name": "c", "from": "/avgpool/GlobalAveragePool", "to": "/fc/Gemm"}]}
JSON
one=$(swarm_run "$tmp/one.json" "$input" "$frames" --window 1)
three=$(swarm_run "$tmp/three.json" "$input" "$frames" --window 1)
/usr/bin/python3 - "$one" "$three" <<'PY' | tee -a "$result"
import json, sys
one, three = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({"bench": "hop", "model": "resnet18", "tensor_bytes": 100352,
                  "transit_ms_one_stage": one["transit_ms_p50"], "transit_ms_three_stages": three["transit_ms_p50"],
                  "per_hop_ms": round((three["transit_ms_p50"] - one["transit_ms_p50"]) / 2, 3),
                  "p50_ms_one_stage": one["latency_ms_p50"], "p50_ms_three_stages": three["latency_ms_p50"]}))
PY

# Throughput: the balanced pipeline, enough requests in flight to keep every stage busy.
"$dnnswarm" plan --model "$model" --name resnet18 --devices 3 --stages 3 > "$tmp/balanced.json"
pipe=$(swarm_run "$tmp/balanced.json" "$input" "$frames" --window 8)
# The whole model in one process at the same total thread count (3), and at the machine's best.
for t in 1 2 3; do "$dnnswarm" bench --model "$model" --threads $t --seconds 10 2>/dev/null | tail -1; done > "$tmp/alone.jsonl"
/usr/bin/python3 - "$pipe" "$tmp/alone.jsonl" "$tmp/balanced.json" <<'PY' | tee -a "$result"
import json, sys
pipe, plan = json.loads(sys.argv[1]), json.load(open(sys.argv[3]))
runs = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
alone, best = runs[-1], max(runs, key=lambda r: r["images_per_s"])
print(json.dumps({"bench": "pipeline", "model": "resnet18", "stages": len(plan["stages"]),
                  "plan": " + ".join(f"[{s['begin']},{s['end']})" for s in plan["stages"]),
                  "swarm_images_per_s": pipe["images_per_s"], "run_threads": 3,
                  "run_images_per_s": alone["images_per_s"],
                  "ratio": round(pipe["images_per_s"] / alone["images_per_s"], 3),
                  "run_best_threads": best["threads"], "run_best_images_per_s": best["images_per_s"],
                  "ratio_vs_best": round(pipe["images_per_s"] / best["images_per_s"], 3), "lost": pipe["lost"]}))
PY
