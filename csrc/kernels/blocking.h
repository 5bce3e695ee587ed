// How the GEMM kernels block their work, shared by every ISA's file.
//
// with_rows: run-time row count -> compile-time tile height.  A micro-kernel keeps a tile of R
// rows in registers, so R is a template argument; the last tile of a block may hold fewer rows.
// with_rows<R>(rows, fn) calls fn(Rows<r>{}) with r == rows, for 1 <= rows <= R; fn reads r as
// decltype(arg)::value.
//
// DepthBlocks: K in near-equal depth blocks of at most a kernel's block depth.
//
// round_up: x rounded up to a multiple of m (the padded sizes of every packed layout).
//
// ISA-neutral (no intrinsics, no std:: templates), in an unnamed namespace, and instantiated with
// each kernel file's own lambdas: no instance can be shared between files compiled for different
// ISAs (see the ODR notes of the kernel files).
#pragma once

#include <cstdint>

namespace pybert {
namespace kernels {
namespace {

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

template <int R>
struct Rows {
  static constexpr int value = R;
};

template <int R, typename Fn>
inline void with_rows(int rows, const Fn& fn) {
  if constexpr (R > 1) {
    if (rows < R) {
      with_rows<R - 1>(rows, fn);
      return;
    }
  }
  fn(Rows<R>{});
}

// K in `count` near-equal blocks of at most max_depth (at least one block, so K == 0 still
// writes C = epilogue(0)).
struct DepthBlocks {
  DepthBlocks(int64_t K, int64_t max_depth)
      : count(K > max_depth ? (K + max_depth - 1) / max_depth : 1),
        size((K + count - 1) / count) {}
  int64_t count, size;
};

}  // namespace
}  // namespace kernels
}  // namespace pybert
