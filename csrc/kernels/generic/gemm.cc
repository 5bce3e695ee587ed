// The generic family's fp32 GEMM and attention: portable C++ the compiler vectorizes for the
// baseline ISA (SSE2 on x86-64, NEON on aarch64).  Any CPU runs it; PYBERT_ISA=generic forces it.
//
// GEMM: micro-tiles of kMR rows x kNR columns accumulated in a local array (the compiler keeps
// it in vector registers), A read in place, the packed panel slice (kKC, kNR) streamed per k.
#include "kernels/families.h"
#include "kernels/scalar_kernels.h"

namespace pybert {
namespace kernels {
namespace generic {
namespace {

constexpr int64_t kNR = 16;   // panel width
constexpr int kMR = 4;        // tile rows
constexpr int64_t kKC = 256;  // depth block: the (kKC, kNR) panel slice is 16 KB
constexpr int64_t kMC = 128;  // rows per block (multiple of kMR)

// C (R, cols) [+]= A (R, kc; row stride lda) @ B (kc, kNR; packed panel slice)[:, :cols]
template <int R>
void micro_tile(const float* A, int64_t lda, const float* B, int64_t kc, float* C, int64_t ldc,
                int64_t cols, bool accumulate) {
  float acc[R][kNR];
  for (int i = 0; i < R; ++i)
    for (int64_t j = 0; j < kNR; ++j) acc[i][j] = accumulate && j < cols ? C[i * ldc + j] : 0.0f;
  for (int64_t k = 0; k < kc; ++k) {
    const float* b = B + k * kNR;
    for (int i = 0; i < R; ++i) {
      const float a = A[i * lda + k];
      for (int64_t j = 0; j < kNR; ++j) acc[i][j] += a * b[j];
    }
  }
  for (int i = 0; i < R; ++i)
    for (int64_t j = 0; j < cols; ++j) C[i * ldc + j] = acc[i][j];
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

// Attention one query row at a time (attention_rows): scores (len) in the scratch.
int64_t attention_scratch_floats(int64_t len, int64_t d_head) {
  (void)d_head;
  return len;
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
