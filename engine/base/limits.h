// Caps on sizes and counts read from untrusted files. Hitting one is ErrorCode::kLimitExceeded and
// the message names the cap. Each is checked before anything is allocated.
#pragma once

#include <cstdint>

namespace cw::limits {

// The official safetensors reader refuses larger headers (MAX_HEADER_SIZE).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;
// Far above any real model (DeepSeek-V3 has ~92k tensors), low enough to bound metadata memory.
inline constexpr uint64_t kMaxTensorCount = 1'000'000;
// No framework supports more dimensions than this in practice (torch caps at 64, we are stricter).
inline constexpr uint64_t kMaxRank = 16;
// Longest tensor name accepted; real names are under 200 bytes.
inline constexpr uint64_t kMaxNameBytes = 4096;
// Zip archives: entries and the central directory size.
inline constexpr uint64_t kMaxZipEntries = 1'000'000;
inline constexpr uint64_t kMaxZipCentralDirectoryBytes = 512ull << 20;
// data.pkl is metadata only; torch writes about 200 bytes per tensor.
inline constexpr uint64_t kMaxPickleBytes = 1ull << 30;
inline constexpr uint64_t kMaxPickleStackDepth = 10'000;
inline constexpr uint64_t kMaxPickleMemoEntries = 10'000'000;
// Nested containers (dicts of dicts) deeper than this are refused.
inline constexpr uint64_t kMaxNestingDepth = 64;
// Index JSON files and config.json are small text files.
inline constexpr uint64_t kMaxJsonFileBytes = 256ull << 20;
// Rule files are written by hand.
inline constexpr uint64_t kMaxRuleFileBytes = 1ull << 20;

}  // namespace cw::limits
