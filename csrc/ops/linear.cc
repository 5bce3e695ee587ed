#include "ops/linear.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/matmul.h"
#include "parallel.h"

namespace pybert::ops {
namespace {

// Below this many FLOPs per thread a GEMM is faster on fewer threads than the fork/join costs.
// The reduced-precision kernels run ~5x faster, so they need ~5x the work to pay for a thread.
constexpr double kMinFlopsPerThread = 1e6;
constexpr double kMinLowpFlopsPerThread = 5e6;

// Threads for a GEMM of (n, out, in) when `budget` threads are available.
int gemm_threads(int64_t n, int64_t out, int64_t in, double min_flops_per_thread, int budget) {
  const double flops = 2.0 * static_cast<double>(n) * static_cast<double>(out) * in;
  return static_cast<int>(
      std::max<double>(1, std::min<double>(budget, flops / min_flops_per_thread)));
}

// The (m-block, n-block) grid of an (n, out) output, numbered m-major as choose_blocks expects.
struct BlockGrid {
  BlockGrid(int64_t n, int64_t out, kernels::GemmBlocks blocks)
      : n(n), out(out), blocks(blocks), n_blocks((out + blocks.nb - 1) / blocks.nb),
        total((n + blocks.mb - 1) / blocks.mb * n_blocks) {}
  int64_t m0(int64_t b) const { return (b / n_blocks) * blocks.mb; }
  int64_t c0(int64_t b) const { return (b % n_blocks) * blocks.nb; }

  int64_t n, out;
  kernels::GemmBlocks blocks;
  int64_t n_blocks, total;
};

// Calls block(m0, m1, c0, c1, last) for each block of the grid, one block per task; `last` marks
// the last block of the calling thread's share.
template <typename Block>
void for_each_block(const BlockGrid& grid, const Block& block) {
  parallel_for(0, grid.total, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t m0 = grid.m0(b), c0 = grid.c0(b);
      block(m0, std::min(grid.n, m0 + grid.blocks.mb), c0,
            std::min(grid.out, c0 + grid.blocks.nb), b + 1 == b1);
    }
  });
}

// x rounded to bf16 or quantized to int8, once per GEMM, for all its blocks; one per calling
// thread, grown to the largest GEMM seen and reused.
struct LowpWorkspace {
  Buffer rows;    // (lowp_padded_m(n), Kp) bf16 or int8 rows, zero-padded
  Buffer scales;  // (n) int8 row scales
  Buffer zeros;   // (n) int8 row zero points (int32)

  static LowpWorkspace& for_this_thread() {
    thread_local LowpWorkspace ws;
    return ws;
  }
};

// Staged int8 rows of n rows of `features` in one buffer (Linear::int8_staged_bytes): the
// quantized rows, then the row scales, then the zero points, each 64-byte aligned.
struct Int8Staged {
  int8_t* rows;
  float* scales;
  int32_t* zeros;
};

size_t align64(size_t bytes) { return (bytes + 63) / 64 * 64; }

Int8Staged int8_staged(void* staged, int64_t n, int64_t features) {
  auto* base = static_cast<uint8_t*>(staged);
  const size_t rows = align64(kernels::quantized_rows_bytes(n, features));
  const size_t scales = align64(static_cast<size_t>(n) * sizeof(float));
  return Int8Staged{reinterpret_cast<int8_t*>(base), reinterpret_cast<float*>(base + rows),
                    reinterpret_cast<int32_t*>(base + rows + scales)};
}

// forward_to_int8 strips: a weight up to this size stays in L2 while a thread's strips pass
// (all-MiniLM-L6-v2's FFN1: 590 KiB; BERT-base's, 2.3 MiB, would be streamed again from L3 for
// every strip, which cost what the strips save), and a strip's fp32 result takes ~kStripBytes.
constexpr size_t kFusedWeightBytes = 1 << 20;
constexpr int64_t kStripBytes = 256 * 1024;

}  // namespace

Precision precision_from_name(const std::string& name) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "bf16") return Precision::kBf16;
  if (name == "int8") return Precision::kInt8;
  if (name == "int8_bf16_attention") return Precision::kInt8Bf16Attention;
  throw std::invalid_argument("unknown precision '" + name +
                              "'; expected one of: fp32, bf16, int8, int8_bf16_attention");
}

std::string kernels_for(Precision precision) {
  const kernels::KernelSet& k = kernels::kernel_set();
  if (precision == Precision::kInt8 || precision == Precision::kInt8Bf16Attention)
    return k.int8->name;
  if (precision == Precision::kBf16 && k.bf16) return k.bf16->name;
  return k.fp32->name;
}

Linear::Linear(Tensor weight, Tensor bias, Layout layout, Precision precision)
    : weight_(std::move(weight)), bias_(std::move(bias)) {
  if (weight_.shape.size() != 2)
    throw std::invalid_argument("Linear weight must be 2-D (out_features, in_features), got " +
                                shape_str(weight_.shape));
  out_features_ = weight_.dim(0);
  in_features_ = weight_.dim(1);
  if (!bias_.empty() && bias_.shape != Shape{out_features_})
    throw std::invalid_argument("Linear bias must have shape " + shape_str({out_features_}) +
                                ", got " + shape_str(bias_.shape));
  if (layout == Layout::kShared) return;
  const int64_t N = out_features_, K = in_features_;
  const kernels::KernelSet& family = kernels::kernel_set();
  if (precision == Precision::kInt8 || precision == Precision::kInt8Bf16Attention) {
    kernel_ = Kernel::kInt8;
    int8_ = family.int8;
    std::shared_ptr<float> packed =
        make_packed_weight_storage(kernels::packed_weight_int8_bytes(N, K));
    kernels::pack_weight_int8(weight_.data, N, K, packed.get());
    packed_ = packed;
  } else if (precision == Precision::kBf16 && family.bf16) {
    kernel_ = Kernel::kBf16;
    bf16_ = family.bf16;
    std::shared_ptr<float> packed =
        make_packed_weight_storage(kernels::packed_weight_bf16_bytes(N, K));
    kernels::pack_weight_bf16(weight_.data, N, K, packed.get());
    packed_ = packed;
  } else {  // fp32, and bf16 without bf16 kernels (AVX512-BF16 dot products lose to fp32 FMA)
    kernel_ = Kernel::kFp32;
    fp32_ = family.fp32;
    const int64_t nr = fp32_->panel_width;
    std::shared_ptr<float> packed =
        make_packed_weight_storage(kernels::panel_packed_floats(N, K, nr) * sizeof(float));
    kernels::pack_panels(weight_.data, N, K, nr, packed.get());
    packed_ = packed;
  }
  weight_ = Tensor{};  // the packed copy is the weight from now on
}

kernels::Epilogue Linear::epilogue(Activation act, const float* residual) const {
  kernels::Epilogue ep;
  ep.bias = bias_.empty() ? nullptr : bias_.data;
  ep.activation = static_cast<int>(act);
  ep.residual = residual;
  ep.ldr = out_features_;
  return ep;
}

void Linear::operator()(const float* x, int64_t n, float* y, Activation act,
                        const float* residual, const Linear* then) const {
  if (n <= 0) return;
  if (kernel_ == Kernel::kShared) {
    run_shared(x, n, y, act, residual);
    return;
  }
  if (kernel_ == Kernel::kFp32)
    run_packed(x, n, y, epilogue(act, residual), then);
  else
    run_lowp(x, n, y, epilogue(act, residual));
}

void Linear::forward_to_bf16(const float* x, int64_t n, uint16_t* y_rows, Activation act) const {
  if (kernel_ != Kernel::kBf16)
    throw std::logic_error("Linear::forward_to_bf16 needs a Linear on bf16 kernels");
  if (n <= 0) return;
  const int64_t ld = kernels::bf16_padded_k(out_features_);
  kernels::zero_bf16_padding(y_rows, n, out_features_);  // what the next GEMM reads past y
  void* rows;
  float* scales;
  int32_t* zeros;
  stage_lowp(x, n, &rows, &scales, &zeros);
  gemm_lowp(rows, scales, zeros, n, nullptr, y_rows, ld, epilogue(act, nullptr));
}

void Linear::forward_from_bf16(const uint16_t* x_rows, int64_t n, float* y, Activation act,
                               const float* residual) const {
  if (kernel_ != Kernel::kBf16)
    throw std::logic_error("Linear::forward_from_bf16 needs a Linear on bf16 kernels");
  if (n <= 0) return;
  gemm_lowp(x_rows, nullptr, nullptr, n, y, nullptr, 0, epilogue(act, residual));
}

size_t Linear::int8_staged_bytes(int64_t n, int64_t features) {
  return align64(kernels::quantized_rows_bytes(n, features)) +
         2 * align64(static_cast<size_t>(n) * sizeof(float));
}

bool Linear::int8_strips(int64_t n, const Linear& next) const {
  if (kernel_ != Kernel::kInt8 || next.kernel_ != Kernel::kInt8 ||
      next.in_features_ != out_features_ ||
      kernels::packed_weight_int8_bytes(out_features_, in_features_) > kFusedWeightBytes)
    return false;
  const kernels::GemmBlocks blocks = lowp_blocks(n, thread_budget());
  return blocks.nb >= out_features_ && blocks.mb < n;  // split by whole rows
}

void Linear::forward_to_int8(const float* x, int64_t n, void* staged, Activation act,
                             const Linear& next) const {
  if (!int8_strips(n, next))
    throw std::logic_error("Linear::forward_to_int8: not int8 Linears that chain in strips on " +
                           std::to_string(n) + " rows (see int8_strips)");
  const int64_t in = in_features_, out = out_features_;
  const Int8Staged y = int8_staged(staged, n, out);
  void* rows;
  float* scales;
  int32_t* zeros;
  stage_lowp(x, n, &rows, &scales, &zeros);
  const kernels::Epilogue ep = epilogue(act, nullptr);
  const int64_t rows_per_thread = lowp_blocks(n, thread_budget()).mb;
  thread_local Buffer result;  // a thread's fp32 result rows of one strip
  const int64_t strip = std::max<int64_t>(16, kStripBytes / (out * 4) / 16 * 16);
  const auto* xq = static_cast<const int8_t*>(rows);
  const int64_t kp_in = kernels::int8_padded_k(in), kp_out = kernels::int8_padded_k(out);
  // Each thread a run of strips (about choose_lowp_blocks' rows), strip by strip: the strip's
  // result over all columns into the thread's scratch, then quantized from there.  Rows
  // [s0, s1) are rows [0, s1 - s0) of views that start at row s0 (the GEMM may read the next 15
  // staged rows); s0 is a multiple of 16, so quantize_rows with M = n - s0 rows fills exactly
  // the padding rows after row n in the last strip.
  const int64_t strips = (n + strip - 1) / strip;
  parallel_for(0, strips, (rows_per_thread + strip - 1) / strip, [&](int64_t k0, int64_t k1) {
    float* r = result.reserve(strip * out);
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t s0 = k * strip, s1 = std::min(n, s0 + strip);
      int8_->gemm(xq + s0 * kp_in, scales + s0, zeros + s0, packed_.get(), out, in, r, out, 0,
                  s1 - s0, 0, out, ep);
      next.int8_->quantize_rows(r, out, n - s0, out, 0, s1 - s0, y.rows + s0 * kp_out,
                                y.scales + s0, y.zeros + s0);
    }
  });
}

void Linear::forward_from_int8(const void* staged, int64_t n, float* y, Activation act,
                               const float* residual) const {
  if (kernel_ != Kernel::kInt8)
    throw std::logic_error("Linear::forward_from_int8 needs a Linear on int8 kernels");
  if (n <= 0) return;
  const Int8Staged x = int8_staged(const_cast<void*>(staged), n, in_features_);
  gemm_lowp(x.rows, x.scales, x.zeros, n, y, nullptr, 0, epilogue(act, residual));
}

void Linear::run_shared(const float* x, int64_t n, float* y, Activation act,
                        const float* residual) const {
  // Shared (unpacked) weight: each thread owns a block of output columns, reads its slice of
  // W once and applies the epilogue while the block is still in cache.
  const int64_t in = in_features_, out = out_features_;
  const float* bias = bias_.empty() ? nullptr : bias_.data;
  constexpr int64_t kColumnGrain = 64;
  parallel_for(0, out, kColumnGrain, [&](int64_t c0, int64_t c1) {
    kernels::gemm_nt(x, in, weight_.data, in, n, c0, c1, y + c0, out);
    kernels::bias_activate(y + c0, n, c1 - c0, out, bias ? bias + c0 : nullptr, act);
    if (residual)
      for (int64_t r = 0; r < n; ++r)
        for (int64_t c = c0; c < c1; ++c) y[r * out + c] += residual[r * out + c];
  });
}

kernels::GemmBlocks Linear::packed_blocks(int64_t n, int budget) const {
  const int threads = gemm_threads(n, out_features_, in_features_, kMinFlopsPerThread, budget);
  return fp32_->choose_blocks(n, out_features_, in_features_, threads);
}

kernels::Prefetch Linear::first_panel_of_thread(int64_t n, int t, int budget) const {
  // for_each_block's split: parallel_for's chunk of the grid for `budget` threads.
  const BlockGrid grid(n, out_features_, packed_blocks(n, budget));
  const int64_t b = t * parallel_chunk(grid.total, 1, budget);
  if (b >= grid.total || !fp32_->first_panel) return {};
  return fp32_->first_panel(static_cast<const float*>(packed_.get()), out_features_,
                            in_features_, grid.c0(b));
}

void Linear::run_packed(const float* x, int64_t n, float* y, const kernels::Epilogue& ep,
                        const Linear* then) const {
  const int64_t in = in_features_, out = out_features_;
  const auto* packed = static_cast<const float*>(packed_.get());
  const int budget = thread_budget();  // the caller's: the workers' own budget is the default
  const BlockGrid grid(n, out, packed_blocks(n, budget));
  const auto ws_floats = static_cast<int64_t>(fp32_->workspace_floats(grid.blocks.mb, in, false));
  const bool chain = then && then->kernel_ == Kernel::kFp32;
  // Split by rows, the threads sweep the same weight panels side by side.
  const bool rows_split = grid.total > 1 && grid.blocks.mb < n;
  // Split by columns only, every block reads all rows of x: they are packed once, a share of the
  // strips per thread, instead of by every thread in full.
  kernels::PackedRows rows;
  const auto rows_floats =
      fp32_->packed_rows_floats ? static_cast<int64_t>(fp32_->packed_rows_floats(n, in)) : 0;
  if (grid.total > 1 && !rows_split && rows_floats > 0) {
    thread_local Buffer shared_rows;  // the caller's, read by all the GEMM's threads
    float* r = shared_rows.reserve(rows_floats);
    const int64_t strips = (n + fp32_->tile_rows - 1) / fp32_->tile_rows;
    constexpr int64_t kStripGrain = 8;  // a fork costs more than packing a few strips
    parallel_for(0, strips, kStripGrain, [&](int64_t s0, int64_t s1) {
      fp32_->pack_rows(x, in, n, in, s0, s1, r);
    });
    rows = kernels::PackedRows{r, n};
  }
  for_each_block(grid, [&](int64_t m0, int64_t m1, int64_t c0, int64_t c1, bool last) {
    thread_local Buffer a_blocks;  // the kernel's packed rows of x, reused across calls
    // The thread's last block requests the first panel it will read in `then`.
    kernels::BlockContext ctx;
    if (chain && last) ctx.then = then->first_panel_of_thread(n, static_cast<int>(parallel_chunk_index()), budget);
    ctx.rows = rows;
    ctx.panels_shared = rows_split;
    float* ws = rows.data ? nullptr : a_blocks.reserve(ws_floats);
    fp32_->gemm(x, in, packed, out, in, y, out, m0, m1, c0, c1, ep, ws, ctx);
  });
}

void Linear::pooled(const float* x, int64_t n, const int32_t* segment, int64_t segments,
                    float* pooled, Activation act, RowPool pool) const {
  if (kernel_ != Kernel::kFp32)
    throw std::logic_error("Linear::pooled needs an fp32 Linear packed at load");
  const int64_t in = in_features_, out = out_features_;
  constexpr int64_t kRowGrain = 4;
  parallel_for(0, segments, kRowGrain, [&](int64_t s0, int64_t s1) {  // the fold's start
    std::fill(pooled + s0 * out, pooled + s1 * out, 0.0f);
  });
  if (n <= 0) return;
  kernels::Epilogue ep = epilogue(act, nullptr);
  ep.pool = static_cast<int>(pool);
  ep.segment = segment;
  ep.pooled = pooled;
  ep.ldp = out;
  // Columns split over threads, every thread on all rows: a pooled entry has one writer.
  const int threads = gemm_threads(n, out, in, kMinFlopsPerThread, thread_budget());
  const int64_t nr = fp32_->panel_width, panels = (out + nr - 1) / nr;
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(threads, panels));
  const BlockGrid grid(n, out, kernels::GemmBlocks{n, (panels + parts - 1) / parts * nr});
  const auto* packed = static_cast<const float*>(packed_.get());
  const auto ws_floats =
      static_cast<int64_t>(fp32_->workspace_floats(n, in, /*pooled=*/true));
  for_each_block(grid, [&](int64_t m0, int64_t m1, int64_t c0, int64_t c1, bool) {
    thread_local Buffer a_blocks;  // the kernel's packed rows of x, reused across calls
    fp32_->gemm(x, in, packed, out, in, nullptr, out, m0, m1, c0, c1, ep,
                a_blocks.reserve(ws_floats), kernels::BlockContext{});
  });
}

kernels::GemmBlocks Linear::lowp_blocks(int64_t n, int budget) const {
  const int threads =
      gemm_threads(n, out_features_, in_features_, kMinLowpFlopsPerThread, budget);
  return kernels::choose_lowp_blocks(n, out_features_, in_features_, threads);
}

void Linear::run_lowp(const float* x, int64_t n, float* y, const kernels::Epilogue& ep) const {
  void* rows;
  float* scales;
  int32_t* zeros;
  stage_lowp(x, n, &rows, &scales, &zeros);
  gemm_lowp(rows, scales, zeros, n, y, nullptr, 0, ep);
}

void Linear::stage_lowp(const float* x, int64_t n, void** rows, float** scales,
                        int32_t** zeros) const {
  // x (n, in) -> rows (padded_m, Kp) bf16 or int8 [+ scales, zeros (n)], rows split over threads;
  // every (m, n) block of the GEMM then reads the shared rows.
  const int64_t in = in_features_;
  const bool bf16 = kernel_ == Kernel::kBf16;
  const size_t row_bytes =
      bf16 ? kernels::bf16_rows_bytes(n, in) : kernels::quantized_rows_bytes(n, in);
  LowpWorkspace& ws = LowpWorkspace::for_this_thread();
  void* r = ws.rows.reserve(static_cast<int64_t>((row_bytes + 3) / 4));
  float* sc = bf16 ? nullptr : ws.scales.reserve(n);
  auto* z = bf16 ? nullptr : reinterpret_cast<int32_t*>(ws.zeros.reserve(n));
  constexpr int64_t kRowGrain = 16;
  parallel_for(0, n, kRowGrain, [&](int64_t m0, int64_t m1) {
    if (bf16)
      bf16_->convert_rows(x, in, n, in, m0, m1, static_cast<uint16_t*>(r));
    else
      int8_->quantize_rows(x, in, n, in, m0, m1, static_cast<int8_t*>(r), sc, z);
  });
  *rows = r;
  *scales = sc;
  *zeros = z;
}

void Linear::gemm_lowp(const void* rows, const float* scales, const int32_t* zeros, int64_t n,
                       float* y, uint16_t* yb, int64_t ldyb, const kernels::Epilogue& ep) const {
  const int64_t in = in_features_, out = out_features_;
  const void* packed = packed_.get();
  const auto* rows_b = static_cast<const uint16_t*>(rows);
  for_each_block(BlockGrid(n, out, lowp_blocks(n, thread_budget())),
                 [&](int64_t m0, int64_t m1, int64_t c0, int64_t c1, bool) {
                   if (kernel_ == Kernel::kInt8)
                     int8_->gemm(static_cast<const int8_t*>(rows), scales, zeros, packed, out, in,
                                 y, out, m0, m1, c0, c1, ep);
                   else if (yb)
                     bf16_->gemm_to_bf16(rows_b, packed, out, in, yb, ldyb, m0, m1, c0, c1, ep);
                   else
                     bf16_->gemm(rows_b, packed, out, in, y, out, m0, m1, c0, c1, ep);
                 });
}

}  // namespace pybert::ops
