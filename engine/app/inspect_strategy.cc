#include "engine/app/inspect_strategy.h"

#include <algorithm>
#include <array>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/base/mapped_file.h"
#include "engine/formats/checkpoint_io.h"
#include "engine/formats/mindspore/parallel_strategy.h"
#include "engine/formats/mindspore/strategy_wire.h"

namespace cw {
namespace fs = std::filesystem;
namespace ms = mindspore;
namespace {

using Json = nlohmann::ordered_json;

bool IsStrategyFile(const fs::path& path) {
  const Result<MappedFile> file = MappedFile::Open(path);
  return file.ok() && !SniffFormat(file->bytes()) && ms::LooksLikeStrategyMap(file->bytes());
}

std::string List(const std::vector<uint64_t>& values) { return ShapeToString(values); }

// A tensor map as MindSpore prints it: -1 for an axis not cut, the device axis, or the list of
// device axes of an axis cut by several.
std::string TensorMapText(const ms::TensorLayout& layout) {
  std::string out = "[";
  for (size_t i = 0; i < layout.tensor_map.size(); ++i) {
    const std::vector<uint32_t>& axes = layout.tensor_map[i];
    out += i == 0 ? "" : ", ";
    if (axes.size() == 1) {
      out += std::to_string(axes.front());
    } else if (axes.empty()) {
      out += "-1";
    } else {
      out += List(std::vector<uint64_t>(axes.begin(), axes.end()));
    }
  }
  return out + "]";
}

Json TensorMapJson(const ms::TensorLayout& layout) {
  Json out = Json::array();
  for (const std::vector<uint32_t>& axes : layout.tensor_map) {
    if (axes.size() == 1) {
      out.push_back(axes.front());
    } else if (axes.empty()) {
      out.push_back(-1);
    } else {
      out.push_back(axes);
    }
  }
  return out;
}

// The part of each axis one rank's slice covers: [1/2, 1].
std::string FractionText(const std::vector<uint64_t>& pieces) {
  std::string out = "[";
  for (size_t i = 0; i < pieces.size(); ++i)
    out += (i == 0 ? "" : ", ") + (pieces[i] == 1 ? "1" : "1/" + std::to_string(pieces[i]));
  return out + "]";
}

std::string OptShardText(const ms::ParameterLayout& p) {
  if (p.saved == p.layout)
    return "-";
  return "step " + std::to_string(p.opt_weight_shard_step) + ", size " +
         (p.opt_weight_shard_size == -1 ? "all" : std::to_string(p.opt_weight_shard_size));
}

std::string StagesText(const std::vector<uint32_t>& stages) {
  std::string out;
  for (const uint32_t s : stages)
    out += (out.empty() ? "" : ",") + std::to_string(s);
  return out;
}

// How many ranks hold each slice.
uint64_t Replicas(const ms::ParameterLayout& p) {
  const std::vector<uint64_t> pieces = ms::PiecesPerAxis(p.saved);
  uint64_t slices = 1;
  for (const uint64_t n : pieces)
    slices *= n;
  return ms::DeviceCount(p.saved) / slices;
}

// A parameter's stages grouped by layout, in stage order: one table row each.
std::vector<std::pair<std::vector<uint32_t>, const ms::ParameterLayout*>> Rows(
    const ms::ParameterStrategy& p) {
  std::vector<std::pair<std::vector<uint32_t>, const ms::ParameterLayout*>> rows;
  for (const ms::StageLayout& s : p.stages) {
    const auto same = [&](const auto& row) { return row.second->SameLayout(s.layout); };
    const auto it = std::find_if(rows.begin(), rows.end(), same);
    if (it == rows.end()) {
      rows.push_back({{s.stage}, &s.layout});
    } else {
      it->first.push_back(s.stage);
    }
  }
  return rows;
}

// "1 parameter", "363 parameters".
std::string Count(uint64_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

void PrintHeader(const ms::ParallelStrategy& s, std::ostream& out) {
  out << "MindSpore parallel strategy: " << Count(s.parameters().size(), "parameter") << ", "
      << Count(s.operators().size(), "operator") << ", "
      << Count(s.stages().size(), "pipeline stage") << " (" << StagesText(s.stages()) << "), "
      << Count(s.devices_per_stage(), "device") << " per stage\n";
  for (const ms::StrategySource& f : s.sources()) {
    out << "file " << f.file << ": " << (f.merged ? "merged" : "per-rank") << ", stage"
        << (f.stages.size() == 1 ? " " : "s ") << StagesText(f.stages) << ", "
        << Count(f.layout_items, "layout") << ", " << Count(f.operators, "operator")
        << (f.skipped ? "; skipped: an earlier file gives the same" : "") << "\n";
  }
}

void PrintTable(const ms::ParallelStrategy& s, std::ostream& out) {
  using Row = std::array<std::string, 7>;
  std::vector<Row> rows = {
      {"name", "stage", "dev_matrix", "tensor_map", "opt_shard", "slice", "replicas"}};
  for (const ms::ParameterStrategy& p : s.parameters()) {
    for (const auto& [stages, layout] : Rows(p)) {
      rows.push_back({p.name, StagesText(stages), List(layout->layout.dev_matrix),
                      TensorMapText(layout->layout), OptShardText(*layout),
                      FractionText(ms::PiecesPerAxis(layout->saved)),
                      std::to_string(Replicas(*layout))});
    }
  }
  std::array<size_t, 7> width{};
  for (const Row& row : rows) {
    for (size_t c = 0; c < row.size(); ++c)
      width[c] = std::max(width[c], row[c].size());
  }
  for (const Row& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c)
      line += row[c] + std::string(c + 1 == row.size() ? 0 : width[c] - row[c].size() + 2, ' ');
    out << line << "\n";
  }
}

// Which piece of each axis every rank holds, once per distinct layout.
void PrintPieces(const ms::ParallelStrategy& s, std::ostream& out) {
  std::vector<std::pair<const ms::ParameterLayout*, size_t>> layouts;  // with their use count
  for (const ms::ParameterStrategy& p : s.parameters()) {
    for (const auto& row : Rows(p)) {
      const ms::ParameterLayout* layout = row.second;
      const auto same = [&](const auto& l) { return l.first->SameLayout(*layout); };
      const auto it = std::find_if(layouts.begin(), layouts.end(), same);
      if (it == layouts.end()) {
        layouts.push_back({layout, 1});
      } else {
        ++it->second;
      }
    }
  }
  out << "\nPiece of each axis held by each rank (local rank r of stage p is global rank p * "
      << s.devices_per_stage() << " + r):\n";
  for (const auto& [layout, uses] : layouts) {
    out << "  dev_matrix " << List(layout->layout.dev_matrix) << ", tensor_map "
        << TensorMapText(layout->layout) << ", opt_shard " << OptShardText(*layout) << " ("
        << Count(uses, "parameter") << "):";
    std::string pieces;
    for (const std::vector<uint64_t>& group : ms::ReplicaGroups(layout->saved)) {
      std::string ranks;
      for (const uint64_t r : group)
        ranks += (ranks.empty() ? "" : ",") + std::to_string(r);
      pieces += std::string(pieces.empty() ? " " : "; ") +
                List(ms::PieceIndex(layout->saved, group.front())) +
                (group.size() == 1 ? " on rank " : " on ranks ") + ranks;
    }
    out << pieces << "\n";
  }
  out << "\nA strategy holds no shapes. Each rank's checkpoint has the shape of its slices\n"
         "(convert_weight inspect rank_0/<file>.ckpt): times the denominators of the slice\n"
         "column, they give the full shapes.\n";
}

Json StageJson(const ms::StageLayout& s, uint64_t devices) {
  const ms::ParameterLayout& p = s.layout;
  Json slices = Json::array();
  for (const std::vector<uint64_t>& group : ms::ReplicaGroups(p.saved)) {
    Json ranks = Json::array();
    for (const uint64_t r : group)
      ranks.push_back(s.stage * devices + r);
    slices.push_back({{"piece", ms::PieceIndex(p.saved, group.front())}, {"ranks", ranks}});
  }
  return {{"stage", s.stage},
          {"dev_matrix", p.layout.dev_matrix},
          {"tensor_map", TensorMapJson(p.layout)},
          {"field", p.field},
          {"opt_weight_shard_step", p.opt_weight_shard_step},
          {"opt_weight_shard_size", p.opt_weight_shard_size},
          {"pieces", ms::PiecesPerAxis(p.saved)},
          {"slices", slices}};
}

void PrintJson(const ms::ParallelStrategy& s, std::ostream& out) {
  Json j;
  j["format"] = "mindspore-strategy";
  auto& files = j["files"] = Json::array();
  for (const ms::StrategySource& f : s.sources()) {
    files.push_back({{"file", f.file},
                     {"current_stage", f.current_stage},
                     {"merged", f.merged},
                     {"stages", f.stages},
                     {"layout_items", f.layout_items},
                     {"operators", f.operators},
                     {"skipped", f.skipped}});
  }
  j["devices_per_stage"] = s.devices_per_stage();
  j["stages"] = s.stages();
  auto& params = j["parameters"] = Json::array();
  for (const ms::ParameterStrategy& p : s.parameters()) {
    Json stages = Json::array();
    for (const ms::StageLayout& stage : p.stages)
      stages.push_back(StageJson(stage, s.devices_per_stage()));
    params.push_back({{"name", p.name}, {"stages", stages}});
  }
  auto& ops = j["operators"] = Json::array();
  for (const ms::OperatorStrategy& op : s.operators())
    ops.push_back({{"name", op.name}, {"stage", op.stage}});
  out << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

}  // namespace

bool IsStrategyPath(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec))
    return IsStrategyFile(path);
  bool any = false;
  for (fs::directory_iterator it(path, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec))
      continue;
    const std::string ext = it->path().extension().string();
    if (ext == ".safetensors" || ext == ".bin" || ext == ".pt" || ext == ".pth")
      return false;
    if (ext != ".ckpt")
      continue;
    if (!IsStrategyFile(it->path()))
      return false;
    any = true;
  }
  return any && !ec;
}

Status InspectStrategy(const fs::path& path, bool json, std::ostream& out) {
  CW_ASSIGN_OR_RETURN(const ms::ParallelStrategy strategy, ms::LoadParallelStrategy(path));
  if (json) {
    PrintJson(strategy, out);
    return OkStatus();
  }
  PrintHeader(strategy, out);
  PrintTable(strategy, out);
  PrintPieces(strategy, out);
  return OkStatus();
}

}  // namespace cw
