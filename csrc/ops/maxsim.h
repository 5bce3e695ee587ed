// Late interaction (ColBERT's MaxSim): a query's token vectors scored against documents' token
// vectors.
#pragma once

#include <cstdint>

namespace pybert::ops {

// A document without tokens scores this (sentence-transformers' value for one).
constexpr float kEmptyDocumentScore = -1e9f;

// query (q, dim), documents: rows (offsets[n_docs], dim), document d in rows
// [offsets[d], offsets[d + 1]) ->
//   scores[d] = sum_i max_{j in d} query[i] . documents[j]      (n_docs)
// Documents are split over threads; each thread's (q, tokens) similarity block stays in its
// workspace, one document at a time.
void maxsim(const float* query, int64_t q, const float* documents, const int64_t* offsets,
            int64_t n_docs, int64_t dim, float* scores);

}  // namespace pybert::ops
