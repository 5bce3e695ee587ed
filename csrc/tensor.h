// Read-only fp32 views used for weights, and the shape helpers the checks share.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace pybert {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& shape);  // "(384, 1536)"

// A weight tensor: fp32, row-major, contiguous. `owner` keeps the memory alive: the mapped
// checkpoint file when the tensor is used in place, or a buffer made at load.
struct Tensor {
  const float* data = nullptr;
  Shape shape;
  std::shared_ptr<const void> owner;

  bool empty() const { return data == nullptr; }
  int64_t dim(size_t i) const { return shape.at(i); }
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// A float buffer aligned for the widest SIMD loads; grows, never shrinks (workspaces).
class Buffer {
 public:
  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer();
  float* reserve(int64_t n);  // returns at least n floats; contents are not kept on growth
  float* data() { return data_; }

 private:
  float* data_ = nullptr;
  int64_t capacity_ = 0;
};

// Owned, aligned fp32 storage for weights made at load (converted, fused or copied).
std::shared_ptr<float> make_aligned_floats(int64_t n);

// Storage of `bytes` (64-byte aligned) for a weight packed at load, which every forward call
// streams in full: placed on 2 MB pages next to the other packed weights (see tensor.cc).
std::shared_ptr<float> make_packed_weight_storage(size_t bytes);

}  // namespace pybert
