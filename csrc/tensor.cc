#include "tensor.h"

#include <cstdlib>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

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
  // Weights stream from memory on every call; on 4 KB pages a BERT-base forward walks ~85,000
  // page-table entries, and the TLB misses stall the weight prefetches (measured: the GEMMs of
  // BERT-base at 128 tokens ~10% faster on 2 MB pages).  So a weight of at least one huge page is
  // placed on a huge-page boundary and its whole huge pages are offered to transparent huge pages
  // (a hint: nothing changes where THP is off).  The tail past the last whole page stays on small
  // pages, so resident memory does not grow.
  constexpr size_t kHugePage = size_t(2) << 20;
  const size_t bytes = static_cast<size_t>(n > 0 ? n : 0) * sizeof(float);
  if (bytes < kHugePage)
    return std::shared_ptr<float>(aligned_floats(n), [](float* p) { std::free(p); });
  // posix_memalign, not aligned_alloc: C11 wants the size a multiple of the alignment (ASan
  // enforces it).
  void* p = nullptr;
  if (posix_memalign(&p, kHugePage, bytes) != 0) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  madvise(p, bytes / kHugePage * kHugePage, MADV_HUGEPAGE);
#endif
  return std::shared_ptr<float>(static_cast<float*>(p), [](float* q) { std::free(q); });
}

}  // namespace pybert
