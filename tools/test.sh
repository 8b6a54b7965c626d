#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (unit, per-op lowering, models, fixtures, CLI).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
cd build
ctest --output-on-failure -j"$(nproc)"
