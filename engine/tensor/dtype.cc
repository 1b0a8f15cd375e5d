#include "engine/tensor/dtype.h"

#include <array>

namespace cw {
namespace {

constexpr std::array<DTypeInfo, 15> kTable = {{
    {DType::kF64, 8, true, "F64", "float64", "DoubleStorage", "Float64"},
    {DType::kF32, 4, true, "F32", "float32", "FloatStorage", "Float32"},
    {DType::kF16, 2, true, "F16", "float16", "HalfStorage", "Float16"},
    {DType::kBF16, 2, true, "BF16", "bfloat16", "BFloat16Storage", "BFloat16"},
    {DType::kI64, 8, false, "I64", "int64", "LongStorage", "Int64"},
    {DType::kI32, 4, false, "I32", "int32", "IntStorage", "Int32"},
    {DType::kI16, 2, false, "I16", "int16", "ShortStorage", "Int16"},
    {DType::kI8, 1, false, "I8", "int8", "CharStorage", "Int8"},
    {DType::kU8, 1, false, "U8", "uint8", "ByteStorage", "UInt8"},
    {DType::kBool, 1, false, "BOOL", "bool", "BoolStorage", "Bool"},
    {DType::kU16, 2, false, "U16", "uint16", "", "UInt16"},
    {DType::kU32, 4, false, "U32", "uint32", "", "UInt32"},
    {DType::kU64, 8, false, "U64", "uint64", "", "UInt64"},
    {DType::kF8E4M3, 1, true, "F8_E4M3", "float8_e4m3fn", "", ""},
    {DType::kF8E5M2, 1, true, "F8_E5M2", "float8_e5m2", "", ""},
}};

template <typename Field>
std::optional<DType> Find(std::string_view key, Field field) {
  if (key.empty())
    return std::nullopt;
  for (const DTypeInfo& row : kTable) {
    if (row.*field == key)
      return row.dtype;
  }
  return std::nullopt;
}

}  // namespace

std::span<const DTypeInfo> AllDTypes() { return kTable; }

const DTypeInfo& Info(DType dtype) { return kTable[static_cast<size_t>(dtype)]; }

std::optional<DType> DTypeFromSafetensors(std::string_view code) {
  return Find(code, &DTypeInfo::safetensors);
}
std::optional<DType> DTypeFromTorch(std::string_view name) { return Find(name, &DTypeInfo::torch); }
std::optional<DType> DTypeFromTorchStorage(std::string_view storage) {
  return Find(storage, &DTypeInfo::torch_storage);
}
std::optional<DType> DTypeFromMindSpore(std::string_view tensor_type) {
  return Find(tensor_type, &DTypeInfo::mindspore);
}

std::optional<DType> DTypeFromUserName(std::string_view name) {
  if (name == "fp32")
    return DType::kF32;
  if (name == "fp16")
    return DType::kF16;
  if (name == "bf16")
    return DType::kBF16;
  if (name == "fp64")
    return DType::kF64;
  if (auto d = DTypeFromTorch(name))
    return d;
  if (auto d = DTypeFromSafetensors(name))
    return d;
  return DTypeFromMindSpore(name);
}

}  // namespace cw
