// The weight store: checkpoint tensors by name, read from a memory-mapped safetensors file
// (or added as owned buffers), converted to fp32 on demand.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "tensor.h"

namespace pybert::model {

// A file mapped read-only; unmapped when the last tensor viewing it goes away.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  // Tells the kernel the pages read so far are not needed: they leave this process's resident
  // memory, and pages still viewed in place come back (from the page cache) when next read.
  void drop_resident_pages() const;

 private:
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

// One tensor of a safetensors header: byte range [begin, end) relative to the data section.
struct TensorRecord {
  std::string name;
  std::string dtype;  // a safetensors dtype: "F32", "F16", "BF16", "I64", ...
  Shape shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

class WeightStore {
 public:
  // Maps `path` and checks every record against it: the data section starts at `data_offset`
  // (8 + header length); each range lies inside it, does not overlap another, and holds
  // exactly prod(shape) values of its dtype. Any violation throws std::invalid_argument.
  static std::shared_ptr<WeightStore> from_safetensors(const std::string& path,
                                                       uint64_t data_offset,
                                                       const std::vector<TensorRecord>& records);
  // A store over fp32 buffers the caller made (e.g. a pytorch_model.bin read without torch).
  static std::shared_ptr<WeightStore> empty();
  void add(const std::string& name, Shape shape, std::vector<float> values);

  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  std::vector<std::string> names() const;
  Shape shape(const std::string& name) const;

  // The tensor `name` as fp32, checked to have `expected` shape. In place (a view of the
  // mapping) when stored as aligned F32; converted into a new buffer from F16, BF16 or F64. Throws
  // std::invalid_argument naming the tensor when it is missing or mis-shaped.
  Tensor get(const std::string& name, const Shape& expected) const;

  // After a model took its tensors: the pages of mapped tensors it copied (fused, converted)
  // leave resident memory, so a loaded model costs about one copy of its weights, not two.
  void drop_resident_pages() const;

 private:
  struct Entry {
    std::string dtype;
    Shape shape;
    const uint8_t* bytes = nullptr;
    std::shared_ptr<const void> owner;
  };
  std::unordered_map<std::string, Entry> entries_;
  std::vector<std::shared_ptr<const MappedFile>> files_;
};

}  // namespace pybert::model
