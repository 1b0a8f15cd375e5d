// Checks shared by the fuzz targets (docs/security.md, "Fuzzing").
//
// A target counts "ok, or an error that formats and is located" as success. Anything else is a
// bug: a failed check calls __builtin_trap(), which libFuzzer reports as a crash and the replay
// (replay_main.cc) as a signal. Nothing here catches exceptions: one escaping the engine is a bug
// too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "cw/error.h"
#include "engine/base/bytes.h"
#include "engine/formats/checkpoint.h"

namespace cw::fuzz {

inline void Check(bool condition) {
  if (!condition)
    __builtin_trap();
}

// The fuzzer's input as bytes, without a cast.
inline ByteSpan InputBytes(const uint8_t* data, size_t size) {
  return std::as_bytes(std::span<const uint8_t>(data, size));
}

// An error must format and name a file; a byte offset, when given for `file`, must lie within
// the `input_bytes` bytes of that input (the end itself is allowed: "truncated at byte N").
// Context lines are given without their "while", which ToString() adds. No input may cause an
// internal error: that code means a bug in ConvertWeight.
inline void CheckLocated(const Error& error, const std::string& file, size_t input_bytes) {
  Check(error.code() != ErrorCode::kInternal);
  Check(!error.ToString().empty());
  Check(!error.where().file.empty());
  for (const std::string& context : error.context())
    Check(!context.starts_with("while "));
  if (error.where().file == file && error.where().offset)
    Check(*error.where().offset <= input_bytes);
}

// Reads every byte of a view, so that AddressSanitizer sees a view reaching past its buffer.
inline void Touch(ByteSpan bytes) {
  uint8_t folded = 0;
  for (const std::byte b : bytes)
    folded = static_cast<uint8_t>(folded ^ static_cast<uint8_t>(b));
  volatile uint8_t sink = folded;
  (void)sink;
}

// The outcome of opening a checkpoint from fuzz input: a located error, or a reader of `format`
// whose every tensor reads (or fails located) with exactly the byte size its dtype and shape give.
inline void CheckOpened(const Result<std::unique_ptr<CheckpointReader>>& reader, FileFormat format,
                        const std::string& file, size_t input_bytes) {
  if (!reader.ok()) {
    CheckLocated(reader.error(), file, input_bytes);
    return;
  }
  const CheckpointReader& r = **reader;
  Check(r.format() == format);
  for (const SkippedValue& skipped : r.skipped())
    Check(!skipped.description.empty());
  for (size_t i = 0; i < r.tensors().size(); ++i) {
    const TensorInfo& info = r.tensors()[i];
    Check(ByteSize(info.dtype, info.shape) == info.byte_size);
    Check(!r.FileOf(i).empty());
    const auto tensor = r.Read(i);
    if (!tensor.ok()) {
      CheckLocated(tensor.error(), file, input_bytes);
      continue;
    }
    Check(tensor->size() == info.byte_size);
    Touch(tensor->bytes());
  }
}

}  // namespace cw::fuzz
