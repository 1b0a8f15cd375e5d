// Fuzz target: the allow-list pickle VM (ReadPickle) that reads torch.save's data.pkl.
//
// On success the tree is walked as the torch reader does: every object is described, every
// tensor record's shape and stride have the same rank, and the bytes read never pass the input.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/formats/pytorch/pickle_reader.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

const std::string kFile = "fuzz.pkl";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using cw::fuzz::Check;
  cw::pytorch::PickleSource source;
  source.bytes = cw::fuzz::InputBytes(data, size);
  source.file = kFile;
  source.entry = "archive/data.pkl";
  const auto tree = cw::pytorch::ReadPickle(source);
  if (!tree.ok()) {
    cw::fuzz::CheckLocated(tree.error(), kFile, size);
    return 0;
  }
  Check(tree->consumed_bytes() <= size);
  Check(tree->root() < tree->size());
  for (cw::pytorch::ObjectId id = 0; id < tree->size(); ++id) {
    Check(!tree->Describe(id).empty());
    const cw::pytorch::Object& object = tree->at(id);
    for (const cw::pytorch::ObjectId item : object.items)
      Check(item < tree->size());
    if (object.kind == cw::pytorch::Kind::kTensor)
      Check(tree->tensor(id).shape.size() == tree->tensor(id).stride.size());
  }
  return 0;
}
