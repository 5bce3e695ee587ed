// Block splits of a GEMM over threads, shared by every ISA family (see gemm.h, gemm_lowp.h).
#include "kernels/gemm.h"
#include "kernels/gemm_lowp.h"

namespace pybert {
namespace kernels {

GemmBlocks split_rows_first(int64_t M, int64_t N, int64_t mr, int64_t nr, int n_threads,
                            int64_t min_rows_per_thread) {
  const int64_t t = n_threads > 1 ? n_threads : 1;
  if (t > 1 && M >= min_rows_per_thread * t) {
    const int64_t mb = ((M + t - 1) / t + mr - 1) / mr * mr;
    return GemmBlocks{mb, (N + nr - 1) / nr * nr};
  }
  return split_blocks(M, N, mr, nr, n_threads);
}

GemmBlocks split_blocks(int64_t M, int64_t N, int64_t mr, int64_t nr, int n_threads) {
  const int64_t panels = (N + nr - 1) / nr;
  const int64_t t = n_threads > 1 ? n_threads : 1;
  // Split N first: each thread then streams only its share of the packed weight
  // (the dominant traffic for small M) while A is shared read-only.
  const int64_t n_parts = panels < t ? panels : t;
  const int64_t nb = (panels + n_parts - 1) / n_parts * nr;
  // Split M only for the threads N could not feed.
  const int64_t m_parts = (t + n_parts - 1) / n_parts;
  int64_t mb = (M + m_parts - 1) / m_parts;
  mb = (mb + mr - 1) / mr * mr;
  return GemmBlocks{mb > 0 ? mb : mr, nb};
}

GemmBlocks choose_lowp_blocks(int64_t M, int64_t N, int64_t K, int n_threads) {
  (void)K;
  // With enough rows, each thread takes whole rows: the rows it rounded / quantized itself
  // (convert_rows_bf16 and quantize_rows split rows the same way), still in its own cache, and
  // the same rows of C, which its next steps (LayerNorm, the next staging) read. Streaming the
  // whole weight per thread costs less at this size: MiniLM bf16 8x128 -11%, 32x128 -11%,
  // 1x512 -12%, int8 8x128 -7%, BERT-base bf16 8x128 -5% (2 threads, alternating runs); and
  // from 128 rows a thread rather than 256: MiniLM bf16 1x256 -5%, 1x500 -6%, int8 1x256 -9%,
  // 1x500 -2..-4%, BERT-base bf16 even.
  constexpr int64_t kMinRowsPerThread = 128;
  return split_rows_first(M, N, 32, 32, n_threads, kMinRowsPerThread);  // AMX: 2 x 2 16x16 tiles
}

}  // namespace kernels
}  // namespace pybert
