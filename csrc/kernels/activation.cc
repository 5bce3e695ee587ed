#include "kernels/activation.h"

#include <stdexcept>

namespace pybert::kernels {

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

}  // namespace pybert::kernels
