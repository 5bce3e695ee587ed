#!/usr/bin/env bash
# CI: build the core with AddressSanitizer + UndefinedBehaviorSanitizer (-DPYBERT_SANITIZE=ON)
# and run the op, model, input, serving and hostile-file tests on it. Python itself is not
# instrumented, so the ASan runtime is preloaded and leak checks (Python's own) are off; any
# ASan or UBSan report aborts the run.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

pip install --no-deps --target "$out" \
  --config-settings=cmake.define.PYBERT_SANITIZE=ON \
  --config-settings=build-dir="$repo/build/sanitize" "$repo"

# libstdc++ is preloaded too: ASan's __cxa_throw interceptor needs it resolved at start-up.
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
# From $out, `python -m pytest` imports the instrumented pybert. Left out: the RSS test (ASan's
# shadow memory is not pybert's), the slowest tests under ASan (real MiniLM, the long calls
# of the GIL and close-during-a-call tests) and the counts of sleeps per call (ASan stretches a
# call's serial parts past the workers' spin, and the caller's frees and allocations between two
# calls past the grace after a call); the 8-thread test stays.
cd "$out"
core="$(python -c 'import pybert._core as c; print(c.__file__)')"
case "$core" in "$out"/*) ;; *) echo "not the instrumented core: $core" >&2; exit 1 ;; esac
ldd "$core" | grep -q libasan || { echo "$core is not built with ASan" >&2; exit 1; }
python -m pytest -q -p no:cacheprovider \
  "$repo/tests/test_ops.py" "$repo/tests/test_model.py" "$repo/tests/test_inputs.py" \
  "$repo/tests/test_serving.py" "$repo/tests/test_threads.py" "$repo/tests/test_hostile_files.py" \
  "$repo/tests/test_pooling.py" \
  -k "not test_memory_after_load and not test_minilm_checkpoint and not test_gil_is_released \
      and not test_close_during_a_call and not test_workers_sleep_once_per_call \
      and not test_back_to_back_calls_keep_the_workers_awake"
# The pooled decoder GEMM (SPLADE's epilogue), log1p, maxsim, and one model run each of SPLADE
# and of multi-vector with query-only tokens (one in chunks).
python -m pytest -q -p no:cacheprovider "$repo/tests/test_retrieval.py" \
  -k "pooled_linear or log1p_activation or maxsim_matches \
      or (splade_matches and encode_query) or (multivector_matches and colbert_unattended) \
      or (queries_in_chunks and colbert_unattended)"
# The masked-LM head on packed rows (RoBERTa's names, forward_at), the static route of
# inference-free SPLADE, the sparse autoencoder (CSR) and the sparse similarity op.
python -m pytest -q -p no:cacheprovider "$repo/tests/test_masked_lm_families.py" \
  "$repo/tests/test_sparse_router.py" "$repo/tests/test_retrieval.py" \
  -k "(masked_lm_logits and roberta) or (routes_match and inference_free and call1) \
      or (autoencoder and mean_normalize) or (similarity_and_sparsity and max_relu)"
# int8's feed-forward in strips (FFN1's result quantized from a scratch into FFN2's staged rows,
# the padding rows after the last strip) and the large AMX output blocks.
python -m pytest -q -p no:cacheprovider "$repo/tests/test_precision.py" \
  -k "int8_feed_forward_in_strips or large_gemm_blocks"
# A batch in chunks of whole sequences whose last layer computes the first rows alone.
python -m pytest -q -p no:cacheprovider "$repo/tests/test_heads.py" -k "chunked_batch"
