// Running the pickle reader on bytes in memory, for the pickle tests.
#pragma once

#include <string>

#include <doctest/doctest.h>

#include "engine/formats/pytorch/pickle_reader.h"

namespace cw::pytorch::test_pickle {

inline constexpr uint64_t kBase = 1000;  // pretend the pickle starts at this file offset

inline Result<PickleTree> Run(const std::string& bytes, const PickleLimits& limits = {}) {
  return ReadPickle({AsBytes(bytes), "t.pt", kBase, "t/data.pkl"}, limits);
}

inline PickleTree RunOk(const std::string& bytes) {
  auto tree = Run(bytes);
  if (!tree.ok())
    FAIL(tree.error().ToString());
  return std::move(tree).value();
}

}  // namespace cw::pytorch::test_pickle
