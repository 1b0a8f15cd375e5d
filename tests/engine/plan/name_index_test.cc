#include "engine/plan/name_index.h"

#include <string>
#include <vector>

#include <doctest/doctest.h>

namespace cw {
namespace {

TEST_SUITE("plan.name_index") {
  TEST_CASE("finds every name added, and nothing else") {
    std::vector<std::string> names;
    for (int i = 0; i < 5000; ++i)
      names.push_back("model.layers." + std::to_string(i % 50) + ".experts." + std::to_string(i));
    NameIndex index(names.size());
    for (size_t i = 0; i < names.size(); ++i)
      CHECK_FALSE(index.Insert(names[i], i));
    for (size_t i = 0; i < names.size(); ++i)
      CHECK(index.Find(names[i]) == i);
    CHECK_FALSE(index.Find("model.layers.0.experts.5000"));
    CHECK_FALSE(index.Find(""));
  }

  TEST_CASE("a name added twice keeps its first value and reports it") {
    NameIndex index(3);
    CHECK_FALSE(index.Insert("a", 7));
    CHECK_FALSE(index.Insert("", 8));
    CHECK(index.Insert("a", 9) == 7u);
    CHECK(index.Insert("", 1) == 8u);
    CHECK(index.Find("a") == 7u);
  }

  TEST_CASE("an index for no names finds nothing") {
    const NameIndex index(0);
    CHECK_FALSE(index.Find("x"));
  }
}

}  // namespace
}  // namespace cw
