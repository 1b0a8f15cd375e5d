#include "engine/formats/mindspore/parallel_strategy.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "engine/base/byte_reader.h"
#include "engine/base/limits.h"
#include "engine/base/mapped_file.h"
#include "engine/base/text.h"
#include "engine/formats/mindspore/strategy_layout.h"
#include "engine/formats/mindspore/strategy_wire.h"

namespace cw::mindspore {
namespace fs = std::filesystem;

using NamedLayouts = std::vector<std::pair<std::string, ParameterLayout>>;  // file order

// One file, read and checked, its stages apart.
struct FileStrategy {
  StrategySource source;
  std::map<uint32_t, NamedLayouts> stages;
  std::vector<OperatorStrategy> operators;
};

// Joins files stage by stage (a stage comes from the first file that gives it), then lists the
// parameters and checks what must hold across all of them.
class StrategyBuilder {
 public:
  Status Add(FileStrategy file);
  Result<ParallelStrategy> Finish(bool need_all_stages, const std::string& where) &&;

 private:
  struct Stage {
    std::string file;
    NamedLayouts layouts;
  };

  ParallelStrategy out_;
  std::map<uint32_t, Stage> stages_;
};

namespace {

Error NotAStrategy(ByteSpan bytes, const std::string& file) {
  const std::string why = bytes.front() == std::byte{0x0A}
                              ? "it starts as a MindSpore checkpoint (0x0a), not with 0x08"
                              : "its first bytes are not the current_stage field (0x08)";
  return Error(ErrorCode::kCorrupt, "not a MindSpore parallel-strategy file: " + why,
               ByteLocation(file, 0));
}

std::string StageList(const std::vector<uint32_t>& stages) {
  std::string out;
  for (const uint32_t s : stages)
    out += (out.empty() ? "" : ", ") + std::to_string(s);
  return out;
}

// A strategy is merged when its first name has a stage prefix; then every name must have one.
Status SplitName(const LayoutItem& item, bool merged, uint32_t file_stage, const std::string& file,
                 uint32_t& stage, std::string_view& name) {
  const std::optional<StagePrefixed> prefixed = SplitStagePrefix(item.param_name);
  if (prefixed.has_value() != merged) {
    return Error(ErrorCode::kCorrupt,
                 "parameter name " + Quoted(item.param_name) +
                     (merged ? " has no stage prefix, but the first name of this file has one"
                             : " has a stage prefix, but the first name of this file has none"),
                 ByteLocation(file, item.param_name_offset));
  }
  stage = merged ? prefixed->stage : file_stage;
  name = merged ? prefixed->name : item.param_name;
  return OkStatus();
}

Result<FileStrategy> ReadFile(ByteSpan bytes, const std::string& file) {
  if (bytes.empty())
    return Error(ErrorCode::kCorrupt, "empty file: not a parallel-strategy file",
                 ByteLocation(file, 0));
  if (!LooksLikeStrategyMap(bytes))
    return NotAStrategy(bytes, file);
  CW_ASSIGN_OR_RETURN(const StrategyMap map, DecodeStrategyMap(ByteReader(bytes, file)));
  if (map.layouts.empty()) {
    return Error(ErrorCode::kCorrupt, "strategy file holds no parameter layouts",
                 ByteLocation(file, 0));
  }
  FileStrategy out;
  out.source.file = file;
  out.source.current_stage = map.current_stage;
  out.source.merged = SplitStagePrefix(map.layouts.front().param_name).has_value();
  out.source.layout_items = map.layouts.size();
  out.source.operators = map.operators.size();
  // MindSpore's merge takes a per-rank file's stage from its first operator.
  const uint32_t file_stage = map.operators.empty() ? 0 : map.operators.front().stage;
  std::set<std::pair<uint32_t, std::string_view>> seen;
  for (const LayoutItem& item : map.layouts) {
    uint32_t stage = 0;
    std::string_view name;
    CW_RETURN_IF_ERROR(SplitName(item, out.source.merged, file_stage, file, stage, name));
    if (!seen.emplace(stage, name).second) {
      return Error(
          ErrorCode::kCorrupt,
          "parameter " + Quoted(name) + " is listed twice for stage " + std::to_string(stage),
          ByteLocation(file, item.offset));
    }
    CW_ASSIGN_OR_RETURN(ParameterLayout layout, ReadParameterLayout(item, name, file));
    out.stages[stage].emplace_back(std::string(name), std::move(layout));
  }
  for (const auto& [stage, layouts] : out.stages)
    out.source.stages.push_back(stage);
  for (const OperatorItem& op : map.operators)
    out.operators.push_back({std::string(op.name), op.stage});
  return out;
}

Result<FileStrategy> ReadFileAt(const fs::path& path) {
  if (path.extension() == ".json") {
    return Error(ErrorCode::kUnsupported,
                 "JSON strategy files are not read; use the protobuf form MindSpore saves by "
                 "default",
                 FileLocation(path.string()));
  }
  CW_ASSIGN_OR_RETURN(const MappedFile file, MappedFile::Open(path));
  if (file.size() > limits::kMaxStrategyFileBytes) {
    return Error(ErrorCode::kLimitExceeded,
                 "strategy file of " + std::to_string(file.size()) + " bytes is over the cap of " +
                     std::to_string(limits::kMaxStrategyFileBytes) +
                     " (limits::kMaxStrategyFileBytes)",
                 FileLocation(path.string()));
  }
  return ReadFile(file.bytes(), path.string());
}

// A later file giving a stage again must give exactly the same parameters and layouts.
Status CompareStage(uint32_t stage, const std::string& first_file, const NamedLayouts& first,
                    const NamedLayouts& again, const std::string& file) {
  std::map<std::string_view, const ParameterLayout*> known;
  for (const auto& [name, layout] : first)
    known.emplace(name, &layout);
  const std::string prefix =
      "stage " + std::to_string(stage) + " is also given by " + first_file + ", differently: ";
  for (const auto& [name, layout] : again) {
    const auto it = known.find(name);
    if (it == known.end())
      return Error(ErrorCode::kCorrupt, prefix + Quoted(name) + " is not there", layout.where);
    if (!it->second->SameLayout(layout)) {
      return Error(ErrorCode::kCorrupt, prefix + Quoted(name) + " is laid out otherwise",
                   layout.where);
    }
    known.erase(it);
  }
  if (!known.empty()) {
    return Error(ErrorCode::kCorrupt, prefix + Quoted(known.begin()->first) + " is missing here",
                 FileLocation(file));
  }
  return OkStatus();
}

// A merged file must hold every stage; a per-rank file holds its own stage only.
Result<ParallelStrategy> OneFile(FileStrategy strategy) {
  const bool merged = strategy.source.merged;
  const std::string file = strategy.source.file;
  StrategyBuilder builder;
  CW_RETURN_IF_ERROR(builder.Add(std::move(strategy)));
  return std::move(builder).Finish(merged, file);
}

}  // namespace

bool ParameterLayout::SameLayout(const ParameterLayout& other) const {
  return layout == other.layout && field == other.field &&
         opt_weight_shard_step == other.opt_weight_shard_step &&
         opt_weight_shard_size == other.opt_weight_shard_size;
}

const ParameterStrategy* ParallelStrategy::Find(std::string_view name) const {
  const auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &parameters_[it->second];
}

Status StrategyBuilder::Add(FileStrategy file) {
  bool adds_a_stage = false;
  for (auto& [stage, layouts] : file.stages) {
    const auto it = stages_.find(stage);
    if (it != stages_.end()) {
      CW_RETURN_IF_ERROR(
          CompareStage(stage, it->second.file, it->second.layouts, layouts, file.source.file));
      continue;
    }
    stages_.emplace(stage, Stage{file.source.file, std::move(layouts)});
    adds_a_stage = true;
  }
  file.source.skipped = !adds_a_stage;
  out_.sources_.push_back(std::move(file.source));
  if (adds_a_stage) {
    for (OperatorStrategy& op : file.operators)
      out_.operators_.push_back(std::move(op));
  }
  return OkStatus();
}

Result<ParallelStrategy> StrategyBuilder::Finish(bool need_all_stages,
                                                 const std::string& where) && {
  for (auto& [stage, s] : stages_) {
    out_.stages_.push_back(stage);
    for (auto& [name, layout] : s.layouts) {
      const auto [it, added] = out_.index_.try_emplace(name, out_.parameters_.size());
      if (added)
        out_.parameters_.push_back({name, {}});
      out_.parameters_[it->second].stages.push_back({stage, std::move(layout)});
    }
  }
  const ParameterLayout& reference = out_.parameters_.front().first();
  out_.devices_per_stage_ = DeviceCount(reference.layout);
  for (const ParameterStrategy& p : out_.parameters_) {
    for (const StageLayout& s : p.stages) {
      if (DeviceCount(s.layout.layout) != out_.devices_per_stage_) {
        return Error(ErrorCode::kCorrupt,
                     "parameter " + Quoted(p.name) + ": device matrix " +
                         ShapeToString(s.layout.layout.dev_matrix) + " has " +
                         std::to_string(DeviceCount(s.layout.layout)) +
                         " devices, but the one of " + Quoted(out_.parameters_.front().name) +
                         " has " + std::to_string(out_.devices_per_stage_) +
                         " (every stage has the same number of devices)",
                     s.layout.where);
      }
    }
  }
  const std::vector<uint32_t>& stages = out_.stages_;
  if (need_all_stages && stages.back() + 1 != stages.size()) {
    return Error(ErrorCode::kCorrupt,
                 "pipeline stages " + StageList(stages) +
                     " are given, but not every stage from 0 to " + std::to_string(stages.back()),
                 FileLocation(where));
  }
  return std::move(out_);
}

Result<ParallelStrategy> ParseParallelStrategy(ByteSpan bytes, const std::string& file) {
  CW_ASSIGN_OR_RETURN(FileStrategy strategy, ReadFile(bytes, file));
  return OneFile(std::move(strategy));
}

Result<ParallelStrategy> LoadParallelStrategy(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    CW_ASSIGN_OR_RETURN(FileStrategy strategy, ReadFileAt(path));
    return OneFile(std::move(strategy));
  }
  std::vector<fs::path> files;
  bool json = false;
  for (fs::directory_iterator it(path, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec))
      continue;
    const fs::path extension = it->path().extension();
    if (extension == ".ckpt")
      files.push_back(it->path());
    json = json || extension == ".json";
  }
  if (ec)
    return Error(ErrorCode::kIo, "cannot list the folder: " + ec.message(),
                 FileLocation(path.string()));
  if (files.empty()) {
    return Error(json ? ErrorCode::kUnsupported : ErrorCode::kUsage,
                 json ? "folder holds JSON strategy files only, which are not read"
                      : "folder holds no strategy file (*.ckpt)",
                 FileLocation(path.string()));
  }
  std::sort(files.begin(), files.end());
  StrategyBuilder builder;
  for (const fs::path& file : files) {
    CW_ASSIGN_OR_RETURN(FileStrategy strategy, ReadFileAt(file));
    CW_RETURN_IF_ERROR(builder.Add(std::move(strategy)));
  }
  return std::move(builder).Finish(true, path.string());
}

}  // namespace cw::mindspore
