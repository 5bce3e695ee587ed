#include "model/sentence.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "ops/pooling.h"

namespace pybert::model {
namespace {

// Sentence vectors between steps, reused by the next call on the same thread.
struct SentenceWorkspace {
  Buffer vectors[2];  // (batch, width) pooling's output, then each Dense's: the two take turns
  Buffer first;   // (batch, hidden) first tokens, for the pooler

  static SentenceWorkspace& for_this_thread() {
    thread_local SentenceWorkspace ws;
    return ws;
  }
};

std::string width_error(const std::string& module, int64_t expected, int64_t found) {
  return module + " expects vectors of " + std::to_string(expected) + " dimensions, and the " +
         "modules before it give " + std::to_string(found);
}

}  // namespace

SentenceEncoder::SentenceEncoder(const BertConfig& config, const WeightStore& store,
                                 const std::string& prefix, std::vector<kernels::PoolMode> modes,
                                 ops::Precision precision)
    : bert_(config, store, prefix, precision), modes_(std::move(modes)) {
  if (modes_.empty()) throw std::invalid_argument("pooling needs at least one mode");
}

void SentenceEncoder::add_dense(const WeightStore& store, int64_t in_features,
                                int64_t out_features, bool bias, ops::Activation activation,
                                bool residual) {
  const int64_t width = output_width(SentenceOptions{});
  if (in_features != width) throw std::invalid_argument(width_error("Dense", in_features, width));
  SentenceStep step;
  step.kind = SentenceStep::Kind::kDense;
  Tensor b = bias ? store.get("linear.bias", {out_features}) : Tensor{};
  // The Dense weights run in fp32 at every precision, as the heads do.
  step.linear.emplace(store.get("linear.weight", {out_features, in_features}), std::move(b));
  step.activation = activation;
  step.residual = residual;
  if (residual && in_features != out_features)
    step.residual_projection.emplace(store.get("residual.weight", {out_features, in_features}),
                                     Tensor{});
  step.in_width = in_features;
  step.out_width = out_features;
  steps_.push_back(std::move(step));
}

void SentenceEncoder::add_layer_norm(const WeightStore& store, int64_t dimension, float eps) {
  const int64_t width = output_width(SentenceOptions{});
  if (dimension != width) throw std::invalid_argument(width_error("LayerNorm", dimension, width));
  SentenceStep step;
  step.kind = SentenceStep::Kind::kLayerNorm;
  step.norm.emplace(store.get("norm.weight", {dimension}), store.get("norm.bias", {dimension}), eps);
  step.in_width = step.out_width = dimension;
  steps_.push_back(std::move(step));
}

void SentenceEncoder::add_normalize() {
  SentenceStep step;
  step.kind = SentenceStep::Kind::kNormalize;
  step.in_width = step.out_width = output_width(SentenceOptions{});
  steps_.push_back(std::move(step));
}

int64_t SentenceEncoder::pooled_width(const SentenceOptions& options) const {
  const int64_t h = bert_.config().hidden_size;
  if (options.pooler) return h;
  return h * static_cast<int64_t>(options.modes.empty() ? modes_.size() : options.modes.size());
}

int64_t SentenceEncoder::output_width(const SentenceOptions& options) const {
  int64_t width = pooled_width(options);
  for (const SentenceStep& step : steps_) {
    if (step.kind == SentenceStep::Kind::kNormalize) continue;
    if (step.in_width != width)
      throw std::invalid_argument(
          width_error(step.kind == SentenceStep::Kind::kDense ? "the Dense module"
                                                              : "the LayerNorm module",
                      step.in_width, width) +
          " (a pooling other than the configured one changes the width)");
    width = step.out_width;
  }
  return width;
}

int64_t SentenceEncoder::result_width(const SentenceOptions& options) const {
  const int64_t width = output_width(options);
  if (options.truncate_dim < 0) throw std::invalid_argument("truncate_dim must be >= 0");
  return options.truncate_dim > 0 && options.truncate_dim < width ? options.truncate_dim : width;
}

void SentenceEncoder::forward(const BertInputs& in, const SentenceOptions& options,
                              float* out) const {
  const int64_t batch = in.batch, h = bert_.config().hidden_size;
  const int64_t result = result_width(options);  // checks the widths before any compute
  if (options.pooler && !bert_.has_pooler())
    throw std::invalid_argument("pooling 'pooler' needs pooler weights, and the checkpoint has none");
  if (options.prompt_length < 0) throw std::invalid_argument("prompt_length must be >= 0");
  SentenceWorkspace& ws = SentenceWorkspace::for_this_thread();
  int64_t width = pooled_width(options);
  int current = 0;                                          // vectors[current] holds x
  float* x = ws.vectors[current].reserve(batch * width);  // (batch, width)
  // One token a sentence is all "cls", "lasttoken" and the pooler read: the last layer computes
  // that row only.
  const std::vector<kernels::PoolMode>& modes = options.modes.empty() ? modes_ : options.modes;
  auto all_modes = [&](kernels::PoolMode mode) {
    return !modes.empty() && std::all_of(modes.begin(), modes.end(), [&](kernels::PoolMode m) { return m == mode; });
  };
  HeadRows head_rows;
  if (options.pooler)
    head_rows = {HeadRows::Kind::kFirst, 0};
  else if (all_modes(kernels::PoolMode::kCls))
    head_rows = {HeadRows::Kind::kFirst, options.prompt_length};
  else if (all_modes(kernels::PoolMode::kLastToken))
    head_rows = {HeadRows::Kind::kLast, 0};
  bert_.forward_packed(in, {}, [&](const PackedRows& rows) {
    if (options.pooler) {
      float* first = ws.first.reserve(batch * h);  // (batch, hidden)
      rows.first_rows(h, first);
      bert_.pool_first(first, batch, x);
    } else {
      ops::pool_packed(rows.x, rows.layout, rows.position, h, modes, options.prompt_length, x);
    }
  }, head_rows);
  for (const SentenceStep& step : steps_) {
    switch (step.kind) {
      case SentenceStep::Kind::kNormalize:
        if (options.normalize_modules) ops::l2_normalize_rows(x, batch, width);
        break;
      case SentenceStep::Kind::kLayerNorm:
        (*step.norm)(x, nullptr, x, batch);
        break;
      case SentenceStep::Kind::kDense: {
        // y (batch, out) = act(x W^T + b) [+ x (same width), or + x R^T]
        float* y = ws.vectors[1 - current].reserve(batch * step.out_width);
        const float* residual = step.residual ? x : nullptr;
        std::vector<float> projected;  // (batch, out) x R^T
        if (step.residual_projection) {
          projected.resize(batch * step.out_width);
          (*step.residual_projection)(x, batch, projected.data());
          residual = projected.data();
        }
        (*step.linear)(x, batch, y, step.activation, residual);
        current = 1 - current;
        x = y;
        width = step.out_width;
        break;
      }
    }
  }
  for (int64_t b = 0; b < batch; ++b)  // out (batch, result): the first `result` dimensions
    std::memcpy(out + b * result, x + b * width, result * sizeof(float));
  if (options.normalize_last) ops::l2_normalize_rows(out, batch, result);
}

}  // namespace pybert::model
