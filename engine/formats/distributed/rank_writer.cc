#include "engine/formats/distributed/rank_writer.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <unordered_set>
#include <variant>

#include "engine/base/input_file.h"
#include "engine/base/output_file.h"
#include "engine/base/text.h"
#include "engine/formats/distributed/block_runs.h"
#include "engine/formats/mindspore/mindspore_writer.h"
#include "engine/formats/mindspore/training_state.h"

namespace cw::distributed {
namespace fs = std::filesystem;
namespace ms = cw::mindspore;
namespace {

// Needed ranges closer than this are joined: reading the gap costs less than another request.
constexpr uint64_t kJoinGapBytes = 64 << 10;
// Bytes gathered at once when a written range maps to many pieces of a rank's slice.
constexpr uint64_t kGatherBytes = 4ull << 20;

std::string RankFolder(uint64_t rank) { return "rank_" + std::to_string(rank); }
std::string RankFileName(uint64_t rank) { return "checkpoint_" + std::to_string(rank) + ".ckpt"; }

// One rank's block of one tensor.
struct Part {
  size_t writer = 0;  // index into the rank writers
  size_t local = 0;   // the tensor's index in that rank's file
  BlockRuns runs;
};

// Appends [offset, offset + size) to ascending `ranges`, joining it to the last when close.
void AddRange(std::vector<ByteRange>& ranges, uint64_t offset, uint64_t size) {
  if (!ranges.empty() && offset <= ranges.back().offset + ranges.back().size + kJoinGapBytes) {
    const uint64_t end = std::max(ranges.back().offset + ranges.back().size, offset + size);
    ranges.back().size = end - ranges.back().offset;
    return;
  }
  ranges.push_back({offset, size});
}

// The bytes of a tensor its parts need, joined when close.
std::vector<ByteRange> NeededBy(const std::vector<Part>& parts) {
  std::vector<ByteRange> pieces;
  for (const Part& p : parts) {
    const BlockRuns& runs = p.runs;
    if (runs.count() == 0)
      continue;
    // Many runs close together: their span (a block cut on an inner axis is read whole anyway).
    const uint64_t first = runs.FullOffset(0);
    const uint64_t last = runs.FullOffset(runs.count() - 1) + runs.run_bytes();
    if (runs.count() > 1 &&
        (last - first - runs.block_bytes()) / (runs.count() - 1) <= kJoinGapBytes) {
      pieces.push_back({first, last - first});
      continue;
    }
    for (uint64_t r = 0; r < runs.count(); ++r)
      pieces.push_back({runs.FullOffset(r), runs.run_bytes()});
  }
  std::sort(pieces.begin(), pieces.end(),
            [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });
  std::vector<ByteRange> joined;
  for (const ByteRange& r : pieces)
    AddRange(joined, r.offset, r.size);
  return joined;
}

class RankFolderWriter final : public CheckpointWriter {
 public:
  RankFolderWriter(std::variant<OutputDir, OutputEntries> out,
                   std::vector<std::unique_ptr<CheckpointWriter>> writers,
                   std::vector<std::vector<Part>> parts, bool every_rank)
      : out_(std::move(out)), writers_(std::move(writers)), parts_(std::move(parts)) {
    if (!every_rank) {
      for (const std::vector<Part>& p : parts_)
        needed_.push_back(NeededBy(p));
    }
  }

  Status Write(size_t index, uint64_t offset, ByteSpan bytes) override {
    for (const Part& part : parts_[index])
      CW_RETURN_IF_ERROR(WritePart(part, offset, bytes));
    return OkStatus();
  }

  Status CopyFromFile(size_t index, uint64_t offset, const InputFile& source,
                      uint64_t source_offset, uint64_t size) override {
    // Inside the kernel when each rank's bytes of the range are one piece (blocks cut on the
    // leading axis); else read once through a buffer and gathered per rank.
    bool one_piece_each = true;
    for (const Part& part : parts_[index]) {
      int pieces = 0;
      part.runs.ForFullRange(offset, offset + size,
                             [&](uint64_t, uint64_t, uint64_t) { ++pieces; });
      one_piece_each = one_piece_each && pieces <= 1;
    }
    if (!one_piece_each)
      return CheckpointWriter::CopyFromFile(index, offset, source, source_offset, size);
    for (const Part& part : parts_[index]) {
      Status status = OkStatus();
      part.runs.ForFullRange(offset, offset + size, [&](uint64_t full, uint64_t at, uint64_t n) {
        status = writers_[part.writer]->CopyFromFile(part.local, at, source,
                                                     source_offset + (full - offset), n);
      });
      CW_RETURN_IF_ERROR(status);
    }
    return OkStatus();
  }

  std::optional<std::vector<ByteRange>> NeededRanges(size_t index) const override {
    if (needed_.empty())
      return std::nullopt;
    return needed_[index];
  }

  Status Commit() override {
    for (const std::unique_ptr<CheckpointWriter>& w : writers_)
      CW_RETURN_IF_ERROR(w->Commit());
    return std::visit([](auto& out) { return out.Commit(); }, out_);
  }

 private:
  // The bytes of `part`'s block among full-tensor bytes [offset, offset + bytes.size()): one range
  // of the block, written as it is when it is one piece, else gathered in chunks.
  Status WritePart(const Part& part, uint64_t offset, ByteSpan bytes) {
    CheckpointWriter& writer = *writers_[part.writer];
    std::vector<std::byte> gathered;
    uint64_t gathered_at = 0;  // block offset of gathered[0]
    Status status = OkStatus();
    int pieces = 0;
    std::optional<std::pair<uint64_t, uint64_t>> single;  // full offset, block offset
    uint64_t single_size = 0;
    auto flush = [&]() {
      if (status.ok() && !gathered.empty())
        status = writer.Write(part.local, gathered_at, gathered);
      gathered.clear();
    };
    part.runs.ForFullRange(
        offset, offset + bytes.size(), [&](uint64_t full, uint64_t at, uint64_t n) {
          if (++pieces == 1) {
            single = {full, at};
            single_size = n;
            return;
          }
          if (pieces == 2) {  // more than one piece: gather, starting with the first
            gathered.reserve(std::min<uint64_t>(kGatherBytes, bytes.size()));
            gathered_at = single->second;
            const ByteSpan first = bytes.subspan(single->first - offset, single_size);
            gathered.insert(gathered.end(), first.begin(), first.end());
          }
          if (gathered.size() + n > kGatherBytes) {
            flush();
            gathered_at = at;
          }
          const ByteSpan piece = bytes.subspan(full - offset, n);
          gathered.insert(gathered.end(), piece.begin(), piece.end());
        });
    if (pieces == 1)
      return writer.Write(part.local, single->second,
                          bytes.subspan(single->first - offset, single_size));
    flush();
    return status;
  }

  std::variant<OutputDir, OutputEntries> out_;
  std::vector<std::unique_ptr<CheckpointWriter>> writers_;  // one per rank written
  std::vector<std::vector<Part>> parts_;                    // per tensor
  std::vector<std::vector<ByteRange>> needed_;              // per tensor; empty: every rank
};

// What the strategy asks of the tensors: every rank's block of every tensor.
class SplitPlanner {
 public:
  SplitPlanner(const std::vector<TensorInfo>& tensors, const ms::ParallelStrategy& strategy,
               const RankWriterOptions& options)
      : tensors_(tensors), strategy_(strategy), options_(options) {}

  uint64_t rank_count() const { return strategy_.devices_per_stage() * strategy_.stages().size(); }

  Status CheckStages() const {
    const std::vector<uint32_t>& stages = strategy_.stages();
    for (size_t s = 0; s < stages.size(); ++s) {
      if (stages[s] != s) {
        return Error(ErrorCode::kCorrupt,
                     "the strategy gives pipeline stage " + std::to_string(stages[s]) +
                         " but not stage " + std::to_string(s) +
                         ": give every stage's strategy (their folder, or the merged file)",
                     FileLocation(strategy_.sources().front().file));
      }
    }
    return OkStatus();
  }

  // Calls f(tensor, global rank, slice) for every block of every tensor on the selected ranks.
  template <typename F>
  Status ForEachBlock(const std::vector<bool>& selected, F f) const {
    const uint64_t n = strategy_.devices_per_stage();
    for (size_t t = 0; t < tensors_.size(); ++t) {
      const TensorInfo& tensor = tensors_[t];
      const ms::ParameterStrategy* p = strategy_.Find(tensor.name);
      if (p == nullptr) {
        ms::TensorSlice whole;
        for (const uint64_t length : tensor.shape)
          whole.push_back({0, length});
        for (uint64_t g = 0; g < rank_count(); ++g) {
          if (selected[g])
            f(t, g, whole);
        }
        continue;
      }
      for (const ms::StageLayout& s : p->stages) {
        const ms::TensorLayout& layout = s.layout.saved;
        for (uint64_t d = 0; d < n; ++d) {
          const uint64_t g = s.stage * n + d;
          if (!selected[g])
            continue;
          Result<ms::TensorSlice> slice = ms::SliceOf(layout, tensor.shape, d);
          if (!slice.ok()) {
            return Error(ErrorCode::kPlanInvalid,
                         Quoted(tensor.name) + " " + ShapeToString(tensor.shape) +
                             " does not fit its layout: " + slice.error().message(),
                         s.layout.where);
          }
          f(t, g, *slice);
        }
      }
    }
    return OkStatus();
  }

  Status CheckUnusedLayouts(std::vector<std::string>* notes) const {
    std::unordered_set<std::string_view> names;
    for (const TensorInfo& t : tensors_)
      names.insert(t.name);
    std::vector<std::string> unused;
    const ms::ParameterLayout* first = nullptr;
    std::map<std::string, uint64_t> state;
    std::vector<std::string> unlisted;
    for (const TensorInfo& t : tensors_) {
      if (strategy_.Find(t.name) == nullptr)
        unlisted.push_back(t.name);
    }
    for (const ms::ParameterStrategy& p : strategy_.parameters()) {
      if (names.contains(p.name))
        continue;
      const std::string kind(ms::TrainingStateKind(p.name));
      if (!kind.empty()) {
        state[kind]++;
        continue;
      }
      if (first == nullptr)
        first = &p.first();
      unused.push_back(p.name);
    }
    if (notes != nullptr) {
      for (const auto& [kind, count] : state) {
        notes->push_back("the strategy lays out " + std::to_string(count) + " " + kind +
                         " tensors: not written (weights only)");
      }
      if (!unlisted.empty()) {
        notes->push_back(std::to_string(unlisted.size()) +
                         " tensor(s) the strategy does not lay out go whole to every rank: " +
                         unlisted.front() + (unlisted.size() > 1 ? ", ..." : ""));
      }
    }
    if (unused.empty())
      return OkStatus();
    const std::string what = "the strategy lays out " + std::to_string(unused.size()) +
                             " parameter(s) the converted tensors do not include (" +
                             unused.front() + (unused.size() > 1 ? ", ...)" : ")");
    if (options_.allow_unused_layouts) {
      if (notes != nullptr)
        notes->push_back(what + ": left out (--allow-unused-layouts)");
      return OkStatus();
    }
    return Error(ErrorCode::kPlanInvalid,
                 what + ": the strategy of another network? (--allow-unused-layouts writes anyway)",
                 first->where);
  }

 private:
  const std::vector<TensorInfo>& tensors_;
  const ms::ParallelStrategy& strategy_;
  const RankWriterOptions& options_;
};

}  // namespace

Result<std::vector<uint64_t>> ParseRankList(std::string_view text, uint64_t count) {
  std::set<uint64_t> ranks;
  auto number = [&](std::string_view s, uint64_t& out) {
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size() && !s.empty();
  };
  while (true) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    const size_t dash = item.find('-');
    uint64_t lo = 0;
    uint64_t hi = 0;
    const bool ok = dash == std::string_view::npos
                        ? number(item, lo) && number(item, hi)
                        : number(item.substr(0, dash), lo) && number(item.substr(dash + 1), hi);
    if (!ok || lo > hi) {
      return Error(ErrorCode::kUsage,
                   "--rank wants ranks such as 3, 0-7 or 0,4-7, not \"" + std::string(item) + "\"");
    }
    if (hi >= count) {
      return Error(ErrorCode::kUsage, "--rank " + std::to_string(hi) + ": the strategy has " +
                                          std::to_string(count) + " ranks (0-" +
                                          std::to_string(count - 1) + ")");
    }
    for (uint64_t r = lo; r <= hi; ++r)
      ranks.insert(r);
    if (comma == std::string_view::npos)
      break;
    text.remove_prefix(comma + 1);
  }
  return std::vector<uint64_t>(ranks.begin(), ranks.end());
}

Result<std::unique_ptr<CheckpointWriter>> CreateRankFolderWriter(
    const fs::path& folder, const std::vector<TensorInfo>& tensors,
    const ms::ParallelStrategy& strategy, const RankWriterOptions& options,
    std::vector<std::string>* notes) {
  SplitPlanner planner(tensors, strategy, options);
  CW_RETURN_IF_ERROR(planner.CheckStages());
  const uint64_t count = planner.rank_count();
  std::vector<uint64_t> ranks = options.ranks;
  if (ranks.empty()) {
    for (uint64_t g = 0; g < count; ++g)
      ranks.push_back(g);
  }
  std::vector<bool> selected(count, false);
  std::vector<size_t> writer_of(count, SIZE_MAX);
  for (size_t i = 0; i < ranks.size(); ++i) {
    if (ranks[i] >= count) {
      return Error(ErrorCode::kUsage, "rank " + std::to_string(ranks[i]) + " is beyond the " +
                                          std::to_string(count) + " ranks of the strategy");
    }
    selected[ranks[i]] = true;
    writer_of[ranks[i]] = i;
  }
  CW_RETURN_IF_ERROR(planner.CheckUnusedLayouts(notes));

  // Each rank's tensor list, and each tensor's parts.
  std::vector<std::vector<TensorInfo>> rank_tensors(ranks.size());
  std::vector<std::vector<Part>> parts(tensors.size());
  CW_RETURN_IF_ERROR(
      planner.ForEachBlock(selected, [&](size_t t, uint64_t g, const ms::TensorSlice& slice) {
        const size_t w = writer_of[g];
        TensorInfo info = tensors[t];
        for (size_t a = 0; a < slice.size(); ++a)
          info.shape[a] = slice[a].length;
        info.byte_size = ByteSize(info.dtype, info.shape).value_or(0);  // <= the full size
        parts[t].push_back({w, rank_tensors[w].size(),
                            BlockRuns(tensors[t].shape, slice, ElementSize(tensors[t].dtype))});
        rank_tensors[w].push_back(std::move(info));
      }));
  for (size_t w = 0; w < ranks.size(); ++w) {
    if (rank_tensors[w].empty()) {
      return Error(ErrorCode::kPlanInvalid,
                   "rank " + std::to_string(ranks[w]) + " would hold no tensor",
                   FileLocation(strategy.sources().front().file));
    }
  }

  CW_RETURN_IF_ERROR(
      ReserveOpenFiles(ranks.size(), "writing " + std::to_string(ranks.size()) + " rank files"));
  std::vector<std::string> names;
  for (const uint64_t g : ranks)
    names.push_back(RankFolder(g));
  const bool every_rank = options.ranks.empty();
  std::optional<std::variant<OutputDir, OutputEntries>> out;
  fs::path staging;
  if (every_rank) {
    CW_ASSIGN_OR_RETURN(OutputDir dir, OutputDir::Create(folder, options.writer.replace_existing));
    staging = dir.staging();
    out.emplace(std::in_place_index<0>, std::move(dir));
  } else {
    CW_ASSIGN_OR_RETURN(OutputEntries entries,
                        OutputEntries::Create(folder, names, options.writer.replace_existing));
    staging = entries.staging();
    out.emplace(std::in_place_index<1>, std::move(entries));
  }
  std::vector<std::unique_ptr<CheckpointWriter>> writers;
  for (size_t w = 0; w < ranks.size(); ++w) {
    const fs::path dir = staging / names[w];
    std::error_code ec;
    if (!fs::create_directory(dir, ec)) {
      return Error(ErrorCode::kIo, "cannot create the rank folder: " + ec.message(),
                   FileLocation(dir.string()));
    }
    CW_ASSIGN_OR_RETURN(OutputFile file, OutputFile::CreateInStaging(dir / RankFileName(ranks[w])));
    CW_ASSIGN_OR_RETURN(
        auto writer, ms::CreateWriter(std::move(file), std::move(rank_tensors[w]), options.writer));
    writers.push_back(std::move(writer));
  }
  return std::unique_ptr<CheckpointWriter>(std::make_unique<RankFolderWriter>(
      std::move(*out), std::move(writers), std::move(parts), every_rank));
}

}  // namespace cw::distributed
