#include "tensor.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace pybert {

namespace {
constexpr size_t kAlign = 64;
constexpr size_t kHugePage = size_t(2) << 20;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

float* aligned_floats(int64_t n) {
  const size_t bytes = round_up(static_cast<size_t>(n) * sizeof(float), kAlign);
  void* p = std::aligned_alloc(kAlign, bytes == 0 ? kAlign : bytes);
  if (!p) throw std::bad_alloc();
  return static_cast<float*>(p);
}

// `bytes` on a huge-page boundary, its whole huge pages offered to transparent huge pages (a
// hint: nothing changes where THP is off); the tail past the last whole page stays on small
// pages.  posix_memalign, not aligned_alloc: C11 wants the size a multiple of the alignment (ASan
// enforces it).  Freed with std::free.
void* huge_page_aligned(size_t bytes) {
  void* p = nullptr;
  if (posix_memalign(&p, kHugePage, bytes) != 0) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  madvise(p, bytes / kHugePage * kHugePage, MADV_HUGEPAGE);
#endif
  return p;
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
  // BERT-base at 128 tokens ~10% faster on 2 MB pages).  So a weight of at least one huge page
  // gets its whole huge pages; the tail stays on small pages, so resident memory does not grow.
  // (Packed weights share slabs instead: make_packed_weight_storage.)
  const size_t bytes = static_cast<size_t>(n > 0 ? n : 0) * sizeof(float);
  float* p = bytes < kHugePage ? aligned_floats(n) : static_cast<float*>(huge_page_aligned(bytes));
  return std::shared_ptr<float>(p, [](float* q) { std::free(q); });
}

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

// Packed weights are carved one after the other from slabs of whole 2 MB pages.  On its own
// allocation a weight below 2 MB never gets a huge page, nor the tail of a larger one past its
// last whole page (make_aligned_floats): all-MiniLM-L6-v2's Q/K/V weight is 1.7 MB, its attention
// output 0.6 MB, so 18 of the 42 MB it streams a call sat on 4 KB pages, a TLB miss (and, when
// the page tables have left the caches, a page walk from memory) every 4 KB.  A slab is freed with
// the last weight carved from it: the arena only remembers the slab it carves from, weakly, so no
// memory outlives the models.  The part of a slab never carved is never touched, so it costs
// address space, not resident memory.  Under AddressSanitizer every weight keeps its own
// allocation and redzones.
class PackedWeightArena {
 public:
  static PackedWeightArena& instance() {
    static PackedWeightArena* arena = new PackedWeightArena;  // never destroyed: safe at exit
    return *arena;
  }

  std::shared_ptr<float> carve(size_t bytes) {
    bytes = round_up(std::max<size_t>(bytes, 1), kAlign);
    std::lock_guard<std::mutex> lock(mutex_);
    std::shared_ptr<char> slab = slab_.lock();
    if (!slab || size_ - used_ < bytes) {
      size_ = round_up(std::max(bytes, kSlabBytes), kHugePage);
      slab = new_slab(size_);
      slab_ = slab;
      used_ = 0;
    }
    auto* piece = reinterpret_cast<float*>(slab.get() + used_);
    used_ += bytes;
    return std::shared_ptr<float>(std::move(slab), piece);  // shares the slab's ownership
  }

 private:
  static constexpr size_t kSlabBytes = 16 * kHugePage;

  static std::shared_ptr<char> new_slab(size_t bytes) {  // bytes: whole huge pages
    return std::shared_ptr<char>(static_cast<char*>(huge_page_aligned(bytes)),
                                 [](char* q) { std::free(q); });
  }

  std::mutex mutex_;
  std::weak_ptr<char> slab_;  // the slab being carved, while any weight holds it
  size_t size_ = 0, used_ = 0;
};

}  // namespace

std::shared_ptr<float> make_packed_weight_storage(size_t bytes) {
  if (kAddressSanitizer)
    return make_aligned_floats(static_cast<int64_t>((bytes + sizeof(float) - 1) / sizeof(float)));
  return PackedWeightArena::instance().carve(bytes);
}

}  // namespace pybert
