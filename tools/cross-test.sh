#!/usr/bin/env bash
# Cross-builds dnnswarm for ARM and runs the whole test suite under user-mode qemu, from a Debian 12
# x86-64 machine. Usage: tools/cross-test.sh aarch64|armhf [ctest args]
# Installs what it needs (multiarch -dev packages, cross g++, qemu-user), builds into
# build-aarch64 / build-armhf, runs ctest there. Mosquitto in the tests stays the host's; only our
# binaries are emulated (DNN_BINARY is a wrapper that starts dnnswarm through qemu).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
arch=${1:?usage: tools/cross-test.sh aarch64|armhf [ctest args]}
shift
case "$arch" in
  aarch64) deb=arm64 triple=aarch64-linux-gnu ;;
  armhf) deb=armhf triple=arm-linux-gnueabihf ;;
  *) echo "cross-test: unknown architecture '$arch' (aarch64 or armhf)" >&2; exit 1 ;;
esac

# Host tools, then the target's libraries (Eigen and nlohmann-json are headers, shared by all).
HOST_PKGS=(g++-$triple qemu-user cmake flatbuffers-compiler protobuf-compiler libeigen3-dev
           nlohmann-json3-dev mosquitto python3-minimal)
TARGET_PKGS=(libboost-program-options-dev libflatbuffers-dev libonnx-dev libprotobuf-dev
             libpaho-mqttpp-dev libpaho-mqtt-dev libssl-dev libgtest-dev libturbojpeg0-dev libspng-dev)
"$root/tools/deps.sh"
missing=()
for p in "${HOST_PKGS[@]}" "${TARGET_PKGS[@]/%/:$deb}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "cross-test: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  dpkg --print-foreign-architectures | grep -qx "$deb" || $SUDO dpkg --add-architecture "$deb"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
  # libonnxifi claims to be co-installable across architectures but every copy ships
  # /usr/lib/libonnxifi.so; nothing here links it, so the foreign copy leaves that file out.
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
    -o Dpkg::Options::=--path-exclude=/usr/lib/libonnxifi.so "${missing[@]}" >/dev/null
fi

build="$root/build-$arch"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release \
  --toolchain "$root/cmake/toolchains/$triple.cmake" "${launcher[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure -j"$(nproc)" "$@"
