// Internal to the plan module: tensor names mapped to an index, for the checks that run over
// every input and every output (duplicate input names, two steps writing one name).
//
// Open addressing over a table of 8-byte slots sized up front: adding 100,000 names makes no
// allocation per name and reads about one slot each, where std::unordered_map allocates a node
// per name and follows pointers scattered over the heap (replacing it halved the compile time of
// a 100,000-tensor plan, docs/benchmarks.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace cw {

class NameIndex {
 public:
  // An index for at most `capacity` names. REQUIRES: capacity < 2^32.
  explicit NameIndex(size_t capacity);

  // Adds `name` with `value` and returns nullopt; when `name` is already there, returns its
  // value and keeps it. REQUIRES: fewer than `capacity` names added so far. Lifetime: the index
  // keeps the view, so the text of `name` must outlive it.
  std::optional<uint64_t> Insert(std::string_view name, uint64_t value);
  // The value of `name`, nullopt when it was never added.
  std::optional<uint64_t> Find(std::string_view name) const;

 private:
  struct Entry {
    std::string_view name;
    uint64_t value;
  };
  // The slot holding `name`, or the empty slot where it belongs.
  size_t Probe(std::string_view name, uint64_t hash) const;

  std::vector<Entry> entries_;  // in the order added
  // A power of two, at least 1.5 times the capacity. A slot holds the high 32 bits of its name's
  // hash and 1 + the name's index in `entries_` (0: empty), so that most probes compare no text.
  std::vector<uint64_t> slots_;
};

}  // namespace cw
