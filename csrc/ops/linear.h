// Linear: y = act(x W^T + b) [+ residual], W stored (out_features, in_features) as nn.Linear,
// computed at a precision chosen at load: fp32, bf16 (AMX) or int8 (dynamic quantization).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "kernels/activation.h"
#include "kernels/gemm.h"
#include "kernels/gemm_lowp.h"
#include "tensor.h"

namespace pybert::ops {

using kernels::Activation;

// The arithmetic of the GEMM; bias, activation and residual are always added in fp32.
enum class Precision {
  kFp32,
  kBf16,  // x and W rounded to bf16, fp32 accumulation (AMX); the fp32 kernels without AMX
  kInt8,  // W symmetric per output channel at load, x asymmetric per row at run time; int32
          // accumulation
};

// "fp32" | "bf16" | "int8" -> Precision; throws std::invalid_argument naming the choices.
Precision precision_from_name(const std::string& name);

// The kernels a Linear of this precision runs on this CPU: fp32 "avx512" | "avx2"; bf16
// "amx_bf16", else fp32's; int8 "amx_int8" | "avx512_vnni" | "avx2".
std::string kernels_for(Precision precision);

class Linear {
 public:
  enum class Layout {
    kPacked,  // repacked once into the GEMM kernel's panels (the default; owns a copy)
    kShared,  // used in place: the weight is shared with another layer (a tied decoder)
  };

  Linear() = default;
  // weight (out_features, in_features); bias (out_features) or empty. The precision applies to
  // Layout::kPacked; a shared weight is used in place, in fp32.
  Linear(Tensor weight, Tensor bias, Layout layout = Layout::kPacked,
         Precision precision = Precision::kFp32);

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
  enum class Kernel { kShared, kFp32, kBf16Amx, kInt8 };

  // y (n, out) = epilogue(x (n, in) @ W^T), by kernel_.
  void run_shared(const float* x, int64_t n, float* y, Activation act,
                  const float* residual) const;
  void run_packed(const float* x, int64_t n, float* y, const kernels::Epilogue& ep) const;
  void run_lowp(const float* x, int64_t n, float* y, const kernels::Epilogue& ep) const;

  Tensor weight_;
  Tensor bias_;
  Kernel kernel_ = Kernel::kShared;
  // kFp32: kernels::pack_weight for isa_; kBf16Amx: pack_weight_bf16; kInt8: pack_weight_int8.
  std::shared_ptr<const void> packed_;
  kernels::Isa isa_ = kernels::Isa::Avx2;
  kernels::Int8Isa int8_isa_ = kernels::Int8Isa::Avx2;
  int64_t in_features_ = 0;
  int64_t out_features_ = 0;
};

}  // namespace pybert::ops
