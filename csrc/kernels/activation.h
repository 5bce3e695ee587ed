// Element-wise activations and the bias + activation epilogue.
#pragma once

#include <cstdint>
#include <string>

namespace pybert::kernels {

enum class Activation {
  kNone,
  kGeluErf,   // 0.5 x (1 + erf(x / sqrt 2))                        HF "gelu"
  kGeluTanh,  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))    HF "gelu_new", "gelu_pytorch_tanh"
  kRelu,
  kTanh,
  kLog1pRelu,       // log(1 + max(x, 0))                                  SPLADE's activation
  kLog1pLog1pRelu,  // log(1 + log(1 + max(x, 0)))                          SPLADE "log1p_relu"
};

// HF config `hidden_act` -> Activation; throws std::invalid_argument naming the supported ones.
Activation activation_from_name(const std::string& name);

// x (n) <- act(x)
void activate(float* x, int64_t n, Activation act);

// y (rows, cols; row stride ldy) <- act(y + bias); bias (cols) may be null.
void bias_activate(float* y, int64_t rows, int64_t cols, int64_t ldy, const float* bias,
                   Activation act);

}  // namespace pybert::kernels
