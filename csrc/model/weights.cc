#include "model/weights.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace pybert::model {
namespace {

// Bytes per element of a safetensors dtype; 0 for one the format does not define.
int64_t dtype_size(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL") return 1;
  return 0;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf / nan
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal: normalize
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    bits = sign | ((112 - e) << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// prod(shape) with every factor checked; throws on negative sizes or overflow.
uint64_t checked_numel(const std::string& name, const Shape& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw std::invalid_argument("tensor '" + name + "' has a negative dimension");
    if (d != 0 && n > std::numeric_limits<uint64_t>::max() / 8 / static_cast<uint64_t>(d))
      throw std::invalid_argument("tensor '" + name + "' has a shape whose size overflows");
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

}  // namespace

MappedFile::MappedFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw std::invalid_argument("cannot open '" + path + "': " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw std::invalid_argument("'" + path + "' is not a regular file");
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      throw std::invalid_argument("cannot map '" + path + "': " + std::strerror(errno));
    }
    data_ = static_cast<uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(data_, size_);
}

void MappedFile::drop_resident_pages() const {
  // A read-only private file mapping: MADV_DONTNEED only drops this process's page references.
  if (data_) ::madvise(data_, size_, MADV_DONTNEED);
}

std::shared_ptr<WeightStore> WeightStore::from_safetensors(
    const std::string& path, uint64_t data_offset, const std::vector<TensorRecord>& records) {
  auto file = std::make_shared<MappedFile>(path);
  if (data_offset > file->size())
    throw std::invalid_argument("safetensors header of '" + path + "' runs past the end of the file (" +
                                std::to_string(data_offset) + " > " +
                                std::to_string(file->size()) + " bytes)");
  const uint64_t data_size = file->size() - data_offset;
  auto store = std::make_shared<WeightStore>();
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const TensorRecord& r : records) {
    const int64_t item = dtype_size(r.dtype);
    if (item == 0)
      throw std::invalid_argument("tensor '" + r.name + "' has unknown dtype '" + r.dtype + "'");
    const uint64_t numel = checked_numel(r.name, r.shape);
    if (r.begin > r.end || r.end > data_size)
      throw std::invalid_argument("tensor '" + r.name + "' has data offsets [" +
                                  std::to_string(r.begin) + ", " + std::to_string(r.end) +
                                  ") outside the data section (" + std::to_string(data_size) +
                                  " bytes)");
    if (r.end - r.begin != numel * static_cast<uint64_t>(item))
      throw std::invalid_argument("tensor '" + r.name + "' of shape " + shape_str(r.shape) +
                                  " and dtype " + r.dtype + " needs " +
                                  std::to_string(numel * item) + " bytes, its offsets span " +
                                  std::to_string(r.end - r.begin));
    if (store->entries_.count(r.name))
      throw std::invalid_argument("tensor '" + r.name + "' appears twice");
    if (r.end > r.begin) ranges.emplace_back(r.begin, r.end);
    store->entries_[r.name] = Entry{r.dtype, r.shape, file->data() + data_offset + r.begin, file};
  }
  store->files_.push_back(file);
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second)
      throw std::invalid_argument("safetensors file '" + path +
                                  "' has tensors whose byte ranges overlap");
  return store;
}

std::shared_ptr<WeightStore> WeightStore::empty() { return std::make_shared<WeightStore>(); }

void WeightStore::add(const std::string& name, Shape shape, std::vector<float> values) {
  if (checked_numel(name, shape) != values.size())
    throw std::invalid_argument("tensor '" + name + "' of shape " + shape_str(shape) + " got " +
                                std::to_string(values.size()) + " values");
  auto owned = std::make_shared<std::vector<float>>(std::move(values));
  entries_[name] = Entry{"F32", std::move(shape),
                         reinterpret_cast<const uint8_t*>(owned->data()), owned};
}

void WeightStore::drop_resident_pages() const {
  for (const auto& file : files_) file->drop_resident_pages();
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& kv : entries_) out.push_back(kv.first);
  std::sort(out.begin(), out.end());
  return out;
}

Shape WeightStore::shape(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw std::invalid_argument("missing tensor '" + name + "'");
  return it->second.shape;
}

Tensor WeightStore::get(const std::string& name, const Shape& expected) const {
  auto it = entries_.find(name);
  if (it == entries_.end())
    throw std::invalid_argument("missing tensor '" + name + "' (expected shape " +
                                shape_str(expected) + ")");
  const Entry& e = it->second;
  if (e.shape != expected)
    throw std::invalid_argument("tensor '" + name + "' has shape " + shape_str(e.shape) +
                                ", expected " + shape_str(expected));
  if (e.dtype != "F32" && e.dtype != "F16" && e.dtype != "BF16" && e.dtype != "F64")
    throw std::invalid_argument("tensor '" + name + "' has dtype " + e.dtype +
                                "; expected a floating-point tensor (F32, F16, BF16 or F64)");
  Tensor t;
  t.shape = e.shape;
  const int64_t n = t.numel();
  if (e.dtype == "F32" && reinterpret_cast<uintptr_t>(e.bytes) % alignof(float) == 0) {
    t.data = reinterpret_cast<const float*>(e.bytes);
    t.owner = e.owner;
    return t;
  }
  std::shared_ptr<float> buf = make_aligned_floats(n);
  float* out = buf.get();
  if (e.dtype == "F32") {
    std::memcpy(out, e.bytes, n * sizeof(float));
  } else if (e.dtype == "F64") {
    for (int64_t i = 0; i < n; ++i) {
      double v;
      std::memcpy(&v, e.bytes + 8 * i, 8);
      out[i] = static_cast<float>(v);
    }
  } else {
    const bool bf16 = e.dtype == "BF16";
    for (int64_t i = 0; i < n; ++i) {
      uint16_t v;
      std::memcpy(&v, e.bytes + 2 * i, 2);
      out[i] = bf16 ? bf16_to_float(v) : half_to_float(v);
    }
  }
  t.data = out;
  t.owner = buf;
  return t;
}

}  // namespace pybert::model
