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
// data.pkl is metadata only; torch writes about 200 bytes per tensor. Also bounds each pickle of a
// legacy torch file, so pickle offsets fit in 32 bits.
inline constexpr uint64_t kMaxPickleBytes = 1ull << 30;
inline constexpr uint64_t kMaxPickleStackDepth = 10'000;
inline constexpr uint64_t kMaxPickleMemoEntries = 10'000'000;
// What the pickle machine may hold (values, container items, strings, tensor records, memo) per
// pickle byte read, plus a base: torch's pickles need 3 to 5, the densest Python writes (lists of
// small ints, of empty lists, of pairs) 10 to 12. Without it a value of 16 bytes could come from
// one byte (`(]]]...`), and a 5-byte set() call copy a whole list.
inline constexpr uint64_t kPickleArenaBytesPerByte = 16;
inline constexpr uint64_t kPickleArenaBaseBytes = 1ull << 20;
// A deflated data.pkl (torch never writes one) inflates to at most the file's size or this,
// whichever is larger: deflate expands up to 1032 times, and the pickle's memory follows its size.
inline constexpr uint64_t kMinInflatedPickleCapBytes = 16ull << 20;
// The flattened names and skipped values of a torch state dict: per pickle byte plus a base, since
// shared or deeply prefixed dicts can repeat a long name for every value below them.
inline constexpr uint64_t kStateDictIndexBytesPerByte = 32;
inline constexpr uint64_t kStateDictIndexBaseBytes = 1ull << 20;
// Torch tensors larger than their storage records (expand(), stride 0) are copied by Read(): all
// of a file's together may take its size or this, whichever is larger; real ones (position_ids,
// attention masks) are far smaller.
inline constexpr uint64_t kMinExpandedTensorCapBytes = 64ull << 20;
// Nested containers (dicts of dicts) deeper than this are refused.
inline constexpr uint64_t kMaxNestingDepth = 64;
// Levels of a rule expression (parentheses, calls, `not` and `-`, and each operator of a chain
// such as a + b + c): far beyond any real rule, low enough that parsing, evaluating and freeing
// an expression cannot exhaust the stack.
inline constexpr uint64_t kMaxExpressionDepth = 256;
// Index JSON files and config.json are small text files.
inline constexpr uint64_t kMaxJsonFileBytes = 256ull << 20;
// Rule files are written by hand.
inline constexpr uint64_t kMaxRuleFileBytes = 1ull << 20;
// MindSpore parallel-strategy files take about 130 bytes per parameter and per operator (48 KB
// for a 40-layer Llama): 256 MiB is room for over a million of each, while everything decoded
// from a file stays a small multiple of its size.
inline constexpr uint64_t kMaxStrategyFileBytes = 256ull << 20;
// Devices in one pipeline stage (the product of a device matrix): far above any real cluster, low
// enough that a list of every device's slice fits in memory.
inline constexpr uint64_t kMaxDevicesPerStage = 1ull << 20;

}  // namespace cw::limits
