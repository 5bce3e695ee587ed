#include "kernels/pooling.h"

#include <stdexcept>

namespace pybert::kernels {

PoolMode pool_mode_from_name(const std::string& name) {
  if (name == "cls") return PoolMode::kCls;
  if (name == "mean") return PoolMode::kMean;
  if (name == "max") return PoolMode::kMax;
  if (name == "mean_sqrt_len") return PoolMode::kMeanSqrtLen;
  if (name == "weightedmean") return PoolMode::kWeightedMean;
  if (name == "lasttoken") return PoolMode::kLastToken;
  throw std::invalid_argument("unknown pooling mode '" + name +
                              "'; expected one of: cls, mean, max, mean_sqrt_len, weightedmean, "
                              "lasttoken");
}

}  // namespace pybert::kernels
