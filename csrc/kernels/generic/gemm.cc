// The generic family's fp32 GEMM and attention: portable C++ for the baseline ISA (SSE2 on
// x86-64, NEON on aarch64).  Any CPU runs it; PYBERT_ISA=generic forces it.
//
// GEMM: micro-tiles of kMR rows x kNR columns held in vectors of 4 floats (GCC / clang vector
// extensions: one SSE2 or NEON register each; 12 accumulators, 2 panel vectors and a broadcast
// fit the 16 registers SSE2 has), A read in place, the packed panel slice (kKC, kNR) streamed
// per k.  (Plain float arrays for the tile were left to the auto-vectorizer, which spilled
// them: 10x slower.)
#include <cstring>

#include "kernels/families.h"
#include "kernels/scalar_kernels.h"

namespace pybert {
namespace kernels {
namespace generic {
namespace {

typedef float Vec4 __attribute__((vector_size(16)));  // 4 fp32 lanes: one SSE2 / NEON register

constexpr int kNV = 2;            // vectors per tile row
constexpr int64_t kNR = 4 * kNV;  // panel width = 8
constexpr int kMR = 6;            // tile rows
constexpr int64_t kKC = 256;      // depth block: the (kKC, kNR) panel slice is 8 KB
constexpr int64_t kMC = 120;      // rows per block (multiple of kMR)

// C (R, cols) [+]= A (R, kc; row stride lda) @ B (kc, kNR; packed panel slice)[:, :cols]
template <int R>
void micro_tile(const float* A, int64_t lda, const float* B, int64_t kc, float* C, int64_t ldc,
                int64_t cols, bool accumulate) {
  float tile[R][kNR] = {};  // C's columns [0, cols) in and out (the vectors span kNR)
  if (accumulate)
    for (int i = 0; i < R; ++i) std::memcpy(tile[i], C + i * ldc, size_t(cols) * sizeof(float));
  Vec4 acc[R][kNV];
  std::memcpy(acc, tile, sizeof acc);
  for (int64_t k = 0; k < kc; ++k) {
    Vec4 b[kNV];
    std::memcpy(b, B + k * kNR, sizeof b);
    for (int i = 0; i < R; ++i) {
      const float a = A[i * lda + k];
      const Vec4 av = {a, a, a, a};
      for (int v = 0; v < kNV; ++v) acc[i][v] += av * b[v];
    }
  }
  std::memcpy(tile, acc, sizeof acc);
  for (int i = 0; i < R; ++i) std::memcpy(C + i * ldc, tile[i], size_t(cols) * sizeof(float));
}

size_t workspace_floats(int64_t rows, int64_t K, bool pooled) {
  (void)rows;
  (void)K;
  (void)pooled;
  return 0;  // A is read in place; a pooled tile lives on the stack (tiled_gemm)
}

void gemm(const float* A, int64_t lda, const float* packed, int64_t N, int64_t K, float* C,
          int64_t ldc, int64_t m0, int64_t m1, int64_t n0, int64_t n1, const Epilogue& ep,
          float* workspace, const BlockContext& ctx) {
  (void)N;
  (void)workspace;
  (void)ctx;
  tiled_gemm<kMR, kNR>(A, lda, packed, K, C, ldc, m0, m1, n0, n1, ep, kKC, kMC,
                       [](int rows, const float* a, int64_t lda, const float* b, int64_t kc,
                          float* c, int64_t ldc, int64_t cols, bool accumulate) {
                         with_rows<kMR>(rows, [&](auto r) {
                           micro_tile<decltype(r)::value>(a, lda, b, kc, c, ldc, cols, accumulate);
                         });
                       });
}

GemmBlocks choose_blocks(int64_t M, int64_t N, int64_t K, int n_threads) {
  (void)K;
  return split_blocks(M, N, kMR, kNR, n_threads);
}

// Attention one query row at a time (attention_rows).
int64_t attention_scratch_floats(int64_t len, int64_t d_head) {
  return attention_rows_scratch_floats(len, d_head);
}

void attention_head(const float* q, const float* k, const float* v, int64_t ld_qkv, int64_t len,
                    int64_t d_head, float scale, float* out, int64_t ld_out, float* scratch) {
  attention_rows(q, ld_qkv, k, ld_qkv, v, ld_qkv, len, d_head, scale, scratch,
                 [](float p) { return p; },
                 [&](int64_t i, int64_t t, float o) { out[i * ld_out + t] = o; });
}

}  // namespace
}  // namespace generic

constexpr Fp32Gemm kGenericFp32Gemm{"generic", generic::kNR, generic::kMR,
                                    generic::workspace_floats, generic::gemm,
                                    generic::choose_blocks, nullptr, nullptr, nullptr};
constexpr AttentionKernels kGenericAttention{generic::attention_scratch_floats,
                                             generic::attention_head};

}  // namespace kernels
}  // namespace pybert
