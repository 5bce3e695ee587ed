// Run-time detection of the ISA extensions the kernels may use.
#pragma once

#include <string>

namespace pybert::kernels {

struct CpuFeatures {
  // x86-64 (cpuid + xgetbv)
  bool avx2 = false;
  bool fma = false;
  bool avx512 = false;       // F + BW + VL + DQ, with OS support for zmm state
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
  bool amx_tile = false;     // CPU has AMX and the OS granted the tile data permission
  bool amx_bf16 = false;
  bool amx_int8 = false;
  // aarch64 (getauxval(AT_HWCAP / AT_HWCAP2))
  bool neon = false;         // Advanced SIMD (always there on armv8-a Linux)
  bool dotprod = false;      // SDOT / UDOT (FEAT_DotProd)
  bool i8mm = false;         // SMMLA (FEAT_I8MM)
  bool bf16 = false;         // BFMMLA, BFCVT (FEAT_BF16)
  std::string isa_cap;       // the PYBERT_ISA cap applied, or empty
};

// Detected once. PYBERT_ISA in the environment caps the result, to test the fallbacks:
//   x86-64:  "avx512" turns AMX off, "avx2" everything above AVX2 + FMA,
//   aarch64: "i8mm" turns bf16 off, "dotprod" i8mm and bf16, "neon" every optional extension,
//   both:    "generic" everything (the portable C++ kernels);
// other values are ignored.
const CpuFeatures& cpu_features();

// The PYBERT_ISA values this architecture knows, widest first, ending with "generic".
const char* const* isa_caps();

}  // namespace pybert::kernels
