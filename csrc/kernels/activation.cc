#include "kernels/activation.h"

#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>
#include <stdexcept>

#include "kernels/fixed_order.h"

namespace pybert::kernels {
namespace {

// a <- act(a) on one aligned block.
template <typename Block>
void activate_block(Block& a, Activation act) {
  switch (act) {
    case Activation::kNone:
      break;
    case Activation::kGeluErf:
      a = 0.5f * a * (1.0f + (a * float(M_SQRT1_2)).erf());
      break;
    case Activation::kGeluTanh: {
      const float k = 0.7978845608028654f;  // sqrt(2 / pi)
      a = 0.5f * a * (1.0f + (k * (a + 0.044715f * a.cube())).tanh());
      break;
    }
    case Activation::kRelu:
      a = a.max(0.0f);
      break;
    case Activation::kTanh:
      a = a.tanh();
      break;
  }
}

}  // namespace

Activation activation_from_name(const std::string& name) {
  if (name == "gelu" || name == "gelu_python") return Activation::kGeluErf;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast")
    return Activation::kGeluTanh;
  if (name == "relu") return Activation::kRelu;
  if (name == "tanh") return Activation::kTanh;
  throw std::invalid_argument("unsupported hidden_act '" + name +
                              "'; expected one of: gelu, gelu_python, gelu_new, "
                              "gelu_pytorch_tanh, gelu_fast, relu, tanh");
}

void activate(float* x, int64_t n, Activation act) {
  if (act == Activation::kNone) return;
  // Through fixed-size aligned blocks: the result must not depend on where x lies.
  map_fixed_order(x, n, [act](auto& a) { activate_block(a, act); });
}

void bias_activate(float* y, int64_t rows, int64_t cols, int64_t ldy, const float* bias,
                   Activation act) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = y + r * ldy;
    if (bias) Eigen::Map<Eigen::ArrayXf>(row, cols) += Eigen::Map<const Eigen::ArrayXf>(bias, cols);
    activate(row, cols, act);
  }
}

}  // namespace pybert::kernels
