// The ops one by one, for tests and for users composing their own layers.
#include <map>
#include <vector>

#include "bindings/common.h"
#include "kernels/activation.h"
#include "kernels/dispatch.h"
#include "kernels/gemm_lowp.h"
#include "kernels/softmax.h"
#include "ops/attention.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "parallel.h"
#include "tensor.h"

namespace pybert::bindings {
namespace {

// A Tensor viewing a numpy array that the caller keeps alive for the call.
Tensor view(const FloatArray& a) {
  Tensor t;
  t.data = a.data();
  t.shape.assign(a.shape(), a.shape() + a.ndim());
  return t;
}

// offsets (batch + 1): the packed sequences' row bounds, from 0 and non-decreasing (to `rows`
// when rows >= 0); ValueError otherwise.
ops::SequenceLayout sequence_layout(const IdArray& offsets, int64_t rows) {
  require_ndim(offsets, 1, "offsets");
  const int64_t batch = offsets.shape(0) - 1;
  const int64_t* off = offsets.data();
  if (batch < 0 || off[0] != 0 || (rows >= 0 && off[batch] != rows))
    throw py::value_error(rows >= 0 ? "offsets must start at 0 and end at the number of qkv rows"
                                    : "offsets must hold batch + 1 entries starting at 0");
  for (int64_t b = 0; b < batch; ++b)
    if (off[b + 1] < off[b]) throw py::value_error("offsets must be non-decreasing");
  return ops::SequenceLayout{off, batch};
}

}  // namespace

void register_ops(py::module_& m) {
  py::module_ ops = m.def_submodule("ops", "Single ops on float32 arrays (row-major).");

  ops.def(
      "linear",
      [](FloatArray x, FloatArray weight, std::optional<FloatArray> bias,
         const std::string& activation, const std::string& precision, int num_threads) {
        require_ndim(x, 2, "x");
        require_ndim(weight, 2, "weight");
        if (bias) require_ndim(*bias, 1, "bias");
        const auto act = activation == "none" ? kernels::Activation::kNone
                                              : kernels::activation_from_name(activation);
        ops::Linear linear(view(weight), bias ? view(*bias) : Tensor{},
                           ops::Linear::Layout::kPacked, ops::precision_from_name(precision));
        if (x.shape(1) != linear.in_features())
          throw py::value_error("x has " + std::to_string(x.shape(1)) +
                                " features, the weight expects in_features=" +
                                std::to_string(linear.in_features()));
        FloatArray y({x.shape(0), static_cast<py::ssize_t>(linear.out_features())});
        float* out = y.mutable_data();
        compute(num_threads, [&] { linear(x.data(), x.shape(0), out, act); });
        return y;
      },
      py::arg("x"), py::arg("weight"), py::arg("bias") = py::none(), py::kw_only(),
      py::arg("activation") = "none", py::arg("precision") = "fp32", py::arg("num_threads") = 0,
      "x (n, in) @ weight^T (in, out) + bias -> activation -> (n, out); precision 'fp32', "
      "'bf16' or 'int8'.\n\n"
      ">>> pybert._core.ops.linear(x, w, b, activation='gelu', precision='int8')");

  ops.def(
      "linear_pooled",
      [](FloatArray x, FloatArray weight, std::optional<FloatArray> bias,
         py::array_t<int32_t, py::array::c_style | py::array::forcecast> segment,
         int64_t segments, const std::string& activation, const std::string& pool,
         int num_threads) {
        require_ndim(x, 2, "x");
        require_ndim(weight, 2, "weight");
        require_ndim(segment, 1, "segment");
        if (bias) require_ndim(*bias, 1, "bias");
        const std::map<std::string, kernels::Activation> activations = {
            {"none", kernels::Activation::kNone},
            {"log1p_relu", kernels::Activation::kLog1pRelu},
            {"log1p_log1p_relu", kernels::Activation::kLog1pLog1pRelu}};
        if (!activations.count(activation))
          throw py::value_error("activation must be none, log1p_relu or log1p_log1p_relu");
        if (pool != "max" && pool != "sum") throw py::value_error("pool must be max or sum");
        ops::Linear linear(view(weight), bias ? view(*bias) : Tensor{});
        if (x.shape(1) != linear.in_features() || segment.shape(0) != x.shape(0))
          throw py::value_error("x must be (n, in_features) and segment (n)");
        for (py::ssize_t i = 0; i < segment.shape(0); ++i)
          if (segment.data()[i] < 0 || segment.data()[i] >= segments)
            throw py::value_error("segment values must lie in [0, segments)");
        FloatArray y({static_cast<py::ssize_t>(segments),
                      static_cast<py::ssize_t>(linear.out_features())});
        float* out = y.mutable_data();
        compute(num_threads, [&] {
          linear.pooled(x.data(), x.shape(0), segment.data(), segments, out,
                        activations.at(activation),
                        pool == "max" ? ops::RowPool::kMax : ops::RowPool::kSum);
        });
        return y;
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("segment"), py::arg("segments"),
      py::kw_only(), py::arg("activation") = "log1p_relu", py::arg("pool") = "max",
      py::arg("num_threads") = 0,
      "x (n, in) @ weight^T + bias -> activation -> folded (max or sum) over the rows of each "
      "segment -> (segments, out); segment (n) int32 in [0, segments). The (n, out) product is "
      "never stored (the GEMM's epilogue pools).");

  ops.def(
      "activation",
      [](FloatArray x, const std::string& name, int num_threads) {
        const kernels::Activation act = kernels::activation_from_name(name);
        FloatArray y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
        float* out = y.mutable_data();
        compute(num_threads, [&] {
          std::copy(x.data(), x.data() + x.size(), out);
          kernels::activate(out, y.size(), act);
        });
        return y;
      },
      py::arg("x"), py::arg("name"), py::kw_only(), py::arg("num_threads") = 0,
      "Element-wise HF activation by its config name.");

  ops.def(
      "layer_norm",
      [](FloatArray x, FloatArray gamma, FloatArray beta, float eps,
         std::optional<FloatArray> residual, int num_threads) {
        require_ndim(x, 2, "x");
        ops::LayerNorm norm(view(gamma), view(beta), eps);
        if (x.shape(1) != norm.hidden())
          throw py::value_error("x has " + std::to_string(x.shape(1)) +
                                " features, LayerNorm expects " + std::to_string(norm.hidden()));
        if (residual && (residual->ndim() != 2 || residual->shape(0) != x.shape(0) ||
                         residual->shape(1) != x.shape(1)))
          throw py::value_error("residual must have the shape of x");
        FloatArray y({x.shape(0), x.shape(1)});
        float* out = y.mutable_data();
        compute(num_threads,
                [&] { norm(x.data(), residual ? residual->data() : nullptr, out, x.shape(0)); });
        return y;
      },
      py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("eps"), py::kw_only(),
      py::arg("residual") = py::none(), py::arg("num_threads") = 0,
      "LayerNorm(x [+ residual]) over the last dimension.");

  ops.def(
      "softmax",
      [](FloatArray x, float scale, int num_threads) {
        require_ndim(x, 2, "x");
        if (!(scale > 0)) throw py::value_error("scale must be > 0");
        const int64_t rows = x.shape(0), cols = x.shape(1);
        FloatArray y({x.shape(0), x.shape(1)});
        float* out = y.mutable_data();
        compute(num_threads, [&] {
          std::copy(x.data(), x.data() + x.size(), out);
          constexpr int64_t kRowGrain = 16;
          parallel_for(0, rows, kRowGrain, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) kernels::softmax(out + r * cols, cols, scale);
          });
        });
        return y;
      },
      py::arg("x"), py::kw_only(), py::arg("scale") = 1.0f, py::arg("num_threads") = 0,
      "Row-wise softmax(scale * x).");

  ops.def(
      "self_attention",
      [](FloatArray qkv, IdArray offsets, int64_t num_heads, const std::string& precision,
         int num_threads) {
        require_ndim(qkv, 2, "qkv");
        if (qkv.shape(1) % 3 != 0) throw py::value_error("qkv must have 3 * hidden columns");
        const int64_t hidden = qkv.shape(1) / 3;
        const ops::SequenceLayout layout = sequence_layout(offsets, qkv.shape(0));
        const bool bf16_rows = precision == "bf16_rows";
        const auto p = precision == "fp32"                ? ops::AttentionMath::kFp32
                       : precision == "bf16" || bf16_rows ? ops::AttentionMath::kBf16
                       : precision == "bf16_split"        ? ops::AttentionMath::kBf16Split
                                                          : throw py::value_error(
                                                                "self_attention computes in "
                                                                "'fp32', 'bf16', 'bf16_rows' or "
                                                                "'bf16_split', not '" +
                                                                precision + "'");
        FloatArray ctx({qkv.shape(0), static_cast<py::ssize_t>(hidden)});
        float* out = ctx.mutable_data();
        const kernels::Bf16Gemm* bf16 = kernels::kernel_set().bf16;
        compute(num_threads, [&] {
          if (!bf16_rows || !bf16) {
            ops::self_attention(qkv.data(), layout, hidden, num_heads, out, p);
            return;
          }
          // q, k, v staged in bf16 as a bf16 QKV Linear's output, then attended from there.
          const int64_t tokens = qkv.shape(0);
          Buffer staged;
          const auto bytes = static_cast<int64_t>(kernels::bf16_rows_bytes(tokens, 3 * hidden));
          auto* rows = reinterpret_cast<uint16_t*>(staged.reserve(bytes / 4));
          bf16->convert_rows(qkv.data(), 3 * hidden, tokens, 3 * hidden, 0, tokens, rows);
          ops::self_attention_bf16(rows, layout, hidden, num_heads, out);
        });
        return ctx;
      },
      py::arg("qkv"), py::arg("offsets"), py::arg("num_heads"), py::kw_only(),
      py::arg("precision") = "fp32", py::arg("num_threads") = 0,
      "Multi-head attention over packed sequences: qkv (tokens, 3*hidden), offsets (batch+1) "
      "-> context (tokens, hidden). precision 'bf16' rounds the products' inputs to bf16, "
      "'bf16_rows' the same with q, k, v handed over as bf16 rows (a bf16 model's route), "
      "'bf16_split' splits each into three bf16 terms (int8 models' attention, ~2^-15 relative "
      "error); fp32 where the CPU has no such kernel.");

  ops.def(
      "attention_split",
      [](IdArray offsets, int64_t num_heads, int64_t head_size, int64_t parts) {
        const ops::SequenceLayout layout = sequence_layout(offsets, -1);
        if (num_heads <= 0 || head_size <= 0 || parts <= 0 || parts > 65536)
          throw py::value_error("num_heads and head_size must be positive, parts in 1..65536");
        return ops::attention_split(layout, num_heads, head_size, parts);
      },
      py::arg("offsets"), py::arg("num_heads"), py::arg("head_size"), py::arg("parts"),
      "How self_attention splits its (sequence, head) items b * num_heads + h over `parts` "
      "threads: bounds (parts + 1), thread t attends items bounds[t] .. bounds[t + 1], ranges of "
      "equal work (a head ~ rows x (rows + head_size)).");
}

}  // namespace pybert::bindings
