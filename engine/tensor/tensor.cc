#include "engine/tensor/tensor.h"

#include "engine/base/checked_math.h"

namespace cw {

std::optional<uint64_t> ElementCount(const Shape& shape) { return CheckedProduct(shape); }

std::optional<uint64_t> ByteSize(DType dtype, const Shape& shape) {
  const auto n = ElementCount(shape);
  if (!n)
    return std::nullopt;
  return CheckedMul(*n, ElementSize(dtype));
}

std::string ShapeToString(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace cw
