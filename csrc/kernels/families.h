// The kernel tables each ISA family publishes (defined in its own folder, as constant data: no
// code of a family runs before dispatch.cc has picked it).
//   generic/  portable C++, baseline flags: any CPU (PYBERT_ISA=generic forces it)
//   eigen/    the row kernels and small products on Eigen, built for the architecture's SIMD
//             (x86-64: AVX2 + FMA; aarch64: NEON), used with the x86 and arm families
//   x86/      AVX2 + FMA, AVX-512, AVX512-VNNI, AMX (one flag set per file suffix)
//   arm/      NEON (armv8-a), dot-product, i8mm, bf16 (one flag set per file suffix)
#pragma once

#include "kernels/attention.h"
#include "kernels/gemm.h"
#include "kernels/gemm_lowp.h"
#include "kernels/vector_math.h"

namespace pybert::kernels {

extern const Fp32Gemm kGenericFp32Gemm;
extern const AttentionKernels kGenericAttention;
extern const Int8Gemm kGenericInt8Gemm;
extern const VectorMath kGenericVectorMath;

extern const VectorMath kEigenVectorMath;
extern const AttentionKernels kEigenAttention;  // Eigen products around a (len, len) score matrix

#if defined(__x86_64__) || defined(_M_X64)
extern const Fp32Gemm kAvx2Fp32Gemm;
extern const Fp32Gemm kAvx512Fp32Gemm;
extern const AttentionKernels kAvx512Attention;
extern const Int8Gemm kAvx2Int8Gemm;
extern const Int8Gemm kVnniInt8Gemm;
extern const Int8Gemm kAmxInt8Gemm;
extern const Bf16Gemm kAmxBf16Gemm;
// LayerNorm on AVX-512 (x86/layer_norm_avx512.cc): with AVX-512 the Eigen row kernels run with
// it in place of Eigen's (dispatch.cc).
extern const decltype(VectorMath::layer_norm) kAvx512LayerNorm;
#endif

#if defined(__aarch64__)
extern const Fp32Gemm kNeonFp32Gemm;
extern const Int8Gemm kDotprodInt8Gemm;
extern const Int8Gemm kI8mmInt8Gemm;
extern const Bf16Gemm kNeonBf16Gemm;
#endif

}  // namespace pybert::kernels
