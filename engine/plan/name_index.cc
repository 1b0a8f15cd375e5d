#include "engine/plan/name_index.h"

#include <bit>
#include <functional>

namespace cw {
namespace {

uint64_t Hash(std::string_view name) { return std::hash<std::string_view>{}(name); }
uint64_t HighBits(uint64_t hash) { return hash >> 32; }
size_t EntryOf(uint64_t slot) { return (slot & 0xffffffffu) - 1; }  // REQUIRES: slot != 0

}  // namespace

NameIndex::NameIndex(size_t capacity) : slots_(std::bit_ceil(capacity + capacity / 2 + 1), 0) {
  entries_.reserve(capacity);
}

size_t NameIndex::Probe(std::string_view name, uint64_t hash) const {
  const size_t mask = slots_.size() - 1;
  // Linear probing: the table stays under 2/3 full, so runs stay short.
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const uint64_t slot = slots_[i];
    if (slot == 0 || (slot >> 32 == HighBits(hash) && entries_[EntryOf(slot)].name == name))
      return i;
  }
}

std::optional<uint64_t> NameIndex::Insert(std::string_view name, uint64_t value) {
  const uint64_t hash = Hash(name);
  uint64_t& slot = slots_[Probe(name, hash)];
  if (slot != 0)
    return entries_[EntryOf(slot)].value;
  entries_.push_back(Entry{name, value});
  slot = HighBits(hash) << 32 | entries_.size();
  return std::nullopt;
}

std::optional<uint64_t> NameIndex::Find(std::string_view name) const {
  const uint64_t slot = slots_[Probe(name, Hash(name))];
  if (slot == 0)
    return std::nullopt;
  return entries_[EntryOf(slot)].value;
}

}  // namespace cw
