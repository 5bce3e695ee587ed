#include "tensor.h"

#include <cstdlib>
#include <new>

namespace pybert {

namespace {
constexpr size_t kAlign = 64;

float* aligned_floats(int64_t n) {
  const size_t bytes = ((static_cast<size_t>(n) * sizeof(float) + kAlign - 1) / kAlign) * kAlign;
  void* p = std::aligned_alloc(kAlign, bytes == 0 ? kAlign : bytes);
  if (!p) throw std::bad_alloc();
  return static_cast<float*>(p);
}
}  // namespace

std::string shape_str(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

Buffer::~Buffer() { std::free(data_); }

float* Buffer::reserve(int64_t n) {
  if (n > capacity_) {
    std::free(data_);
    data_ = nullptr;
    capacity_ = 0;
    data_ = aligned_floats(n);
    capacity_ = n;
  }
  return data_;
}

std::shared_ptr<float> make_aligned_floats(int64_t n) {
  return std::shared_ptr<float>(aligned_floats(n), [](float* p) { std::free(p); });
}

}  // namespace pybert
