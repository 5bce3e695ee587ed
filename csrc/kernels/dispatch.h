// The one dispatch point: the kernel tables this process runs, resolved once from the CPU's
// features (cpu_features(), PYBERT_ISA caps included).  Ops take their kernels from here; no
// other file chooses between ISAs.
#pragma once

#include "kernels/attention.h"
#include "kernels/gemm.h"
#include "kernels/gemm_lowp.h"
#include "kernels/vector_math.h"

namespace pybert::kernels {

struct KernelSet {
  const Fp32Gemm* fp32;
  const AttentionKernels* attention;  // fp32 attention
  const Int8Gemm* int8;
  const Bf16Gemm* bf16;  // null: precision="bf16" runs the fp32 kernels (and says so)
  const VectorMath* vector;
};

const KernelSet& kernel_set();

}  // namespace pybert::kernels
