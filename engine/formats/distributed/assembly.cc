#include "engine/formats/distributed/assembly.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <unordered_map>

#include "engine/base/limits.h"
#include "engine/base/text.h"
#include "engine/formats/mindspore/training_state.h"

namespace cw::distributed {
namespace {

namespace ms = cw::mindspore;

std::string RankName(uint64_t rank) { return "rank_" + std::to_string(rank); }

std::string Described(const TensorInfo& t) {
  return ShapeToString(t.shape) + " " + std::string(Name(t.dtype));
}

// Up to `shown` names, then how many more.
std::string NameList(const std::vector<std::string>& names, size_t shown = 3) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < shown; ++i)
    out += (i == 0 ? "" : ", ") + names[i];
  if (names.size() > shown)
    out += " and " + std::to_string(names.size() - shown) + " more";
  return out;
}

class Assembler {
 public:
  Assembler(const std::string& folder, const std::vector<RankInventory>& ranks,
            const ms::ParallelStrategy& strategy, const AssemblyOptions& options)
      : folder_(folder), ranks_(ranks), strategy_(strategy), options_(options) {}

  Result<Assembly> Run() && {
    CW_RETURN_IF_ERROR(CheckRanks());
    CW_RETURN_IF_ERROR(IndexNames());
    for (size_t id = 0; id < names_.size(); ++id) {
      const std::vector<TensorSource>& holders = holders_[id];
      const ms::ParameterStrategy* layout = strategy_.Find(names_[id]);
      Result<AssembledTensor> tensor =
          layout != nullptr ? Sliced(*layout, holders) : Unlisted(names_[id], holders);
      if (!tensor.ok())
        return std::move(tensor).error();
      out_.tensors.push_back(std::move(*tensor));
    }
    CW_RETURN_IF_ERROR(CheckUnusedLayouts());
    if (!unlisted_.empty()) {
      out_.notes.push_back(std::to_string(unlisted_.size()) +
                           " value(s) the strategy does not lay out, taken whole from the first "
                           "rank holding them and compared with every other: " +
                           NameList(unlisted_));
    }
    return std::move(out_);
  }

 private:
  const TensorInfo& Info(const TensorSource& s) const { return ranks_[s.rank].tensors[s.tensor]; }
  const std::string& FileOf(const TensorSource& s) const { return ranks_[s.rank].file; }
  uint64_t StageOf(const TensorSource& s) const { return s.rank / strategy_.devices_per_stage(); }

  Status CheckRanks() const {
    const std::vector<uint32_t>& stages = strategy_.stages();
    for (size_t s = 0; s < stages.size(); ++s) {
      if (stages[s] != s) {
        const ms::StrategySource& first = strategy_.sources().front();
        return Error(ErrorCode::kCorrupt,
                     "the strategy gives pipeline stage " + std::to_string(stages[s]) +
                         " but not stage " + std::to_string(s) +
                         ": give every stage's strategy (their folder, or the merged file)",
                     FileLocation(first.file));
      }
    }
    const uint64_t n = strategy_.devices_per_stage();
    const uint64_t expected = n * stages.size();
    const std::string shape = std::to_string(expected) + " ranks (" + std::to_string(n) +
                              " devices per stage x " + std::to_string(stages.size()) + " stage" +
                              (stages.size() == 1 ? "" : "s") + ")";
    for (uint64_t r = 0; r < expected; ++r) {
      if (r >= ranks_.size() || ranks_[r].rank != r) {
        return Error(ErrorCode::kCorrupt,
                     "rank " + std::to_string(r) + " is missing: the strategy describes " + shape,
                     FileLocation((std::filesystem::path(folder_) / RankName(r)).string()));
      }
    }
    if (ranks_.size() > expected) {
      return Error(ErrorCode::kCorrupt,
                   RankName(ranks_[expected].rank) + " is beyond the " + shape +
                       " the strategy describes (a pipeline run needs every stage's strategy)",
                   FileLocation(ranks_[expected].file));
    }
    return OkStatus();
  }

  Status IndexNames() {
    std::unordered_map<std::string, size_t> id_of;
    for (size_t r = 0; r < ranks_.size(); ++r) {
      const std::vector<TensorInfo>& tensors = ranks_[r].tensors;
      for (size_t t = 0; t < tensors.size(); ++t) {
        const auto [it, added] = id_of.try_emplace(tensors[t].name, names_.size());
        if (added) {
          if (names_.size() == limits::kMaxTensorCount) {
            return Error(ErrorCode::kLimitExceeded,
                         "the rank files hold more than " +
                             std::to_string(limits::kMaxTensorCount) +
                             " distinct names (limits::kMaxTensorCount)",
                         FileLocation(ranks_[r].file));
          }
          names_.push_back(tensors[t].name);
          holders_.emplace_back();
        }
        holders_[it->second].push_back({r, t});
      }
    }
    for (const std::string& name : names_) {
      const std::string_view kind = ms::TrainingStateKind(name);
      if (!kind.empty())
        kinds_present_.emplace(kind, 0).first->second++;
    }
    return OkStatus();
  }

  // Every holder must hold the same dtype and shape as holders[0].
  Status CheckSameSlices(const std::string& name, const std::vector<TensorSource>& holders,
                         const std::string& why) const {
    const TensorInfo& first = Info(holders.front());
    for (const TensorSource& h : holders) {
      const TensorInfo& t = Info(h);
      if (t.dtype != first.dtype || t.shape != first.shape) {
        return Error(ErrorCode::kCorrupt,
                     Quoted(name) + " is " + Described(t) + " in " + RankName(ranks_[h.rank].rank) +
                         " but " + Described(first) + " in " +
                         RankName(ranks_[holders.front().rank].rank) + ": " + why,
                     FileLocation(FileOf(h)));
      }
    }
    return OkStatus();
  }

  Result<AssembledTensor> Unlisted(const std::string& name,
                                   const std::vector<TensorSource>& holders) {
    CW_RETURN_IF_ERROR(CheckSameSlices(
        name, holders,
        "the strategy does not lay it out, yet the ranks hold it cut (a strategy of another "
        "network?)"));
    AssembledTensor out;
    out.info = Info(holders.front());
    Block block;
    for (const uint64_t length : out.info.shape)
      block.slice.push_back({0, length});
    block.source = holders.front();
    block.copies.assign(holders.begin() + 1, holders.end());
    out.blocks.push_back(std::move(block));
    unlisted_.push_back(name);
    return out;
  }

  Result<AssembledTensor> Sliced(const ms::ParameterStrategy& strategy,
                                 const std::vector<TensorSource>& holders) {
    const std::string& name = strategy.name;
    const uint64_t n = strategy_.devices_per_stage();
    // Holders by stage; a stage the strategy does not list for the tensor holds it wrongly.
    std::map<uint64_t, std::vector<TensorSource>> by_stage;
    for (const TensorSource& h : holders) {
      const uint64_t stage = StageOf(h);
      const bool listed = std::any_of(strategy.stages.begin(), strategy.stages.end(),
                                      [&](const ms::StageLayout& s) { return s.stage == stage; });
      if (!listed) {
        std::string stages;
        for (const ms::StageLayout& s : strategy.stages)
          stages += (stages.empty() ? "" : ", ") + std::to_string(s.stage);
        return Error(ErrorCode::kCorrupt,
                     RankName(ranks_[h.rank].rank) + " (pipeline stage " + std::to_string(stage) +
                         ") holds " + Quoted(name) + ", which the strategy lays out on stage " +
                         stages + " only",
                     FileLocation(FileOf(h)));
      }
      by_stage[stage].push_back(h);
    }
    // The lowest stage holding it (MindSpore keeps the lowest stage's layout).
    const uint64_t stage = by_stage.begin()->first;
    const std::vector<TensorSource>& mine = by_stage.begin()->second;
    const ms::StageLayout* chosen = nullptr;
    for (const ms::StageLayout& s : strategy.stages) {
      if (s.stage == stage)
        chosen = &s;
    }
    const ms::TensorLayout& layout = chosen->layout.saved;
    CW_RETURN_IF_ERROR(CheckSameSlices(
        name, mine, "the slices of one tensor have one shape (its layout gives equal blocks)"));
    const TensorInfo& slice_info = Info(mine.front());
    Result<Shape> full = ms::FullShape(layout, slice_info.shape);
    if (!full.ok()) {
      return Error(
          ErrorCode::kCorrupt,
          "the slice of " + Quoted(name) + " does not fit its layout: " + full.error().message(),
          FileLocation(FileOf(mine.front())));
    }
    AssembledTensor out;
    out.info.name = name;
    out.info.dtype = slice_info.dtype;
    out.info.shape = *full;
    const std::optional<uint64_t> bytes = ByteSize(slice_info.dtype, *full);
    if (!bytes) {
      return Error(ErrorCode::kLimitExceeded,
                   "full shape " + ShapeToString(*full) + " of " + Quoted(name) + " overflows",
                   FileLocation(FileOf(mine.front())));
    }
    out.info.byte_size = *bytes;
    out.has_layout = true;
    out.stage = static_cast<uint32_t>(stage);

    // Which holder has each local device, in the chosen stage.
    std::vector<std::optional<TensorSource>> at_device(n);
    for (const TensorSource& h : mine)
      at_device[ranks_[h.rank].rank % n] = h;
    std::vector<size_t> block_of_device(n);
    for (const std::vector<uint64_t>& group : ms::ReplicaGroups(layout)) {
      Block block;
      bool found = false;
      std::vector<std::string> lacking;
      for (const uint64_t d : group) {
        block_of_device[d] = out.blocks.size();
        if (!at_device[d]) {
          lacking.push_back(RankName(stage * n + d));
        } else if (found) {
          block.copies.push_back(*at_device[d]);
        } else {
          found = true;
          block.source = *at_device[d];
          CW_ASSIGN_OR_RETURN(block.slice, ms::SliceOf(layout, *full, d));
        }
      }
      if (!found) {
        return Error(ErrorCode::kCorrupt,
                     "no rank holds the block of " + Quoted(name) + " that " +
                         NameList(lacking, 8) + " should hold",
                     FileLocation((std::filesystem::path(folder_) / lacking.front()).string()));
      }
      out.blocks.push_back(std::move(block));
    }
    // Copies held by other stages: compared when laid out the same way, else left out.
    for (auto it = std::next(by_stage.begin()); it != by_stage.end(); ++it) {
      const ms::StageLayout* other = nullptr;
      for (const ms::StageLayout& s : strategy.stages) {
        if (s.stage == it->first)
          other = &s;
      }
      const bool same =
          other->layout.saved == layout &&
          std::all_of(it->second.begin(), it->second.end(), [&](const auto& h) {
            return Info(h).shape == slice_info.shape && Info(h).dtype == slice_info.dtype;
          });
      if (!same) {
        out_.notes.push_back(Quoted(name) + " of stage " + std::to_string(it->first) +
                             " is laid out otherwise: stage " + std::to_string(stage) +
                             "'s copy is used, the other is not compared");
        continue;
      }
      for (const TensorSource& h : it->second)
        out.blocks[block_of_device[ranks_[h.rank].rank % n]].copies.push_back(h);
    }
    return out;
  }

  Status CheckUnusedLayouts() {
    std::vector<std::string> unused;
    std::map<std::string, uint64_t> absent_kinds;  // kinds no rank file holds at all
    const ms::ParameterLayout* first = nullptr;
    std::unordered_map<std::string_view, bool> present;
    for (const std::string& name : names_)
      present.emplace(name, true);
    for (const ms::ParameterStrategy& p : strategy_.parameters()) {
      if (present.contains(p.name))
        continue;
      const std::string kind(ms::TrainingStateKind(p.name));
      if (!kind.empty() && !kinds_present_.contains(kind)) {
        absent_kinds[kind]++;
        continue;
      }
      if (first == nullptr)
        first = &p.first();
      unused.push_back(p.name);
    }
    for (const auto& [kind, count] : absent_kinds) {
      out_.notes.push_back("the strategy lays out " + std::to_string(count) + " " + kind +
                           " tensors no rank file holds: a checkpoint saved without them");
    }
    if (unused.empty())
      return OkStatus();
    const std::string what = "the strategy lays out " + std::to_string(unused.size()) +
                             " parameter(s) no rank file holds (" + NameList(unused) + ")";
    if (options_.allow_unused_layouts) {
      out_.notes.push_back(what + ": left out (--allow-unused-layouts)");
      return OkStatus();
    }
    return Error(ErrorCode::kCorrupt,
                 what +
                     ": the strategy of another network, or a training state kind held only in "
                     "part? (--allow-unused-layouts reads the checkpoint anyway)",
                 first->where);
  }

  const std::string& folder_;
  const std::vector<RankInventory>& ranks_;
  const ms::ParallelStrategy& strategy_;
  const AssemblyOptions& options_;
  std::vector<std::string> names_;                  // in order of first appearance
  std::vector<std::vector<TensorSource>> holders_;  // per name, by rank
  std::map<std::string, uint64_t, std::less<>> kinds_present_;
  std::vector<std::string> unlisted_;
  Assembly out_;
};

}  // namespace

Result<Assembly> Assemble(const std::string& folder, const std::vector<RankInventory>& ranks,
                          const mindspore::ParallelStrategy& strategy,
                          const AssemblyOptions& options) {
  return Assembler(folder, ranks, strategy, options).Run();
}

}  // namespace cw::distributed
