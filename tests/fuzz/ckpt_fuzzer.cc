// Fuzz target: the MindSpore .ckpt reader (OpenReaderOnBytes), then Read() of every tensor.
//
// Opening validates every record; a successful open must then read each listed tensor, joined
// from its chunks when split, with exactly the byte size its dtype and shape give.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/formats/mindspore/mindspore_reader.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

const std::string kFile = "fuzz.ckpt";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cw::fuzz::CheckOpened(cw::mindspore::OpenReaderOnBytes(cw::fuzz::InputBytes(data, size), kFile),
                        cw::FileFormat::kMindSpore, kFile, size);
  return 0;
}
