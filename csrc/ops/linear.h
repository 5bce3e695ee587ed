// Linear: y = act(x W^T + b) [+ residual], W stored (out_features, in_features) as nn.Linear,
// computed at a precision chosen at load: fp32, bf16 or int8 (dynamic quantization), on the
// kernels of the family kernels::kernel_set() picked for this CPU.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "kernels/activation.h"
#include "kernels/dispatch.h"
#include "kernels/gemm.h"
#include "kernels/gemm_lowp.h"
#include "tensor.h"

namespace pybert::ops {

using kernels::Activation;

// The arithmetic of the GEMM; bias, activation and residual are always added in fp32.
enum class Precision {
  kFp32,
  kBf16,  // x and W rounded to bf16, fp32 accumulation (AMX, arm BFMMLA); else the fp32 kernels
  kInt8,  // W symmetric per output channel at load, x asymmetric per row at run time; int32
          // accumulation
  // A model's precision, not a GEMM's: the Linears kInt8, attention's two products kBf16 (AMX;
  // fp32 without it). Opt-in: faster from ~128 tokens, a little less accurate than kInt8.
  kInt8Bf16Attention,
};

// How Linear::pooled folds the rows of a segment.
enum class RowPool { kMax = 1, kSum = 2 };  // the kernels' Epilogue::pool codes

// "fp32" | "bf16" | "int8" | "int8_bf16_attention" -> Precision; throws std::invalid_argument
// naming the choices.
Precision precision_from_name(const std::string& name);

// The kernels a Linear of this precision runs on this CPU (the names of kernel_set()'s tables):
// fp32 "avx512" | "avx2" | "neon" | "generic"; bf16 "amx_bf16" | "neon_bf16", else fp32's;
// int8 "amx_int8" | "avx512_vnni" | "avx2" | "neon_i8mm" | "neon_dotprod" | "generic".
std::string kernels_for(Precision precision);

class Linear {
 public:
  enum class Layout {
    kPacked,  // repacked once into the GEMM kernel's panels (the default; owns a copy)
    kShared,  // used in place: the weight is shared with another layer (a tied decoder)
  };

  Linear() = default;
  // weight (out_features, in_features); bias (out_features) or empty. The precision applies to
  // Layout::kPacked (kInt8Bf16Attention: kInt8); a shared weight is used in place, in fp32.
  Linear(Tensor weight, Tensor bias, Layout layout = Layout::kPacked,
         Precision precision = Precision::kFp32);

  // y (n, out_features) = act(x (n, in_features) @ W^T + b) [+ residual (n, out_features)]
  // residual may be null; it must not overlap y.  `then`: the Linear the caller runs next on
  // (n, ...) rows, if known; while this one finishes, each thread requests the first weights it
  // will read there (fp32 only; a hint, no effect on the result).
  void operator()(const float* x, int64_t n, float* y, Activation act = Activation::kNone,
                  const float* residual = nullptr, const Linear* then = nullptr) const;

  // pooled (segments, out_features): each segment's rows of act(x (n, in_features) @ W^T + b)
  // folded by max or sum, in the GEMM's epilogue: the (n, out_features) product is never stored.
  // segment (n): the pooled row of each row of x, in [0, segments); pooled is overwritten, a
  // segment without rows gets zeros (the fold starts at 0: for max, act must be >= 0, as
  // log(1 + relu) is).  An fp32 Layout::kPacked Linear only (std::logic_error otherwise).
  void pooled(const float* x, int64_t n, const int32_t* segment, int64_t segments, float* pooled,
              Activation act, RowPool pool) const;

  // bf16 Linears (precision() == kBf16) that feed another one: the result written as that
  // Linear's staged bf16 input rows, and the input taken already staged, skipping a round trip of
  // fp32 activations through memory.  Staged rows of f features: (kernels::lowp_padded_m(n),
  // kernels::bf16_padded_k(f)) bf16, as Bf16Gemm::convert_rows writes them (padding zeroed).
  void forward_to_bf16(const float* x, int64_t n, uint16_t* y_rows, Activation act) const;
  void forward_from_bf16(const uint16_t* x_rows, int64_t n, float* y, Activation act,
                         const float* residual = nullptr) const;

  // int8 Linears (precision() == kInt8) that feed another one, `next` (kInt8, next.in_features()
  // == out_features()): the result (act applied, no residual) quantized as next's staged input
  // rows into `staged` (int8_staged_bytes(n, out_features()) bytes, 64-byte aligned), a strip of
  // rows at a time while the strip's fp32 result is still in L2: the fp32 result never makes
  // the round trip through memory that next's quantizer pass costs.  Only where this pays
  // (int8_strips(n, next)): this Linear's packed weight stays in L2 across the strips
  // (kFusedWeightBytes) and each thread takes whole rows; elsewhere (std::logic_error) run the
  // two Linears as usual.  forward_from_int8 runs next on the staged rows.  The same values as
  // the usual route.
  bool int8_strips(int64_t n, const Linear& next) const;
  static size_t int8_staged_bytes(int64_t n, int64_t features);
  void forward_to_int8(const float* x, int64_t n, void* staged, Activation act,
                       const Linear& next) const;
  void forward_from_int8(const void* staged, int64_t n, float* y, Activation act,
                         const float* residual = nullptr) const;

  int64_t in_features() const { return in_features_; }
  // The arithmetic actually used: kBf16 only with bf16 kernels (without, it computes in fp32).
  Precision precision() const {
    return kernel_ == Kernel::kBf16 ? Precision::kBf16
           : kernel_ == Kernel::kInt8  ? Precision::kInt8
                                       : Precision::kFp32;
  }
  int64_t out_features() const { return out_features_; }
  // The unpacked weight: set for Layout::kShared only (a packed Linear drops it after packing).
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }

 private:
  enum class Kernel { kShared, kFp32, kBf16, kInt8 };

  // y (n, out) = epilogue(x (n, in) @ W^T), by kernel_.
  void run_shared(const float* x, int64_t n, float* y, Activation act,
                  const float* residual) const;
  void run_packed(const float* x, int64_t n, float* y, const kernels::Epilogue& ep,
                  const Linear* then) const;
  // kFp32: the (m, n) blocks of a GEMM on n rows with `budget` threads, and the start of what
  // thread t reads in it.
  kernels::GemmBlocks packed_blocks(int64_t n, int budget) const;
  kernels::Prefetch first_panel_of_thread(int64_t n, int t, int budget) const;
  // kBf16 / kInt8: the same for the reduced-precision kernels.
  kernels::GemmBlocks lowp_blocks(int64_t n, int budget) const;
  void run_lowp(const float* x, int64_t n, float* y, const kernels::Epilogue& ep) const;
  // x (n, in) rounded to bf16 / quantized into this thread's staging buffers.
  void stage_lowp(const float* x, int64_t n, void** rows, float** scales, int32_t** zeros) const;
  // y (fp32, ld out_features) or yb (bf16, ld ldyb) = epilogue(staged rows @ W^T), blocks over
  // threads.
  void gemm_lowp(const void* rows, const float* scales, const int32_t* zeros, int64_t n, float* y,
                 uint16_t* yb, int64_t ldyb, const kernels::Epilogue& ep) const;
  kernels::Epilogue epilogue(Activation act, const float* residual) const;

  Tensor weight_;
  Tensor bias_;
  Kernel kernel_ = Kernel::kShared;
  // kFp32: kernels::pack_panels for fp32_; kBf16: pack_weight_bf16; kInt8: pack_weight_int8.
  std::shared_ptr<const void> packed_;
  // The family's tables, from kernels::kernel_set() at load (the one for kernel_ is set).
  const kernels::Fp32Gemm* fp32_ = nullptr;
  const kernels::Bf16Gemm* bf16_ = nullptr;
  const kernels::Int8Gemm* int8_ = nullptr;
  int64_t in_features_ = 0;
  int64_t out_features_ = 0;
};

}  // namespace pybert::ops
