// The one dispatch point (dispatch.h), and the row kernels' free functions forwarding to the
// picked VectorMath table.  Baseline flags: this file runs before any family is known.
#include "kernels/dispatch.h"

#include "kernels/cpu_features.h"
#include "kernels/families.h"
#include "kernels/layer_norm.h"
#include "kernels/matmul.h"
#include "kernels/scores.h"
#include "kernels/softmax.h"

namespace pybert::kernels {
namespace {

constexpr KernelSet kGeneric{&kGenericFp32Gemm, &kGenericAttention, &kGenericInt8Gemm, nullptr,
                             &kGenericVectorMath};

#if defined(__x86_64__)
// The Eigen row kernels with the AVX-512 LayerNorm (three passes over a row instead of five, 16
// lanes: 768 columns 1.3x Eigen's AVX2 one in cache, 1.1-1.3x from memory).
const VectorMath* avx512_vector_math() {
  static const VectorMath table = [] {
    VectorMath t = kEigenVectorMath;
    t.layer_norm = kAvx512LayerNorm;
    return t;
  }();
  return &table;
}
#endif

KernelSet select(const CpuFeatures& f) {
#if defined(__x86_64__)
  if (!(f.avx2 && f.fma)) return kGeneric;
  KernelSet s;
  s.fp32 = f.avx512 ? &kAvx512Fp32Gemm : &kAvx2Fp32Gemm;
  s.attention = f.avx512 ? &kAvx512Attention : &kEigenAttention;
  s.int8 = f.amx_int8 && f.avx512_vnni ? &kAmxInt8Gemm
           : f.avx512_vnni             ? &kVnniInt8Gemm
                                       : &kAvx2Int8Gemm;
  // bf16 only on AMX: AVX512-BF16 dot products lose to fp32 FMA, so without AMX it runs fp32.
  s.bf16 = f.amx_bf16 && f.avx512_bf16 ? &kAmxBf16Gemm : nullptr;
  s.vector = f.avx512 ? avx512_vector_math() : &kEigenVectorMath;
  return s;
#elif defined(__aarch64__)
  if (!f.neon) return kGeneric;
  KernelSet s;
  s.fp32 = &kNeonFp32Gemm;
  s.attention = &kEigenAttention;
  s.int8 = f.i8mm ? &kI8mmInt8Gemm : f.dotprod ? &kDotprodInt8Gemm : &kGenericInt8Gemm;
  s.bf16 = f.bf16 ? &kNeonBf16Gemm : nullptr;
  s.vector = &kEigenVectorMath;
  return s;
#else
  (void)f;
  return kGeneric;
#endif
}

}  // namespace

const KernelSet& kernel_set() {
  static const KernelSet set = select(cpu_features());
  return set;
}

void layer_norm(const float* x, const float* residual, float* y, int64_t rows, int64_t cols,
                const float* gamma, const float* beta, float eps) {
  kernel_set().vector->layer_norm(x, residual, y, rows, cols, gamma, beta, eps);
}

void softmax(float* x, int64_t n, float scale) { kernel_set().vector->softmax(x, n, scale); }

void activate(float* x, int64_t n, Activation act) { kernel_set().vector->activate(x, n, act); }

void bias_activate(float* y, int64_t rows, int64_t cols, int64_t ldy, const float* bias,
                   Activation act) {
  kernel_set().vector->bias_activate(y, rows, cols, ldy, bias, act);
}

void gemm_nt(const float* A, int64_t lda, const float* W, int64_t k, int64_t m, int64_t n0,
             int64_t n1, float* C, int64_t ldc) {
  kernel_set().vector->matmul_nt(A, lda, W + n0 * k, k, m, n1 - n0, k, C, ldc);
}

void matmul_nt(const float* A, int64_t lda, const float* B, int64_t ldb, int64_t m, int64_t n,
               int64_t k, float* C, int64_t ldc) {
  kernel_set().vector->matmul_nt(A, lda, B, ldb, m, n, k, C, ldc);
}

void matmul_nn(const float* A, int64_t lda, const float* B, int64_t ldb, int64_t m, int64_t n,
               int64_t k, float* C, int64_t ldc) {
  kernel_set().vector->matmul_nn(A, lda, B, ldb, m, n, k, C, ldc);
}

void pool_tokens(const float* x, const int64_t* row, const int64_t* position, int64_t n,
                 int64_t hidden, PoolMode mode, int64_t skip, float* out) {
  kernel_set().vector->pool_tokens(x, row, position, n, hidden, mode, skip, out);
}

void l2_normalize(float* x, int64_t n, float eps) { kernel_set().vector->l2_normalize(x, n, eps); }

void sigmoid(float* x, int64_t n) { kernel_set().vector->sigmoid(x, n); }

}  // namespace pybert::kernels
