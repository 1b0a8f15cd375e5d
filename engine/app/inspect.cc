#include <algorithm>
#include <ostream>
#include <set>

#include <nlohmann/json.hpp>

#include "cw/convert_weight.h"
#include "engine/app/conversion_setup.h"
#include "engine/app/inspect_strategy.h"
#include "engine/formats/checkpoint_io.h"
#include "engine/formats/distributed/rank_folders.h"

namespace cw {
namespace {

void PrintJson(const CheckpointReader& reader, std::ostream& out) {
  nlohmann::ordered_json j;
  j["format"] = std::string(FormatName(reader.format()));
  auto& tensors = j["tensors"] = nlohmann::ordered_json::array();
  uint64_t total = 0;
  for (size_t i = 0; i < reader.tensors().size(); ++i) {
    const TensorInfo& t = reader.tensors()[i];
    tensors.push_back({{"name", t.name},
                       {"dtype", std::string(Name(t.dtype))},
                       {"shape", t.shape},
                       {"bytes", t.byte_size},
                       {"file", reader.FileOf(i)}});
    total += t.byte_size;
  }
  auto& skipped = j["skipped"] = nlohmann::ordered_json::array();
  for (const SkippedValue& s : reader.skipped()) {
    skipped.push_back({{"name", s.name}, {"description", s.description}});
  }
  j["metadata"] = reader.metadata();
  j["total_bytes"] = total;
  // Replace invalid UTF-8 rather than fail: names are checked by the readers, this is output.
  out << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

void PrintText(const CheckpointReader& reader, std::ostream& out) {
  size_t width = 0;
  for (const TensorInfo& t : reader.tensors())
    width = std::max(width, t.name.size());
  uint64_t total = 0;
  std::set<std::string> files;
  for (size_t i = 0; i < reader.tensors().size(); ++i) {
    const TensorInfo& t = reader.tensors()[i];
    out << t.name << std::string(width - t.name.size() + 2, ' ') << Name(t.dtype)
        << std::string(6 - std::min<size_t>(5, Name(t.dtype).size()), ' ') << ShapeToString(t.shape)
        << "  " << t.byte_size << "\n";
    total += t.byte_size;
    files.insert(reader.FileOf(i));
    for (const FileExtent& e : reader.Extents(i)) {  // a distributed tensor's other rank files
      if (e.file != nullptr)
        files.insert(*e.file);
    }
  }
  for (const SkippedValue& s : reader.skipped()) {
    out << "skipped " << s.name << ": " << s.description << "\n";
  }
  out << reader.tensors().size() << " tensors, " << total << " bytes, "
      << FormatName(reader.format()) << ", " << files.size()
      << (files.size() == 1 ? " file" : " files") << "\n";
}

}  // namespace

Status Inspect(const InspectRequest& request, std::ostream& out, std::ostream& err) {
  // A folder of rank folders is a checkpoint even when a strategy file sits beside them.
  if (!distributed::IsDistributedFolder(request.path) && request.distributed.strategy.empty() &&
      IsStrategyPath(request.path)) {
    return InspectStrategy(request.path, request.json, out);
  }
  std::vector<std::string> notes;
  CW_ASSIGN_OR_RETURN(auto reader,
                      OpenCheckpoint(request.path, OpenOptionsFor(request.distributed), &notes));
  for (const std::string& note : notes)
    err << "note: " << note << "\n";
  if (request.json) {
    PrintJson(*reader, out);
  } else {
    PrintText(*reader, out);
  }
  return OkStatus();
}

}  // namespace cw
