#!/usr/bin/env bash
# Installs what hf2onnx needs on Debian bookworm (only what is missing), then configures and builds it.
# Used by tools/demo.sh and tools/test.sh; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# qemu-user: the INT8 tests also run ONNX Runtime as an AVX2 CPU without VNNI (qemu-x86_64 -cpu Haswell).
packages=(build-essential cmake ccache libtorch-dev libonnx-dev libprotobuf-dev protobuf-compiler libcli11-dev
          libspdlog-dev nlohmann-json3-dev libgtest-dev libopenblas0-pthread time qemu-user)
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# libtorch's BLAS is libblas.so.3: make it OpenBLAS (about 15x faster than the reference BLAS here).
openblas=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
if [ "$(update-alternatives --query libblas.so.3-x86_64-linux-gnu | sed -n 's/^Value: //p')" != "$openblas" ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo update-alternatives --set libblas.so.3-x86_64-linux-gnu "$openblas"
fi

# ONNX Runtime (CPU) and transformers.js (reference generation) for tests and benchmarks. Install scripts
# stay off: onnxruntime-node's downloads extras this machine cannot reach; sharp's prebuilt binary comes as
# an optional dependency (@img/sharp-linux-x64), and transformers.js imports sharp when it loads.
# transformers.js 4 brings the onnxruntime-node it pins (nested under it); the tests' own runner uses the
# top-level one. Reinstalled whenever tools/package-lock.json changes (a copy marks what is installed).
if ! cmp -s tools/package-lock.json tools/node_modules/.hf2onnx-installed-lock.json; then
  (cd tools && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error &&
   cp package-lock.json node_modules/.hf2onnx-installed-lock.json)
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
