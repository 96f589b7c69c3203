#!/usr/bin/env bash
# dnnswarm vs ONNX Runtime 1.30 on one device, side by side in one run: LeNet-5, MobileNetV2,
# ResNet18, AlexNet, VGG16 at 1 and 2 threads, in ROUNDS (default 3) alternating rounds. Writes
# bench/out/engine.jsonl and the "Engine" section of docs/benchmarks.md. About 4 minutes a round
# (ROUNDS=8 took 33 minutes at 6162a1b), and ~75 s to generate the models the first time.
#   [ROUNDS=n] bench/engine_vs_ort.sh [model ...]      (default: all five)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=$(cd "$root/../shared" && pwd)
models=$root/build/models
out=$root/bench/out
mkdir -p "$out"
"$root/tools/build.sh" >/dev/null

# Reference models: generated (fixed seeds) by ../shared/tools/make_models.py with Debian's PyTorch.
if [ ! -f "$models/large/vgg16/vgg16.onnx" ]; then
  apt-get -o DPkg::Lock::Timeout=600 install -y -q python3-torch python3-torchvision python3-onnx \
    python3-sklearn python3-numpy >/dev/null
  /usr/bin/python3 "$shared/tools/make_models.py" --out "$models" >&2
fi
# ONNX Runtime's Node.js binding; the skip stops its installer fetching CUDA parts (see ../shared).
if [ ! -d "$root/build/ort/node_modules/onnxruntime-node" ]; then
  mkdir -p "$root/build/ort"
  (cd "$root/build/ort" && ONNXRUNTIME_NODE_INSTALL=skip npm install --silent onnxruntime-node@1.30.0 >&2)
fi

declare -A onnx=([lenet5]=lenet5_mnist/lenet5_mnist_b1.onnx [mobilenet_v2]=bench/mobilenet_v2/mobilenet_v2.onnx
  [resnet18]=bench/resnet18/resnet18.onnx [alexnet]=bench/alexnet/alexnet.onnx [vgg16]=large/vgg16/vgg16.onnx)
declare -A input=([lenet5]=lenet5_mnist/test_inputs_100.npy [mobilenet_v2]=bench/mobilenet_v2/input.npy
  [resnet18]=bench/resnet18/input.npy [alexnet]=bench/alexnet/input.npy [vgg16]=large/vgg16/input.npy)
list=("$@"); [ ${#list[@]} -gt 0 ] || list=(lenet5 mobilenet_v2 resnet18 alexnet vgg16)
rounds=${ROUNDS:-3}

result=$out/engine.jsonl
: > "$result"
# The tests that need the generated AlexNet and VGG16 (too large for CI, so not in ctest).
for t in format-slice-memory-test format-cli-test; do
  ok=true
  DNN_MODELS_DIR=$models "$root/build/$t" --gtest_filter='*WhenGenerated' >&2 || ok=false
  echo "{\"check\": \"tests\", \"name\": \"$t --gtest_filter='*WhenGenerated'\", \"ok\": $ok}" >> "$result"
done
for m in "${list[@]}"; do
  # Numerics first: dnnswarm's output against the PyTorch reference.
  ref=${input[$m]/input/ref_output}; [ "$m" = lenet5 ] && ref=lenet5_mnist/ref_logits_100.npy
  "$root/build/dnnswarm" run --batch 1 --model "$models/${onnx[$m]}" --input "$models/${input[$m]}" --output "$out/$m-y.npy" 2>/dev/null
  /usr/bin/python3 - "$out/$m-y.npy" "$models/$ref" "$m" >> "$result" <<'PY'
import json, sys, numpy as np
y, r = np.load(sys.argv[1]), np.load(sys.argv[2])
y = y[: r.shape[0]]
err = float(np.abs(y - r).max()); tol = 1e-4 * float(np.abs(r).max()) + 1e-5
print(json.dumps({"check": "numerics", "model": sys.argv[3], "max_abs_err": err, "tolerance": tol, "ok": err <= tol}))
PY
  # Rounds alternate the runtimes, so a slow spell of a shared (virtual) machine hits both alike;
  # the report takes each runtime's best round and shows the spread.
  for t in 1 2; do
    for round in $(seq "$rounds"); do
      (cd "$root/build/ort" && MODELS_DIR=$models NODE_PATH=$root/build/ort/node_modules node "$shared/tools/bench_ort.js" "$m" "$t") \
        | /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(json.dumps({"runtime":"onnxruntime","model":d["model"],"threads":d["threads"],"images_per_s":d["images_per_s"],"peak_rss_mb":d["peak_rss_mb"]}))' >> "$result"
      "$root/build/dnnswarm" bench --model "$models/${onnx[$m]}" --threads "$t" --seconds 7 \
        | /usr/bin/python3 -c "import json,sys; d=json.loads(sys.stdin.read()); d.update(runtime='dnnswarm', model='$m'); print(json.dumps(d))" >> "$result"
      tail -2 "$result" >&2
    done
  done
done
/usr/bin/python3 "$root/bench/report_engine.py" "$result" "$root/docs/benchmarks.md" "ROUNDS=$rounds bench/engine_vs_ort.sh ${*:-}"
