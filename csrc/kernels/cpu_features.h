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
  std::string isa_cap;       // the PYBERT_ISA cap applied ("avx2", "avx512"), or empty
};

// Detected once. PYBERT_ISA in the environment caps the result, to test the fallbacks:
// "avx512" turns AMX off, "avx2" everything above AVX2 + FMA; other values are ignored.
const CpuFeatures& cpu_features();

// The widest fp32 kernel family this process uses: "avx512" or "avx2".
std::string fp32_isa();

}  // namespace pybert::kernels
