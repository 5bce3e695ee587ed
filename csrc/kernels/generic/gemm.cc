// The generic family's fp32 GEMM and attention: portable C++ the compiler vectorizes for the
// baseline ISA (SSE2 on x86-64, NEON on aarch64).  Any CPU runs it; PYBERT_ISA=generic forces it.
//
// GEMM: micro-tiles of kMR rows x kNR columns accumulated in a local array (the compiler keeps
// it in vector registers), A read in place, the packed panel slice (kKC, kNR) streamed per k.
#include "kernels/blocking.h"
#include "kernels/families.h"
#include "kernels/scalar_kernels.h"

namespace pybert {
namespace kernels {
namespace generic {
namespace {

constexpr int64_t kNR = 16;   // panel width
constexpr int kMR = 4;        // tile rows
constexpr int64_t kKC = 256;  // depth block: the (kKC, kNR) panel slice is 16 KB

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
  return 0;  // A is read in place; a pooled tile lives on the stack
}

void gemm(const float* A, int64_t lda, const float* packed, int64_t N, int64_t K, float* C,
          int64_t ldc, int64_t m0, int64_t m1, int64_t n0, int64_t n1, const Epilogue& ep,
          float* workspace, const BlockContext& ctx) {
  (void)N;
  (void)workspace;
  (void)ctx;
  const DepthBlocks depth(K, kKC);
  if (ep.pool) {  // each finished tile folded into `pooled`; C is not touched
    float tile[kMR * kNR];  // (rows, kNR)
    for (int64_t n = n0; n < n1; n += kNR) {
      const int64_t cols = n1 - n < kNR ? n1 - n : kNR;
      const float* panel = packed + (n / kNR) * K * kNR;
      for (int64_t m = m0; m < m1; m += kMR) {
        const int rows = int(m1 - m < kMR ? m1 - m : kMR);
        for (int64_t kb = 0; kb < depth.count; ++kb) {
          const int64_t k0 = kb * depth.size;
          const int64_t kc = K - k0 < depth.size ? K - k0 : depth.size;
          with_rows<kMR>(rows, [&](auto r) {
            micro_tile<decltype(r)::value>(A + m * lda + k0, lda, panel + k0 * kNR, kc, tile, kNR,
                                           cols, kb > 0);
          });
        }
        for (int i = 0; i < rows; ++i) {
          epilogue_row(tile + i * kNR, cols, m + i, n, ep);
          pool_row(tile + i * kNR, cols, m + i, n, ep);
        }
      }
    }
    return;
  }
  for (int64_t n = n0; n < n1; n += kNR) {
    const int64_t cols = n1 - n < kNR ? n1 - n : kNR;
    const float* panel = packed + (n / kNR) * K * kNR;
    for (int64_t kb = 0; kb < depth.count; ++kb) {
      const int64_t k0 = kb * depth.size;
      const int64_t kc = K - k0 < depth.size ? K - k0 : depth.size;
      for (int64_t m = m0; m < m1; m += kMR) {
        const int rows = int(m1 - m < kMR ? m1 - m : kMR);
        with_rows<kMR>(rows, [&](auto r) {
          micro_tile<decltype(r)::value>(A + m * lda + k0, lda, panel + k0 * kNR, kc,
                                         C + m * ldc + n, ldc, cols, kb > 0);
        });
      }
    }
    for (int64_t m = m0; m < m1; ++m) epilogue_row(C + m * ldc + n, cols, m, n, ep);
  }
}

GemmBlocks choose_blocks(int64_t M, int64_t N, int64_t K, int n_threads) {
  (void)K;
  return split_blocks(M, N, kMR, kNR, n_threads);
}

// Attention one query row at a time: scores (len) in the scratch, softmax, then the weighted
// sum of the values.
int64_t attention_scratch_floats(int64_t len, int64_t d_head) {
  (void)d_head;
  return len;
}

void attention_head(const float* q, const float* k, const float* v, int64_t ld_qkv, int64_t len,
                    int64_t d_head, float scale, float* out, int64_t ld_out, float* scratch) {
  float* s = scratch;  // (len) scores, then probabilities
  for (int64_t i = 0; i < len; ++i) {
    const float* qi = q + i * ld_qkv;
    float max = -INFINITY;
    for (int64_t j = 0; j < len; ++j) {
      const float* kj = k + j * ld_qkv;
      float dot = 0.0f;
      for (int64_t d = 0; d < d_head; ++d) dot += qi[d] * kj[d];
      s[j] = dot;
      max = dot > max ? dot : max;
    }
    float sum = 0.0f;
    for (int64_t j = 0; j < len; ++j) {
      s[j] = expf((s[j] - max) * scale);
      sum += s[j];
    }
    const float inv = 1.0f / sum;
    float* o = out + i * ld_out;
    for (int64_t d = 0; d < d_head; ++d) o[d] = 0.0f;
    for (int64_t j = 0; j < len; ++j) {
      const float p = s[j] * inv;
      const float* vj = v + j * ld_qkv;
      for (int64_t d = 0; d < d_head; ++d) o[d] += p * vj[d];
    }
  }
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
