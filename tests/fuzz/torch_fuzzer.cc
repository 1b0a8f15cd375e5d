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
  cw::fuzz::CheckOpened(cw::pytorch::OpenReaderFromBytes(cw::fuzz::InputBytes(data, size), kFile),
                        cw::FileFormat::kTorch, kFile, size);
  return 0;
}
