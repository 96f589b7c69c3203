#!/usr/bin/env bash
# `cmake --install` gives a dnnswarm that runs where it lands: installed into a temporary prefix,
# moved elsewhere, and run from another folder with no DNNSWARM_HOME, the binary finds its plans,
# models and broker config under <prefix>/share/dnnswarm and answers the demo's frames.
# Usage: install-test.sh BUILD_DIR   (ctest passes the build folder)
set -euo pipefail
build=${1:?usage: install-test.sh BUILD_DIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "install-test: FAILED: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$work/staged" >/dev/null
# Relocatable: nothing in it may depend on where it was installed.
mv "$work/staged" "$work/prefix"
prefix=$work/prefix
data=$prefix/share/dnnswarm
for f in bin/dnnswarm share/dnnswarm/deploy/lenet5-swarm.json share/dnnswarm/models/lenet5/lenet5_mnist_b1.onnx \
         share/dnnswarm/models/lenet5/test_inputs_all.npy share/dnnswarm/models/lenet5/test_labels_all.npy \
         share/dnnswarm/broker-config/mosquitto.conf share/dnnswarm/deploy/dnnswarm-node@.service; do
  [ -f "$prefix/$f" ] || fail "$f is not installed"
done
[ -x "$data/deploy/provision-device.sh" ] || fail "deploy/provision-device.sh is not installed as a program"
# Every installed plan names a model that is installed too (paths are relative to the plan file).
for plan in "$data"/deploy/*.json; do
  model=$(sed -n 's/^ *"model_path": *"\([^"]*\)".*/\1/p' "$plan")
  [ -n "$model" ] || fail "$plan names no model_path"
  case "$model" in /*) ;; *) model=$(dirname "$plan")/$model ;; esac
  [ -f "$model" ] || fail "$(basename "$plan") names $model, which is not installed"
done

cd "$work"   # not the source tree, not the build folder
unset DNNSWARM_HOME
version=$("$prefix/bin/dnnswarm" --version)
[[ "$version" =~ ^dnnswarm\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "--version printed '$version'"

# The default demo, from the installed data only: 50 digits through the default plan's 6 nodes.
out=$("$prefix/bin/dnnswarm" swarm --frames 50 --window 8 2>"$work/swarm.err") || { cat "$work/swarm.err" >&2; fail "swarm exited $?"; }
line=$(echo "$out" | tail -n 1)
echo "installed swarm: $line"
[[ "$line" == *'"frames":50,'* ]] || fail "swarm answered: $line"
[[ "$line" == *'"lost":0,'* ]] || fail "swarm lost frames: $line"
correct=$(echo "$line" | sed -n 's/.*"correct":\([0-9]*\).*/\1/p')
if [ -z "$correct" ] || [ "$correct" -lt 45 ]; then fail "only '$correct' of 50 digits right (LeNet-5 gets 97.85 %): $line"; fi

# Without its data beside it the binary says where it looked, in one line, exit code 1.
mv "$data" "$data.moved"
set +e
err=$("$prefix/bin/dnnswarm" swarm --frames 5 2>&1 >/dev/null)
rc=$?
set -e
[ "$rc" = 1 ] || fail "swarm without its data exited $rc"
[[ "$err" == *"cannot find dnnswarm's data"* ]] || fail "swarm without its data said: $err"
echo "install-test: passed ($version, $(du -sh "$prefix" | cut -f1) installed)"
