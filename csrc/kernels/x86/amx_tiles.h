// AMX tile configuration shared by the *_amx.cc kernels (include from those files only: it uses
// AMX intrinsics, and its helpers have internal linkage, so nothing here reaches other files).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace pybert {
namespace kernels {
namespace amx {

// Palette 1 with all eight tiles at their largest shape: 16 rows x 64 bytes (16 x 32 bf16,
// 16 x 64 int8, 16 x 16 fp32 / int32).  Loaded at the start of a kernel call and released
// (_tile_release) at its end, so calls interleave with any other tile user on the thread.
static inline void load_full_tile_config() {
  struct alignas(64) {
    uint8_t palette_id;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
  } cfg;
  std::memset(&cfg, 0, sizeof(cfg));
  cfg.palette_id = 1;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  // GCC does not model ldtilecfg as reading its operand: a standalone kernel built at -O2 lost
  // the stores above and died with SIGILL.  The barrier makes cfg's bytes observable first.
  __asm__ volatile("" : : "r"(&cfg) : "memory");
  _tile_loadconfig(&cfg);
}

}  // namespace amx
}  // namespace kernels
}  // namespace pybert
