#include "ops/maxsim.h"

#include <algorithm>

#include "kernels/matmul.h"
#include "parallel.h"
#include "tensor.h"

namespace pybert::ops {

void maxsim(const float* query, int64_t q, const float* documents, const int64_t* offsets,
            int64_t n_docs, int64_t dim, float* scores) {
  parallel_for(0, n_docs, 1, [&](int64_t d0, int64_t d1) {
    thread_local Buffer similarity;  // (q, tokens of one document)
    for (int64_t d = d0; d < d1; ++d) {
      const int64_t len = offsets[d + 1] - offsets[d];
      if (len == 0) {
        scores[d] = kEmptyDocumentScore;
        continue;
      }
      float* s = similarity.reserve(std::max<int64_t>(1, q * len));
      if (q > 0)
        kernels::matmul_nt(query, dim, documents + offsets[d] * dim, dim, q, len, dim, s, len);
      float total = 0.0f;
      for (int64_t i = 0; i < q; ++i)
        total += *std::max_element(s + i * len, s + (i + 1) * len);
      scores[d] = total;
    }
  });
}

}  // namespace pybert::ops
