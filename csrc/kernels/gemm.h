// fp32 GEMM micro-kernels for nn.Linear with a pre-packed weight and a fused epilogue.
//
//   C[m, n] = epilogue( sum_k A[m, k] * W[n, k] )      A (M, K) @ W^T (K, N) -> C (M, N)
//
// W is packed once at model load (pack_panels) into column panels of panel_width output
// features, K-contiguous and zero-padded, which is the layout the micro-kernel streams; A is
// read in place or packed per call, a block at a time, into the caller's workspace.  gemm
// computes one (m, n) block single-threaded; the caller splits blocks over threads (see
// choose_blocks).  No allocation, no threads, no exceptions.
//
// Each ISA family implements this contract once (x86/gemm_avx512.cc, x86/gemm_avx2.cc,
// arm/gemm_neon.cc, generic/gemm.cc) and publishes it as one Fp32Gemm table; dispatch.h picks
// the table once per process.
#pragma once
#include <cstddef>
#include <cstdint>

namespace pybert {
namespace kernels {

// Applied to each output tile while it is hot in L1, in this order:
//   y = act(acc + bias[n]) + residual[m, n]
// and then y is stored in C, or with `pool` set, folded over rows instead of stored:
//   pooled[segment[m], n] = max(pooled[segment[m], n], y[m, n])    pool 1
//   pooled[segment[m], n] += y[m, n]                                pool 2
// C is then neither read nor written (may be null): a GEMM whose rows are the tokens of several
// sequences reduces each sequence's rows to one row of `pooled` without its (M, N) output ever
// existing.  The caller fills `pooled` with the fold's start (0 for sums; for max, anything no
// larger than every y).  Blocks that run at the same time must not share columns (they would
// fold into the same pooled entries); a pooled call runs K in one depth block (see
// gemm_workspace_floats) and takes no residual and no BlockContext::rows.
struct Epilogue {
  const float* bias = nullptr;      // (N) or null
  int activation = 0;               // 0 none, 1 gelu (erf, exact), 2 gelu (tanh approx,
                                    // torch approximate='tanh'), 3 relu, 4 tanh,
                                    // 5 log(1 + relu), 6 log(1 + log(1 + relu))
  const float* residual = nullptr;  // (M, N) with row stride ldr, or null; must not overlap C
  int64_t ldr = 0;
  int pool = 0;                       // 0: store C; 1 max, 2 sum over rows into `pooled`
  const int32_t* segment = nullptr;   // (M) the pooled row each row of A folds into
  float* pooled = nullptr;            // (segments, N) with row stride ldp
  int64_t ldp = 0;
};

// Memory for a gemm call to request into L2 while its last panel is computed: the first
// panel of the GEMM this thread runs next (see first_panel), which would otherwise start cold.
struct Prefetch {
  const void* data = nullptr;
  int64_t bytes = 0;
};

// Rows of A packed once for all the column blocks of a GEMM that read the same rows (otherwise
// every thread of a column split packs all of them): strips of tile_rows rows, per depth
// block, laid out as gemm reads them.  Fill with pack_rows, any split of the strips over
// threads, then pass to every gemm call of the GEMM.
struct PackedRows {
  const float* data = nullptr;
  int64_t rows = 0;  // M: the strips cover rows [0, M)
};
// What a gemm call may know of the GEMM around it (all optional).
struct BlockContext {
  Prefetch then;     // requested while the block's last panel is computed (see first_panel)
  PackedRows rows;   // A already packed for all blocks (pack_rows); the workspace is not used
  // Other threads sweep the same weight panels at the same time (the rows are split over
  // threads): the next panel is then requested as early as possible, not spread over the strips.
  bool panels_shared = false;
};

// An (m, n) block split of a GEMM over threads (see Fp32Gemm::choose_blocks).
struct GemmBlocks {
  int64_t mb;  // rows per block
  int64_t nb;  // columns per block (multiple of panel_width)
};
// The split for a micro-tile of mr rows x nr columns (choose_lowp_blocks uses it too).
GemmBlocks split_blocks(int64_t M, int64_t N, int64_t mr, int64_t nr, int n_threads);
// Whole rows per thread (one m block each, all columns) once every thread gets at least
// min_rows_per_thread rows; below that, split_blocks.
GemmBlocks split_rows_first(int64_t M, int64_t N, int64_t mr, int64_t nr, int n_threads,
                            int64_t min_rows_per_thread);

// Packed weight of any family: ceil(N / nr) panels, each (K, nr) row-major, i.e.
//   packed[(p * K + k) * nr + j] = W[p * nr + j, k]   (0 for p * nr + j >= N).
// W: nn.Linear weight (N out_features, K in_features), row-major, contiguous; `packed` should be
// 64-byte aligned.  Scalar: runs once at load.
size_t panel_packed_floats(int64_t N, int64_t K, int64_t nr);
void pack_panels(const float* W, int64_t N, int64_t K, int64_t nr, float* packed);

// One ISA family's fp32 GEMM.  Optional members are null where the family has no use for them.
struct Fp32Gemm {
  const char* name;     // "avx512", "avx2", "neon", "generic" (pybert.cpu_info()'s fp32_kernels)
  int64_t panel_width;  // NR: output features per packed panel (pack_panels(W, N, K, NR))
  int64_t tile_rows;    // MR: micro-tile height

  // Floats of workspace (the packed block of A) a gemm call of at most `rows` rows (m1 - m0)
  // and depth K needs (0 where the kernel reads A in place); `pooled` for a call whose epilogue
  // pools (one depth block of all K).  A thread may reuse one workspace for all its calls.
  size_t (*workspace_floats)(int64_t rows, int64_t K, bool pooled);

  // C[m0:m1, n0:n1] = epilogue(A[m0:m1, :] @ W[n0:n1, :]^T), single-threaded.
  //   A: (M, K) row stride lda;  C: (M, N) row stride ldc;  packed by pack_panels(.., NR, ..).
  //   n0 must be a multiple of panel_width; n1 <= N; m0 < m1 <= M; n0 < n1.
  //   workspace: workspace_floats(m1 - m0, K) floats, 64-byte aligned, not shared with a
  //   concurrent call; its contents are not kept.  Not used (may be null) when ctx.rows is
  //   given: then A is read from it (packed from the same A; m0 a multiple of tile_rows,
  //   m1 <= rows.rows).
  // Rows/columns outside [m0, m1) x [n0, n1) are neither read (of C) nor written.
  void (*gemm)(const float* A, int64_t lda, const float* packed, int64_t N, int64_t K,
               float* C, int64_t ldc, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
               const Epilogue& ep, float* workspace, const BlockContext& ctx);

  // Recommended (m, n) block sizes for splitting an (M, N, K) GEMM over n_threads gemm calls:
  // blocks are tile_rows / panel_width aligned, there are at least n_threads of them when the
  // problem allows, and each is large enough to amortise its weight-panel traffic.  Iterate
  // blocks in (m-block, n-block) order.
  GemmBlocks (*choose_blocks)(int64_t M, int64_t N, int64_t K, int n_threads);

  // Optional (null: the kernel takes no hint): the packed weight gemm reads first in a block
  // starting at column n0 < N.
  Prefetch (*first_panel)(const float* packed, int64_t N, int64_t K, int64_t n0);

  // Optional (null: the kernel reads A in place): floats of packed rows for an (M, K) A, and
  // pack_rows packing strips [s0, s1) of A (M, K; row stride lda) into `out`.
  size_t (*packed_rows_floats)(int64_t M, int64_t K);
  void (*pack_rows)(const float* A, int64_t lda, int64_t M, int64_t K, int64_t s0, int64_t s1,
                    float* out);
};

}  // namespace kernels
}  // namespace pybert
