// fp32 GEMM micro-kernels for nn.Linear with a pre-packed weight and a fused epilogue.
//
//   C[m, n] = epilogue( sum_k A[m, k] * W[n, k] )      A (M, K) @ W^T (K, N) -> C (M, N)
//
// W is packed once at model load (pack_weight) into column panels of panel_width(isa)
// output features, K-contiguous and zero-padded, which is the layout the micro-kernel
// streams; A is packed per call, a block at a time, into the caller's workspace.
// gemm_packed computes one (m, n) block single-threaded; the caller splits blocks over
// threads (see choose_blocks).  No allocation, no threads, no exceptions.
//
// ISA-specific code lives in gemm_avx512.cc / gemm_avx2.cc (distinct namespaces, only
// internal-linkage helpers) and is selected at run time by the Isa argument.
#pragma once
#include <cstddef>
#include <cstdint>

namespace pybert {
namespace kernels {

enum class Isa { Avx2, Avx512 };

// Best ISA the running CPU supports (AVX-512 F/BW/VL/DQ, else AVX2+FMA); PYBERT_ISA=avx2 caps it.
Isa detect_isa();

// Panel width NR (output features per packed panel) and micro-tile height MR.
int64_t panel_width(Isa isa);
int64_t tile_rows(Isa isa);

// Packed weight: ceil(N / NR) panels, each (K, NR) row-major, i.e.
//   packed[(p * K + k) * NR + j] = W[p * NR + j, k]   (0 for p * NR + j >= N).
// `packed` should be 64-byte aligned.
size_t packed_weight_floats(int64_t N, int64_t K, Isa isa);
// W: nn.Linear weight (N out_features, K in_features), row-major, contiguous.
void pack_weight(const float* W, int64_t N, int64_t K, float* packed, Isa isa);

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

// Floats of workspace (the packed block of A) a gemm_packed call of at most `rows` rows
// (m1 - m0) and depth K needs (0 where the ISA's kernel reads A in place); `pooled` for a call
// whose epilogue pools (one depth block of all K).  A thread may reuse one workspace for all
// its calls.
size_t gemm_workspace_floats(int64_t rows, int64_t K, Isa isa, bool pooled = false);

// Memory for a gemm_packed call to request into L2 while its last panel is computed: the first
// panel of the GEMM this thread runs next (see first_panel), which would otherwise start cold.
struct Prefetch {
  const void* data = nullptr;
  int64_t bytes = 0;
};

// The packed weight gemm_packed reads first in a block starting at column n0 (empty for AVX2,
// whose kernel requests only the next panel of its own weight).
Prefetch first_panel(const float* packed, int64_t N, int64_t K, int64_t n0, Isa isa);

// Rows of A packed once for all the column blocks of a GEMM that read the same rows (otherwise
// every thread of a column split packs all of them): strips of tile_rows(isa) rows, per depth
// block, laid out as gemm_packed reads them.  Fill with pack_rows, any split of the strips over
// threads, then pass to every gemm_packed call of the GEMM.
struct PackedRows {
  const float* data = nullptr;
  int64_t rows = 0;  // M: the strips cover rows [0, M)
};
// Floats of packed rows for an (M, K) A; 0 where the ISA's kernel reads A in place (AVX2).
size_t packed_rows_floats(int64_t M, int64_t K, Isa isa);
// Packs strips [s0, s1) of A (M, K; row stride lda) into `out` (packed_rows_floats floats).
void pack_rows(const float* A, int64_t lda, int64_t M, int64_t K, int64_t s0, int64_t s1,
               float* out, Isa isa);

// What a gemm_packed call may know of the GEMM around it (all optional).
struct BlockContext {
  Prefetch then;     // requested while the block's last panel is computed (see first_panel)
  PackedRows rows;   // A already packed for all blocks (pack_rows); the workspace is not used
  // Other threads sweep the same weight panels at the same time (the rows are split over
  // threads): the next panel is then requested as early as possible, not spread over the strips.
  bool panels_shared = false;
};

// C[m0:m1, n0:n1] = epilogue(A[m0:m1, :] @ W[n0:n1, :]^T), single-threaded.
//   A: (M, K) row stride lda;  C: (M, N) row stride ldc;  packed from pack_weight(.., isa).
//   n0 must be a multiple of panel_width(isa); n1 <= N; m1 <= M.
//   workspace: gemm_workspace_floats(m1 - m0, K, isa) floats, 64-byte aligned, not shared with a
//   concurrent call; its contents are not kept.  Not used (may be null) when ctx.rows is given:
//   then A is read from it (packed from the same A; m0 a multiple of tile_rows, m1 <= rows.rows).
// Rows/columns outside [m0, m1) x [n0, n1) are neither read (of C) nor written.
void gemm_packed(const float* A, int64_t lda, const float* packed, int64_t N, int64_t K,
                 float* C, int64_t ldc, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                 const Epilogue& ep, float* workspace, Isa isa, const BlockContext& ctx = {});

// Recommended (m, n) block sizes for splitting an (M, N, K) GEMM over n_threads
// calls of gemm_packed: blocks are tile_rows / panel_width aligned, there are at
// least n_threads of them when the problem allows, and each is large enough to amortise
// its weight-panel traffic.  Iterate blocks in (m-block, n-block) order.
struct GemmBlocks {
  int64_t mb;  // rows per block
  int64_t nb;  // columns per block (multiple of panel_width)
};
GemmBlocks choose_blocks(int64_t M, int64_t N, int64_t K, int n_threads, Isa isa);
// The same split for any micro-tile of mr rows x nr columns (choose_lowp_blocks uses it too).
GemmBlocks split_blocks(int64_t M, int64_t N, int64_t mr, int64_t nr, int n_threads);
// Whole rows per thread (one m block each, all columns) once every thread gets at least
// min_rows_per_thread rows; below that, split_blocks.
GemmBlocks split_rows_first(int64_t M, int64_t N, int64_t mr, int64_t nr, int n_threads,
                            int64_t min_rows_per_thread);

}  // namespace kernels
}  // namespace pybert
