// safetensors header parsing and validation (docs/formats/safetensors.md).
//
// File layout:
//
//   u64 LE N | N bytes of UTF-8 JSON (the header) | data section
//
// The header is one JSON object: tensor name -> {"dtype": "F32", "shape": [2, 3],
// "data_offsets": [BEGIN, END]}, plus an optional "__metadata__" object of string -> string.
// BEGIN and END are relative to the data section (file offset 8 + N + BEGIN), END exclusive.
//
// ParseSafetensors accepts what the official reader (huggingface/safetensors) accepts, except:
//   - a name used twice is refused even when both entries agree (the official reader keeps the
//     last);
//   - names longer than limits::kMaxNameBytes, ranks over limits::kMaxRank and more than
//     limits::kMaxTensorCount tensors are refused (kLimitExceeded);
//   - dtypes ConvertWeight has no DType for (F4, F8_E8M0, C64, ...) are kUnsupported.
// Checks, in order: N against limits::kMaxSafetensorsHeaderBytes, 8 + N against the file size,
// JSON syntax (no NUL bytes, no byte order mark, whitespace around the object allowed), entry
// types (unsigned integers only), then the layout computed from dtypes and shapes: sorted by
// offsets, the first tensor at 0, no gaps or overlaps, END - BEGIN == the computed size, and the
// last END equal to the data section size (no trailing bytes).
//
// Every error carries the file name and a byte offset in the file: the length field (0), the
// byte the JSON parser stopped at, the name of the tensor at fault inside the header, the first
// trailing byte, or the end of a truncated file.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cw/error.h"
#include "engine/base/bytes.h"
#include "engine/tensor/tensor.h"

namespace cw::safetensors {

struct SafetensorsEntry {
  TensorInfo info;
  uint64_t data_offset = 0;  // BEGIN, relative to the data section
};

struct SafetensorsLayout {
  uint64_t header_bytes = 0;      // N
  uint64_t data_file_offset = 0;  // 8 + N: where the data section starts in the file
  // Sorted by data_offset; tensors at the same offset (zero-size ones) keep their header order.
  std::vector<SafetensorsEntry> tensors;
  std::map<std::string, std::string> metadata;  // "__metadata__"
};

// Parses and validates a whole safetensors file held in memory. Reads no tensor data; the layout
// it returns holds no views into `file_bytes`. `file_name` is used in error locations only.
Result<SafetensorsLayout> ParseSafetensors(ByteSpan file_bytes, const std::string& file_name);

}  // namespace cw::safetensors
