// Fuzz target: the whole torch.save reader (OpenReaderFromBytes), zip or legacy stream, then
// Read() of every tensor.
//
// A successful open must read each listed tensor with exactly the byte size its dtype and shape
// give: borrowed from a storage record, or copied in C order when strided or expanded.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/formats/pytorch/pytorch_reader.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

const std::string kFile = "fuzz.pt";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using cw::fuzz::Check;
  auto reader = cw::pytorch::OpenReaderFromBytes(cw::fuzz::InputBytes(data, size), kFile);
  if (!reader.ok()) {
    cw::fuzz::CheckLocated(reader.error(), kFile, size);
    return 0;
  }
  const cw::CheckpointReader& r = **reader;
  Check(r.format() == cw::FileFormat::kTorch);
  for (const cw::SkippedValue& skipped : r.skipped())
    Check(!skipped.description.empty());
  for (size_t i = 0; i < r.tensors().size(); ++i) {
    const cw::TensorInfo& info = r.tensors()[i];
    Check(cw::ByteSize(info.dtype, info.shape) == info.byte_size);
    const auto tensor = r.Read(i);
    if (!tensor.ok()) {
      cw::fuzz::CheckLocated(tensor.error(), kFile, size);
      continue;
    }
    Check(tensor->size() == info.byte_size);
    cw::fuzz::Touch(tensor->bytes());
  }
  return 0;
}
