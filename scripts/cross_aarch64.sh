#!/usr/bin/env bash
# Compiles the C++ core (the pybert_core static library: every kernel family of aarch64, no Python
# module) with Debian's cross compiler, g++-aarch64-linux-gnu. CI runs it on every run (.ci/run);
# running the arm kernels takes scripts/arm64_check.sh (qemu).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/aarch64}
py=$(python -c 'import sys; print(sys.executable)')
cmake -S . -B "$build" -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
  -DPython_EXECUTABLE="$py" \
  -DPython_INCLUDE_DIR="$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')" \
  -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" > /dev/null
ninja -C "$build" -j "${JOBS:-2}" pybert_core
