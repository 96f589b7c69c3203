# Shared by the bench/swarm_*.sh scripts (sourced, not run): paths, the models they need, and a
# helper that runs one `dnnswarm swarm` configuration and prints its JSON line.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared=$(cd "$root/../shared" && pwd)
models=$root/build/models
out=$root/bench/out
dnnswarm=${DNNSWARM:-$root/build/dnnswarm}   # DNNSWARM=path overrides (e.g. another build dir)
mkdir -p "$out"
[ -n "${DNNSWARM:-}" ] || "$root/tools/build.sh" >/dev/null

# AlexNet and VGG16 are generated (fixed seeds) by ../shared/tools/make_models.py with Debian's
# PyTorch, then converted to .dnns so that every node reads only its own slice of the weights.
need_models() {
  if [ ! -f "$models/bench/alexnet/alexnet.onnx" ] || [ ! -f "$models/large/vgg16/vgg16.onnx" ]; then
    apt-get -o DPkg::Lock::Timeout=600 install -y -q python3-torch python3-torchvision python3-onnx \
      python3-sklearn python3-numpy >/dev/null
    /usr/bin/python3 "$shared/tools/make_models.py" --out "$models" --only alexnet vgg16 >&2
  fi
  [ -f "$models/alexnet.dnns" ] || "$dnnswarm" convert --model "$models/bench/alexnet/alexnet.onnx" --output "$models/alexnet.dnns" >&2
  [ -f "$models/vgg16.dnns" ] || "$dnnswarm" convert --model "$models/large/vgg16/vgg16.onnx" --output "$models/vgg16.dnns" >&2
}

# swarm_run PLAN INPUT FRAMES [swarm options...]: the run's JSON line (per-node details included).
swarm_run() {
  local plan=$1 input=$2 frames=$3
  shift 3
  "$dnnswarm" swarm --plan "$plan" --input "$input" --frames "$frames" --details --quiet "$@"
}

# json_get JSON KEY: one top-level field of a JSON line.
json_get() { /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
