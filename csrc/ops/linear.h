// Linear: y = act(x W^T + b) [+ residual], W stored (out_features, in_features) as nn.Linear.
#pragma once

#include <cstdint>
#include <memory>

#include "kernels/activation.h"
#include "kernels/gemm.h"
#include "tensor.h"

namespace pybert::ops {

using kernels::Activation;

class Linear {
 public:
  enum class Layout {
    kPacked,  // repacked once into the GEMM kernel's panels (the default; owns a copy)
    kShared,  // used in place: the weight is shared with another layer (a tied decoder)
  };

  Linear() = default;
  // weight (out_features, in_features); bias (out_features) or empty.
  Linear(Tensor weight, Tensor bias, Layout layout = Layout::kPacked);

  // y (n, out_features) = act(x (n, in_features) @ W^T + b) [+ residual (n, out_features)]
  // residual may be null; it must not overlap y.
  void operator()(const float* x, int64_t n, float* y, Activation act = Activation::kNone,
                  const float* residual = nullptr) const;

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }
  // The unpacked weight: set for Layout::kShared only (a packed Linear drops it after packing).
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }

 private:
  Tensor weight_;
  Tensor bias_;
  std::shared_ptr<float> packed_;  // kernels::pack_weight layout for isa_, or null
  kernels::Isa isa_ = kernels::Isa::Avx2;
  int64_t in_features_ = 0;
  int64_t out_features_ = 0;
};

}  // namespace pybert::ops
