// Activation buffers for one forward call, reused by the next call on the same thread.
#pragma once

#include "tensor.h"

namespace pybert::layers {

struct Workspace {
  Buffer embedded;      // (tokens, embedding_size)    embeddings before the projection to hidden
  Buffer hidden;        // (tokens, hidden)            the residual stream
  Buffer qkv;           // (tokens, 3 * hidden)        fused projections
  Buffer context;       // (tokens, hidden)            attention heads, concatenated
  Buffer attn_out;      // (tokens, hidden)            after the output projection + LayerNorm
  Buffer intermediate;  // (tokens, intermediate_size) feed-forward inner activations
  Buffer pooled;        // (batch, hidden)             first tokens, then the pooler input
  // One per calling thread: concurrent callers never share buffers.
  static Workspace& for_this_thread();
};

}  // namespace pybert::layers
