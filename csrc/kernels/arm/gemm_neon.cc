// NEON fp32 GEMM micro-kernel (armv8-a baseline: Advanced SIMD is always there).
//
// Same contract and blocking as x86/gemm_avx2.cc: weights packed at load into panels of kNR = 12
// columns (pack_panels), A read in place, a kMR x kNR = 8 x 12 tile in 24 of the 32 q registers
// (3 per row), 3 panel vectors and one broadcast A scalar per k: acc += a[i][k] * B[k, :] by
// FMLA (by element).  The epilogue runs on each finished tile while it is in L1.
// ODR: internal-linkage helpers only (see blocking.h).
#include <arm_neon.h>

#include "kernels/blocking.h"
#include "kernels/families.h"
#include "kernels/scalar_kernels.h"

namespace pybert {
namespace kernels {
namespace neon {
namespace {

constexpr int kNV = 3;            // q vectors per tile row
constexpr int64_t kNR = 4 * kNV;  // panel width (columns) = 12
constexpr int kMR = 8;            // tile rows
constexpr int64_t kKC = 256;      // depth block: the (kKC, 12) panel slice is 12 KB (L1)
constexpr int64_t kMC = 128;      // rows per A block (multiple of kMR)

// C (R, cols) [+]= A (R, kc; row stride lda) @ B (kc, kNR; packed panel slice)[:, :cols]
template <int R>
void micro_tile(const float* A, int64_t lda, const float* B, int64_t kc, float* C, int64_t ldc,
                int64_t cols, bool accumulate) {
  float32x4_t acc[R][kNV];
  if (accumulate && cols == kNR) {
    for (int i = 0; i < R; ++i)
      for (int v = 0; v < kNV; ++v) acc[i][v] = vld1q_f32(C + i * ldc + 4 * v);
  } else if (accumulate) {
    float tile[R][kNR] = {};
    for (int i = 0; i < R; ++i)
      for (int64_t j = 0; j < cols; ++j) tile[i][j] = C[i * ldc + j];
    for (int i = 0; i < R; ++i)
      for (int v = 0; v < kNV; ++v) acc[i][v] = vld1q_f32(tile[i] + 4 * v);
  } else {
    for (int i = 0; i < R; ++i)
      for (int v = 0; v < kNV; ++v) acc[i][v] = vdupq_n_f32(0.0f);
  }
  const float* a[R];
  for (int i = 0; i < R; ++i) a[i] = A + i * lda;
  for (int64_t k = 0; k < kc; ++k) {
    float32x4_t b[kNV];
    for (int v = 0; v < kNV; ++v) b[v] = vld1q_f32(B + k * kNR + 4 * v);
    for (int i = 0; i < R; ++i) {
      const float ai = a[i][k];
      for (int v = 0; v < kNV; ++v) acc[i][v] = vfmaq_n_f32(acc[i][v], b[v], ai);
    }
  }
  if (cols == kNR) {
    for (int i = 0; i < R; ++i)
      for (int v = 0; v < kNV; ++v) vst1q_f32(C + i * ldc + 4 * v, acc[i][v]);
    return;
  }
  float tile[R][kNR];
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < kNV; ++v) vst1q_f32(tile[i] + 4 * v, acc[i][v]);
  for (int i = 0; i < R; ++i)
    for (int64_t j = 0; j < cols; ++j) C[i * ldc + j] = tile[i][j];
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

}  // namespace
}  // namespace neon

constexpr Fp32Gemm kNeonFp32Gemm{"neon",        neon::kNR, neon::kMR, neon::workspace_floats,
                                 neon::gemm,    neon::choose_blocks, nullptr, nullptr, nullptr};

}  // namespace kernels
}  // namespace pybert
