// Run-time detection of the ISA extensions the kernels may use.
#pragma once

#include <string>

namespace pybert::kernels {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool avx512 = false;       // F + BW + VL + DQ, with OS support for zmm state
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
  bool amx_tile = false;     // CPU has AMX and the OS granted the tile data permission
  bool amx_bf16 = false;
  bool amx_int8 = false;
};

// Detected once. PYBERT_ISA=avx2 in the environment caps the result at AVX2 (to test fallbacks).
const CpuFeatures& cpu_features();

// The widest fp32 kernel family this process uses: "avx512" or "avx2".
std::string fp32_isa();

}  // namespace pybert::kernels
