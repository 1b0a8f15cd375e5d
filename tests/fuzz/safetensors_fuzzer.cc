// Fuzz target: the safetensors header parser (ParseSafetensors) and the reads its layout allows.
//
// On success the layout is checked against what the header documents (safetensors_header.h):
// each tensor's byte size follows from its dtype and shape, tensors tile the data section in
// order from its start to the end of the file, and every tensor's bytes, read as the reader's
// Read() does, lie inside the input.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/formats/safetensors/safetensors_header.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

const std::string kFile = "fuzz.safetensors";

void CheckLayout(const cw::safetensors::SafetensorsLayout& layout, cw::ByteSpan file) {
  using cw::fuzz::Check;
  Check(layout.data_file_offset == 8 + layout.header_bytes);
  Check(layout.data_file_offset <= file.size());
  const cw::ByteSpan data = file.subspan(layout.data_file_offset);
  uint64_t end = 0;  // of the previous tensor, relative to the data section
  for (const cw::safetensors::SafetensorsEntry& entry : layout.tensors) {
    const cw::TensorInfo& info = entry.info;
    Check(cw::ByteSize(info.dtype, info.shape) == info.byte_size);
    Check(entry.data_offset == end);
    Check(info.byte_size <= data.size() - entry.data_offset);
    cw::fuzz::Touch(data.subspan(entry.data_offset, info.byte_size));
    end = entry.data_offset + info.byte_size;
  }
  Check(end == data.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const cw::ByteSpan file = cw::fuzz::InputBytes(data, size);
  const auto layout = cw::safetensors::ParseSafetensors(file, kFile);
  if (!layout.ok()) {
    cw::fuzz::CheckLocated(layout.error(), kFile, size);
    return 0;
  }
  CheckLayout(*layout, file);
  return 0;
}
