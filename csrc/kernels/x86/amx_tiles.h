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

// The tiles: 0..3 the C grid (2 x 2), 4, 5 the A tiles, 6, 7 the B tiles.
// acc (MT*16 x NT*16, row stride acc_ld bytes) [+]= A strip (MT*16 rows, row stride a_ld bytes)
// @ B tiles (NT of them, b_ld bytes apart), kt k steps of 64 bytes.  accumulate: start from
// acc (a previous k block) instead of 0.
template <bool kInt8, int MT, int NT>
static inline void tile_block(const uint8_t* A, int64_t a_ld, const uint8_t* B, int64_t b_ld,
                              int64_t kt, void* acc, int64_t acc_ld, bool accumulate) {
  uint8_t* c = static_cast<uint8_t*>(acc);
  if (accumulate) {
    _tile_loadd(0, c, acc_ld);
    if (NT > 1) _tile_loadd(1, c + 64, acc_ld);
    if (MT > 1) _tile_loadd(2, c + 16 * acc_ld, acc_ld);
    if (MT > 1 && NT > 1) _tile_loadd(3, c + 16 * acc_ld + 64, acc_ld);
  } else {
    _tile_zero(0);
    if (NT > 1) _tile_zero(1);
    if (MT > 1) _tile_zero(2);
    if (MT > 1 && NT > 1) _tile_zero(3);
  }
  for (int64_t k = 0; k < kt; ++k) {
    _tile_loadd(4, A + 64 * k, a_ld);
    if (MT > 1) _tile_loadd(5, A + 16 * a_ld + 64 * k, a_ld);
    _tile_loadd(6, B + 1024 * k, 64);
    if (NT > 1) _tile_loadd(7, B + b_ld + 1024 * k, 64);
    if constexpr (kInt8) {
      _tile_dpbssd(0, 4, 6);
      if (NT > 1) _tile_dpbssd(1, 4, 7);
      if (MT > 1) _tile_dpbssd(2, 5, 6);
      if (MT > 1 && NT > 1) _tile_dpbssd(3, 5, 7);
    } else {
      _tile_dpbf16ps(0, 4, 6);
      if (NT > 1) _tile_dpbf16ps(1, 4, 7);
      if (MT > 1) _tile_dpbf16ps(2, 5, 6);
      if (MT > 1 && NT > 1) _tile_dpbf16ps(3, 5, 7);
    }
  }
  _tile_stored(0, c, acc_ld);
  if (NT > 1) _tile_stored(1, c + 64, acc_ld);
  if (MT > 1) _tile_stored(2, c + 16 * acc_ld, acc_ld);
  if (MT > 1 && NT > 1) _tile_stored(3, c + 16 * acc_ld + 64, acc_ld);
}

// tile_block for a strip of `rows` (<= 32) rows and `cols` (<= 32) columns: the 2 x 2, 2 x 1,
// 1 x 2 or 1 x 1 tile grid that covers it.
template <bool kInt8>
static inline void tile_block_any(int rows, int64_t cols, const uint8_t* A, int64_t a_ld,
                                  const uint8_t* B, int64_t b_ld, int64_t kt, void* acc,
                                  int64_t acc_ld, bool accumulate) {
  if (rows > 16) {
    if (cols > 16)
      tile_block<kInt8, 2, 2>(A, a_ld, B, b_ld, kt, acc, acc_ld, accumulate);
    else
      tile_block<kInt8, 2, 1>(A, a_ld, B, b_ld, kt, acc, acc_ld, accumulate);
  } else {
    if (cols > 16)
      tile_block<kInt8, 1, 2>(A, a_ld, B, b_ld, kt, acc, acc_ld, accumulate);
    else
      tile_block<kInt8, 1, 1>(A, a_ld, B, b_ld, kt, acc, acc_ld, accumulate);
  }
}

}  // namespace amx
}  // namespace kernels
}  // namespace pybert
