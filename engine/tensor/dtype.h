// The one dtype table: every element type ConvertWeight knows, with the name each format uses.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace cw {

enum class DType : uint8_t {
  kF64,
  kF32,
  kF16,
  kBF16,
  kI64,
  kI32,
  kI16,
  kI8,
  kU8,
  kBool,
  kU16,
  kU32,
  kU64,
  kF8E4M3,
  kF8E5M2,
};

struct DTypeInfo {
  DType dtype;
  uint8_t size_bytes;
  bool is_float;
  std::string_view safetensors;    // "F32": also our canonical display name
  std::string_view torch;          // torch dtype name: "float32"
  std::string_view torch_storage;  // legacy storage class: "FloatStorage"; empty if none
  std::string_view mindspore;      // .ckpt tensor_type: "Float32"; empty if none
};

// All rows, in enum order.
std::span<const DTypeInfo> AllDTypes();
const DTypeInfo& Info(DType dtype);

inline uint8_t ElementSize(DType dtype) { return Info(dtype).size_bytes; }
inline bool IsFloat(DType dtype) { return Info(dtype).is_float; }
inline std::string_view Name(DType dtype) { return Info(dtype).safetensors; }

std::optional<DType> DTypeFromSafetensors(std::string_view code);
std::optional<DType> DTypeFromTorch(std::string_view name);            // "float32", "bfloat16"
std::optional<DType> DTypeFromTorchStorage(std::string_view storage);  // "FloatStorage"
std::optional<DType> DTypeFromMindSpore(std::string_view tensor_type);
// Accepts the names users type: fp32 fp16 bf16 float32 bfloat16 F32 ...
std::optional<DType> DTypeFromUserName(std::string_view name);

}  // namespace cw
