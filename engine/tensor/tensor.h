// Tensor metadata and tensor bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/base/bytes.h"
#include "engine/tensor/buffer_pool.h"
#include "engine/tensor/dtype.h"

namespace cw {

using Shape = std::vector<uint64_t>;

// Number of elements (1 for a 0-dim tensor); nullopt on overflow.
std::optional<uint64_t> ElementCount(const Shape& shape);
// Bytes of a contiguous tensor; nullopt on overflow.
std::optional<uint64_t> ByteSize(DType dtype, const Shape& shape);
// "[2, 3]", "[]" for a scalar.
std::string ShapeToString(const Shape& shape);

// What a reader knows about a tensor from headers alone.
struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  uint64_t byte_size = 0;  // == ByteSize(dtype, shape)

  bool operator==(const TensorInfo&) const = default;
};

// The bytes of one tensor, C order, little-endian: either borrowed from a mapped input (valid
// while the reader that produced it lives) or owned.
class TensorData {
 public:
  TensorData() = default;
  static TensorData Borrow(ByteSpan bytes) {
    TensorData d;
    d.view_ = bytes;
    return d;
  }
  // An uninitialised owned buffer of `n` bytes, to be filled through mutable_bytes().
  static TensorData Allocate(uint64_t n) {
    TensorData d;
    d.owned_ = AllocateBuffer(n);
    d.view_ = ByteSpan(d.owned_.get(), n);
    return d;
  }

  ByteSpan bytes() const { return view_; }
  uint64_t size() const { return view_.size(); }
  bool owned() const { return owned_ != nullptr; }
  // REQUIRES: owned()
  MutableByteSpan mutable_bytes() { return {owned_.get(), view_.size()}; }

 private:
  PooledBuffer owned_;
  ByteSpan view_;
};

}  // namespace cw
