#include "ops/linear.h"

#include <stdexcept>

#include "kernels/matmul.h"
#include "parallel.h"

namespace pybert::ops {

Linear::Linear(Tensor weight, Tensor bias, Layout layout)
    : weight_(std::move(weight)), bias_(std::move(bias)) {
  if (weight_.shape.size() != 2)
    throw std::invalid_argument("Linear weight must be 2-D (out_features, in_features), got " +
                                shape_str(weight_.shape));
  out_features_ = weight_.dim(0);
  in_features_ = weight_.dim(1);
  if (!bias_.empty() && bias_.shape != Shape{out_features_})
    throw std::invalid_argument("Linear bias must have shape " + shape_str({out_features_}) +
                                ", got " + shape_str(bias_.shape));
  if (layout == Layout::kPacked) {
    isa_ = kernels::detect_isa();
    packed_ = make_aligned_floats(
        static_cast<int64_t>(kernels::packed_weight_floats(out_features_, in_features_, isa_)));
    kernels::pack_weight(weight_.data, out_features_, in_features_, packed_.get(), isa_);
    weight_ = Tensor{};  // the packed copy is the weight from now on
  }
}

void Linear::operator()(const float* x, int64_t n, float* y, Activation act,
                        const float* residual) const {
  if (n <= 0) return;
  const int64_t in = in_features_, out = out_features_;
  const float* bias = bias_.empty() ? nullptr : bias_.data;
  if (!packed_) {
    // Shared (unpacked) weight: each thread owns a block of output columns, reads its slice of
    // W once and applies the epilogue while the block is still in cache.
    constexpr int64_t kColumnGrain = 64;
    parallel_for(0, out, kColumnGrain, [&](int64_t c0, int64_t c1) {
      kernels::gemm_nt(x, in, weight_.data, in, n, c0, c1, y + c0, out);
      kernels::bias_activate(y + c0, n, c1 - c0, out, bias ? bias + c0 : nullptr, act);
      if (residual)
        for (int64_t r = 0; r < n; ++r)
          for (int64_t c = c0; c < c1; ++c) y[r * out + c] += residual[r * out + c];
    });
    return;
  }
  kernels::Epilogue ep;
  ep.bias = bias;
  ep.activation = static_cast<int>(act);
  ep.residual = residual;
  ep.ldr = out;
  // Below ~2 MFLOP a GEMM is faster on one thread than the fork/join costs.
  constexpr double kMinFlopsPerThread = 1e6;
  const double flops = 2.0 * static_cast<double>(n) * static_cast<double>(out) * in;
  const int threads = static_cast<int>(
      std::max<double>(1, std::min<double>(thread_budget(), flops / kMinFlopsPerThread)));
  const kernels::GemmBlocks blocks = kernels::choose_blocks(n, out, in, threads, isa_);
  const int64_t m_blocks = (n + blocks.mb - 1) / blocks.mb;
  const int64_t n_blocks = (out + blocks.nb - 1) / blocks.nb;
  // One (m-block, n-block) per task, m-major as choose_blocks expects.
  parallel_for(0, m_blocks * n_blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t m0 = (b / n_blocks) * blocks.mb, c0 = (b % n_blocks) * blocks.nb;
      kernels::gemm_packed(x, in, packed_.get(), out, in, y, out, m0,
                           std::min(n, m0 + blocks.mb), c0, std::min(out, c0 + blocks.nb), ep,
                           isa_);
    }
  });
}

}  // namespace pybert::ops
