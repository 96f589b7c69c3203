#!/usr/bin/env bash
# Installs what dnnswarm needs to build, test and run, from Debian 12's archive. Idempotent and quick
# when everything is already there.
set -euo pipefail
PKGS=(
  build-essential cmake pkg-config            # toolchain
  libeigen3-dev                               # kernels baseline
  libboost-program-options-dev                # CLI and config files
  libflatbuffers-dev flatbuffers-compiler     # tensor and control messages, model format
  libonnx-dev libprotobuf-dev protobuf-compiler   # ONNX import
  libpaho-mqttpp-dev libpaho-mqtt-dev libssl-dev   # MQTT v5 client (Paho CMake config needs OpenSSL)
  nlohmann-json3-dev                          # JSON: plan files, result lines, HA discovery
  libturbojpeg0-dev libspng-dev               # camera frames: JPEG and PNG decoding
  mosquitto mosquitto-clients                 # broker for the local swarm and the tests
  openssl                                     # tests: a CA and certificates for the TLS broker
  libgtest-dev                                # tests
  libonnx-testdata                            # ONNX operator conformance cases (tests)
  python3-minimal                             # tests: a process that touches an exact amount of memory
  python3-pil python3-numpy                   # tests: independent image decoder for reference tensors
  iproute2 procps                             # emulated devices: network namespaces, tc; ps
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
