// Per-ISA fp32 GEMM entry points of the x86 family (include from x86/*.cc only): each namespace
// is implemented in its own translation unit compiled for that ISA and published as one
// Fp32Gemm table (kernels/families.h).
#pragma once
#include "kernels/families.h"
#include "kernels/gemm.h"

namespace pybert {
namespace kernels {

#define PYBERT_GEMM_ISA_DECLS                                                              \
  int64_t panel_width();                                                                   \
  int64_t tile_rows();                                                                     \
  size_t gemm_workspace_floats(int64_t rows, int64_t K, bool pooled);                      \
  void gemm_packed(const float* A, int64_t lda, const float* packed, int64_t N, int64_t K, \
                   float* C, int64_t ldc, int64_t m0, int64_t m1, int64_t n0, int64_t n1,  \
                   const Epilogue& ep, float* workspace, const BlockContext& ctx);         \
  GemmBlocks choose_blocks(int64_t M, int64_t N, int64_t K, int n_threads);

namespace avx512 {  // gemm_avx512.cc
PYBERT_GEMM_ISA_DECLS
Prefetch first_panel(const float* packed, int64_t N, int64_t K, int64_t n0);
size_t packed_rows_floats(int64_t M, int64_t K);
void pack_rows(const float* A, int64_t lda, int64_t M, int64_t K, int64_t s0, int64_t s1,
               float* out);
}  // namespace avx512
namespace avx2 { PYBERT_GEMM_ISA_DECLS }    // gemm_avx2.cc

#undef PYBERT_GEMM_ISA_DECLS

}  // namespace kernels
}  // namespace pybert
