#!/usr/bin/env bash
# Expected cycles of the kernels' hot loops on ARM cores, from llvm-mca (no ARM hardware needed).
# Compiles node/kernels/{gemm,depthwise,fully_connected}.cpp with the cross g++ (-S, with the
# DNN_MCA_BEGIN/END markers of simd.h turned on), cuts out each marked loop body, and prints a
# Markdown table: cycles per iteration against the FMA bound (FMAs per iteration / vector FMAs per
# cycle, the latter measured by llvm-mca on independent FMAs), and stack accesses in the loop.
# Usage: tools/kernel-mca.sh [aarch64|armhf]   (default aarch64; tools/cross-test.sh installs g++)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
arch=${1:-aarch64}
mca=$(command -v llvm-mca || command -v llvm-mca-14 || true)
[ -n "$mca" ] || { echo "kernel-mca: llvm-mca not found (apt-get install llvm)" >&2; exit 1; }
case "$arch" in
  aarch64) cxx=aarch64-linux-gnu-g++ triple=aarch64 cpus="cortex-a72 cortex-a76" flags=() comment='//'
           fma_probe=$(for i in 0 1 2 3 4 5 6 7; do echo "fmla v$i.4s, v8.4s, v9.4s"; done) ;;
  armhf) cxx=arm-linux-gnueabihf-g++ triple=thumbv7-linux-gnueabihf cpus="cortex-a57" comment='@'
         flags=(-march=armv7-a -mfpu=neon-vfpv4 -mfloat-abi=hard)
         fma_probe=$(for i in 0 1 2 3 4 5 6 7; do echo "vfma.f32 q$i, q8, q9"; done) ;;
  *) echo "kernel-mca: unknown architecture '$arch' (aarch64 or armhf)" >&2; exit 1 ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# llvm-mca's cycles per iteration of an instruction block (steady state over 500 iterations).
cycles() { "$mca" -mtriple="$triple" -mcpu="$1" -iterations=500 "$2" 2>/dev/null |
           awk '/^Total Cycles:/ {printf "%.1f", $3 / 500}'; }

echo "| loop | core | instructions | FMAs | cycles/iter | FMA bound | stack accesses |"
echo "|---|---|---|---|---|---|---|"
for cpu in $cpus; do
  echo "$fma_probe" >"$tmp/probe.s"
  per_fma=$(awk -v c="$(cycles "$cpu" "$tmp/probe.s")" 'BEGIN {printf "%.3f", c / 8}')
  for src in gemm depthwise fully_connected; do
    cpu_flag=("-mcpu=$cpu"); [ "$arch" = armhf ] && cpu_flag=()
    "$cxx" -std=gnu++17 -O3 -DNDEBUG "${cpu_flag[@]}" "${flags[@]}" -fno-schedule-insns -DDNN_MCA_MARKERS -S \
      -I"$root/node" -I/usr/include/eigen3 "$root/node/kernels/$src.cpp" -o "$tmp/$src.s"
    # Each marked region once (the first copy: template instances repeat the same loop), without
    # directives and compiler comments.
    for name in $(sed -n "s|.*$comment LLVM-MCA-BEGIN \(.*\)|\1|p" "$tmp/$src.s" | sort -u); do
      awk -v b="LLVM-MCA-BEGIN $name" -v e="LLVM-MCA-END $name" '
        index($0, b) && !done {on = 1; next}
        index($0, e) && on {on = 0; done = 1}
        on && $1 !~ /^(#|\/\/|@|\.)/ && NF' "$tmp/$src.s" >"$tmp/region-$name.s"
      n=$(wc -l <"$tmp/region-$name.s")
      f=$(grep -cE '^\s*(fmla|vfma)' "$tmp/region-$name.s" || true)
      sp=$(grep -cE '\[sp|sp\]|\{sp' "$tmp/region-$name.s" || true)
      c=$(cycles "$cpu" "$tmp/region-$name.s")
      bound=$(awk -v f="$f" -v p="$per_fma" 'BEGIN {printf "%.1f", f * p}')
      echo "| $name | $cpu | $n | $f | $c | $bound | $sp |"
    done
  done
done
