#include "engine/formats/hf_folder.h"

#include <algorithm>
#include <map>
#include <new>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <utility>

#include <nlohmann/json.hpp>

#include "engine/base/checked_math.h"
#include "engine/base/limits.h"
#include "engine/base/mapped_file.h"
#include "engine/base/output_file.h"
#include "engine/base/text.h"
#include "engine/formats/safetensors/safetensors_writer.h"

namespace cw {
namespace fs = std::filesystem;
namespace {

using Json = nlohmann::json;

constexpr const char* kSafetensorsIndexName = "model.safetensors.index.json";
constexpr const char* kSingleSafetensorsName = "model.safetensors";

// What a folder's list of files may look like, and what messages call it.
struct MapForm {
  const char* noun;   // "index" or "map"
  bool flat_allowed;  // {name: file} at the top level, without a "weight_map" object
};
constexpr MapForm kIndexForm{"index", false};
constexpr MapForm kNameMapForm{"map", true};

// A shard name read from an index must stay inside the index's folder.
bool IsPlainFileName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find_first_of(std::string_view("/\\\0", 3)) == std::string_view::npos;
}

// Line and column (1-based) of a byte offset, for errors in a text file.
Location TextOffsetLocation(const std::string& file, std::string_view text, uint64_t offset) {
  int line = 1;
  int column = 1;
  for (uint64_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  Location where = TextLocation(file, line, column);
  where.offset = offset;
  return where;
}

// nlohmann's message without its "[json.exception...] parse error at line L, column C: " prefix:
// the location is reported separately.
std::string JsonErrorDetail(std::string_view what) {
  if (const size_t column = what.find("column "); column != std::string_view::npos) {
    if (const size_t colon = what.find(": ", column); colon != std::string_view::npos)
      what.remove_prefix(colon + 2);
  }
  return std::string(what);
}

// Keeps the "weight_map" of an index from the parser's events and checks the value types it
// relies on. Everything else is skipped as it streams by: a DOM of the whole index would let a
// 256 MiB index of nested or repeated arrays take gigabytes, while here an open container costs
// the parser one bit and memory stays within the weight map, itself capped at kMaxTensorCount.
// Duplicate keys keep the last value, as nlohmann's DOM and Python's json do.
// In a form that allows it (param_name_map.json), the top-level string entries are kept too: the
// map when there is no "weight_map", checked only then.
class WeightMapHandler {
 public:
  WeightMapHandler(const std::string& file, std::string_view text, MapForm form)
      : file_(file), text_(text), form_(form) {}

  bool null() { return Value(false); }
  bool boolean(bool /*value*/) { return Value(false); }
  bool number_integer(Json::number_integer_t /*value*/) { return Value(false); }
  bool number_unsigned(Json::number_unsigned_t /*value*/) { return Value(false); }
  bool number_float(Json::number_float_t /*value*/, const Json::string_t& /*text*/) {
    return Value(false);
  }
  bool binary(Json::binary_t& /*value*/) { return Value(false); }
  bool string(Json::string_t& value);
  bool start_object(std::size_t /*elements*/) { return Open(true); }
  bool start_array(std::size_t /*elements*/) { return Open(false); }
  bool end_object() { return Close(); }
  bool end_array() { return Close(); }
  bool key(Json::string_t& name);
  bool parse_error(std::size_t position, const std::string& /*last_token*/,
                   const Json::exception& ex) {
    return Fail(ErrorCode::kCorrupt, Noun() + " is not valid JSON: " + JsonErrorDetail(ex.what()),
                TextOffsetLocation(file_, text_, position > 0 ? position - 1 : 0));
  }

  // `parsed`: what sax_parse returned.
  Result<std::map<std::string, std::string>> Take(bool parsed) && {
    if (error_)
      return *std::move(error_);
    if (!parsed)
      return Error(ErrorCode::kInternal, "JSON parser stopped without an error",
                   FileLocation(file_));
    if (!has_weight_map_ && form_.flat_allowed)
      return std::move(*this).TakeFlat();
    if (!has_weight_map_) {
      return Error(ErrorCode::kCorrupt, Noun() + " has no \"weight_map\" object",
                   FileLocation(file_));
    }
    if (shard_of_.empty()) {
      return Error(ErrorCode::kCorrupt, Noun() + " weight_map lists no tensors",
                   FileLocation(file_));
    }
    return std::move(shard_of_);
  }

 private:
  std::string Noun() const { return form_.noun; }
  bool InWeightMap() const { return depth_ == 2 && top_key_ == "weight_map"; }
  // A top-level entry that is a tensor of a flat map (when there turns out to be no weight_map).
  bool InFlatMap() const {
    return form_.flat_allowed && depth_ == 1 && top_key_ != "metadata" && top_key_ != "weight_map";
  }
  Result<std::map<std::string, std::string>> TakeFlat() && {
    if (flat_not_a_file_) {
      return Error(ErrorCode::kCorrupt,
                   Noun() + " entry of tensor " + Quoted(*flat_not_a_file_) + " is not a file name",
                   FileLocation(file_));
    }
    for (const auto& [tensor, file] : flat_) {
      if (!IsPlainFileName(file)) {
        return Error(ErrorCode::kCorrupt,
                     "shard " + Quoted(file) + " of tensor " + Quoted(tensor) +
                         " is not a plain file name in the " + Noun() + "'s folder",
                     FileLocation(file_));
      }
    }
    if (flat_.empty())
      return Error(ErrorCode::kCorrupt, Noun() + " lists no tensors", FileLocation(file_));
    return std::move(flat_);
  }
  bool Fail(ErrorCode code, std::string message, Location where) {
    error_ = Error(code, std::move(message), std::move(where));
    return false;
  }
  bool Corrupt(std::string message) {
    return Fail(ErrorCode::kCorrupt, std::move(message), FileLocation(file_));
  }
  // Checks the type of a value starting at depth_ (0: the root, 1: a top-level value).
  bool Value(bool is_object) {
    if (depth_ == 0 && !is_object)
      return Corrupt(Noun() + " is not a JSON object");
    if (depth_ == 1 && top_key_ == "metadata" && !is_object)
      return Corrupt(Noun() + " \"metadata\" is not an object");
    if (InFlatMap() && !flat_not_a_file_)
      flat_not_a_file_ = top_key_;  // an error only if the map is flat
    if (depth_ == 1 && top_key_ == "weight_map") {
      if (!is_object)
        return Corrupt(Noun() + " \"weight_map\" is not an object");
      has_weight_map_ = true;
      shard_of_.clear();
    }
    if (InWeightMap())
      return Corrupt("weight_map entry of tensor " + Quoted(tensor_) + " is not a file name");
    return true;
  }
  bool Open(bool is_object) {
    if (!Value(is_object))
      return false;
    ++depth_;
    return true;
  }
  bool Close() {
    --depth_;  // the parser balances containers
    return true;
  }

  const std::string& file_;
  std::string_view text_;
  MapForm form_;
  uint64_t depth_ = 0;   // containers open
  std::string top_key_;  // the last key of the root object
  std::string tensor_;   // the last key of the weight_map
  bool has_weight_map_ = false;
  std::map<std::string, std::string> shard_of_;
  std::map<std::string, std::string> flat_;     // top-level string entries (flat form)
  std::optional<std::string> flat_not_a_file_;  // the first other top-level entry
  std::optional<Error> error_;
};

bool WeightMapHandler::key(Json::string_t& name) {
  if (depth_ == 1 && form_.flat_allowed && name.size() > limits::kMaxNameBytes) {
    return Fail(ErrorCode::kLimitExceeded,
                "tensor name of " + std::to_string(name.size()) + " bytes is over the cap of " +
                    std::to_string(limits::kMaxNameBytes) + " bytes",
                FileLocation(file_));
  }
  if (depth_ == 1) {
    top_key_ = std::move(name);
  } else if (InWeightMap()) {
    if (name.size() > limits::kMaxNameBytes) {
      return Fail(ErrorCode::kLimitExceeded,
                  "tensor name of " + std::to_string(name.size()) + " bytes is over the cap of " +
                      std::to_string(limits::kMaxNameBytes) + " bytes",
                  FileLocation(file_));
    }
    tensor_ = std::move(name);
  }
  return true;
}

bool WeightMapHandler::string(Json::string_t& value) {
  if (InFlatMap()) {
    // Checked in TakeFlat(): a weight_map later in the text makes these entries irrelevant.
    if (flat_.size() == limits::kMaxTensorCount && !flat_.contains(top_key_)) {
      return Fail(ErrorCode::kLimitExceeded,
                  Noun() + " lists more than the cap of " +
                      std::to_string(limits::kMaxTensorCount) + " tensors",
                  FileLocation(file_));
    }
    flat_.insert_or_assign(top_key_, std::move(value));
    return true;
  }
  if (!InWeightMap())
    return Value(false);
  if (!IsPlainFileName(value)) {
    return Corrupt("shard " + Quoted(value) + " of tensor " + Quoted(tensor_) +
                   " is not a plain file name in the " + Noun() + "'s folder");
  }
  if (shard_of_.size() == limits::kMaxTensorCount && !shard_of_.contains(tensor_)) {
    return Fail(ErrorCode::kLimitExceeded,
                Noun() + " lists more than the cap of " + std::to_string(limits::kMaxTensorCount) +
                    " tensors",
                FileLocation(file_));
  }
  shard_of_.insert_or_assign(tensor_, std::move(value));
  return true;
}

// tensor name -> shard file name, validated.
Result<std::map<std::string, std::string>> ReadWeightMap(const fs::path& index_json, MapForm form) {
  const std::string file = index_json.string();
  const std::string noun = form.noun;
  CW_ASSIGN_OR_RETURN(const MappedFile mapped, MappedFile::Open(index_json));
  if (mapped.size() > limits::kMaxJsonFileBytes) {
    return Error(ErrorCode::kLimitExceeded,
                 noun + " of " + std::to_string(mapped.size()) + " bytes is over the cap of " +
                     std::to_string(limits::kMaxJsonFileBytes) + " bytes",
                 FileLocation(file));
  }
  const std::string_view text = AsChars(mapped.bytes());
  WeightMapHandler handler(file, text, form);
  bool parsed = false;
  try {
    parsed = Json::sax_parse(text.begin(), text.end(), &handler);
  } catch (const Json::exception& e) {
    return Error(ErrorCode::kCorrupt, noun + " is not valid JSON: " + JsonErrorDetail(e.what()),
                 FileLocation(file));
  } catch (const std::bad_alloc&) {
    return Error(ErrorCode::kLimitExceeded, "out of memory while parsing the " + noun,
                 FileLocation(file));
  }
  return std::move(handler).Take(parsed);
}

class FolderReader final : public CheckpointReader {
 public:
  FolderReader(std::string index_file, std::string noun)
      : index_file_(std::move(index_file)), noun_(std::move(noun)) {}

  // Appends a shard's tensors after checking each against the index.
  Status AddShard(const std::string& shard, std::string path,
                  std::unique_ptr<CheckpointReader> reader,
                  const std::map<std::string, std::string>& shard_of) {
    if (shards_.empty()) {
      format_ = reader->format();
      metadata_ = reader->metadata();
    } else if (reader->format() != format_) {
      return Error(ErrorCode::kUnsupported,
                   "shard " + Quoted(shard) + " is " + std::string(FormatName(reader->format())) +
                       " but earlier shards are " + std::string(FormatName(format_)),
                   FileLocation(path));
    }
    for (size_t i = 0; i < reader->tensors().size(); ++i) {
      const TensorInfo& t = reader->tensors()[i];
      const auto listed = shard_of.find(t.name);
      if (listed == shard_of.end()) {
        return Error(ErrorCode::kCorrupt,
                     "tensor " + Quoted(t.name) + " of shard " + Quoted(shard) +
                         " is not listed in the " + noun_,
                     FileLocation(index_file_));
      }
      if (listed->second != shard) {
        return Error(ErrorCode::kCorrupt,
                     "tensor " + Quoted(t.name) + " is in shard " + Quoted(shard) + ", but the " +
                         noun_ + " places it in " + Quoted(listed->second),
                     FileLocation(index_file_));
      }
      tensors_.push_back(t);
      places_.push_back({shards_.size(), i});
    }
    skipped_.insert(skipped_.end(), reader->skipped().begin(), reader->skipped().end());
    shards_.push_back(std::move(reader));
    shard_paths_.push_back(std::move(path));
    return OkStatus();
  }

  // Every index entry must have been found in its shard.
  Status CheckComplete(const std::map<std::string, std::string>& shard_of) const {
    if (tensors_.size() == shard_of.size())
      return OkStatus();  // each tensor matched a distinct entry, so none is missing
    std::unordered_set<std::string_view> found;
    for (const TensorInfo& t : tensors_)
      found.insert(t.name);
    for (const auto& [name, shard] : shard_of) {
      if (found.count(name) == 0) {
        return Error(ErrorCode::kCorrupt,
                     "tensor " + Quoted(name) + " is listed in the " + noun_ +
                         " but not in shard " + Quoted(shard),
                     FileLocation(index_file_));
      }
    }
    return OkStatus();
  }

  FileFormat format() const override { return format_; }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  Result<TensorData> Read(size_t index) const override {
    const Place& p = places_[index];
    return shards_[p.shard]->Read(p.index);
  }
  const std::string& FileOf(size_t index) const override {
    return shard_paths_[places_[index].shard];
  }
  const std::vector<SkippedValue>& skipped() const override { return skipped_; }
  const std::map<std::string, std::string>& metadata() const override { return metadata_; }
  std::vector<FileExtent> Extents(size_t index) const override {
    return shards_[places_[index].shard]->Extents(places_[index].index);
  }

 private:
  struct Place {
    size_t shard;
    size_t index;  // in the shard's reader
  };

  std::string index_file_;
  std::string noun_;  // what messages call index_file_: "index" or "map"
  FileFormat format_ = FileFormat::kSafetensors;
  std::vector<std::unique_ptr<CheckpointReader>> shards_;
  std::vector<std::string> shard_paths_;
  std::vector<TensorInfo> tensors_;
  std::vector<Place> places_;
  std::vector<SkippedValue> skipped_;
  std::map<std::string, std::string> metadata_;
};

// "model-00003-of-00012.safetensors", numbers padded to 5 digits as huggingface_hub does.
std::string ShardName(size_t index, size_t count) {
  const auto padded = [](size_t n) {
    std::string s = std::to_string(n);
    return std::string(s.size() < 5 ? 5 - s.size() : 0, '0') + s;
  };
  return "model-" + padded(index + 1) + "-of-" + padded(count) + ".safetensors";
}

// The shard of each tensor, in order. A shard is closed when the next tensor would take its
// tensor bytes past the limit; a tensor over the limit therefore always sits alone.
std::vector<size_t> SplitIntoShards(const std::vector<TensorInfo>& tensors, uint64_t max_bytes) {
  std::vector<size_t> shard_of;
  shard_of.reserve(tensors.size());
  size_t shard = 0;
  size_t shard_tensors = 0;
  uint64_t shard_bytes = 0;
  for (const TensorInfo& t : tensors) {
    // shard_bytes + t.byte_size > max_bytes, without overflow.
    const bool exceeds = t.byte_size > max_bytes || shard_bytes > max_bytes - t.byte_size;
    if (shard_tensors > 0 && exceeds) {
      ++shard;
      shard_tensors = 0;
      shard_bytes = 0;
    }
    shard_of.push_back(shard);
    ++shard_tensors;
    shard_bytes += t.byte_size;
  }
  return shard_of;
}

// The index transformers writes: json.dumps(index, indent=2, sort_keys=True) + "\n".
Result<std::string> IndexText(const std::vector<TensorInfo>& tensors,
                              const std::vector<size_t>& shard_of,
                              const std::vector<std::string>& shard_names, const Location& where) {
  uint64_t total_bytes = 0;
  Json index;
  Json& weight_map = index["weight_map"];
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::optional<uint64_t> sum = CheckedAdd(total_bytes, tensors[i].byte_size);
    if (!sum)
      return Error(ErrorCode::kLimitExceeded, "tensor data exceeds 2^64 bytes", where);
    total_bytes = *sum;
    weight_map[tensors[i].name] = shard_names[shard_of[i]];
  }
  index["metadata"]["total_size"] = total_bytes;
  try {
    return index.dump(2, ' ', /*ensure_ascii=*/true) + "\n";
  } catch (const Json::exception& e) {
    return Error(ErrorCode::kUnsupported, std::string("cannot write the index: ") + e.what(),
                 where);
  }
}

// param_name_map.json as MindFormers writes it: {name: file}, no "weight_map" wrapper; laid out
// like the index (indent 2, sorted keys, ASCII escapes, trailing newline).
Result<std::string> NameMapText(const std::vector<TensorInfo>& tensors,
                                const std::vector<size_t>& shard_of,
                                const std::vector<std::string>& shard_names,
                                const Location& where) {
  Json map = Json::object();
  for (size_t i = 0; i < tensors.size(); ++i)
    map[tensors[i].name] = shard_names[shard_of[i]];
  try {
    return map.dump(2, ' ', /*ensure_ascii=*/true) + "\n";
  } catch (const Json::exception& e) {
    return Error(ErrorCode::kUnsupported, std::string("cannot write the map: ") + e.what(), where);
  }
}

class ShardedWriter final : public CheckpointWriter {
 public:
  struct Route {
    size_t shard;
    size_t index;  // in the shard's writer
  };

  ShardedWriter(std::vector<std::unique_ptr<CheckpointWriter>> shards, std::vector<Route> routes,
                std::optional<OutputFile> index)
      : shards_(std::move(shards)), routes_(std::move(routes)), index_(std::move(index)) {}

  Status Write(size_t index, uint64_t offset, ByteSpan bytes) override {
    CW_ASSIGN_OR_RETURN(const Route r, RouteOf(index));
    return shards_[r.shard]->Write(r.index, offset, bytes);
  }
  Status CopyFromFile(size_t index, uint64_t offset, const InputFile& source,
                      uint64_t source_offset, uint64_t size) override {
    CW_ASSIGN_OR_RETURN(const Route r, RouteOf(index));
    return shards_[r.shard]->CopyFromFile(r.index, offset, source, source_offset, size);
  }

  Status Commit() override {
    for (const auto& shard : shards_)
      CW_RETURN_IF_ERROR(shard->Commit());
    if (index_)
      return index_->Commit();
    return OkStatus();
  }

 private:
  Result<Route> RouteOf(size_t index) const {
    if (index >= routes_.size()) {
      return Error(ErrorCode::kInternal, "write to tensor #" + std::to_string(index) + " of " +
                                             std::to_string(routes_.size()));
    }
    return routes_[index];
  }

  std::vector<std::unique_ptr<CheckpointWriter>> shards_;
  std::vector<Route> routes_;
  std::optional<OutputFile> index_;  // written at creation, committed last
};

}  // namespace

Result<std::unique_ptr<CheckpointReader>> OpenShardedFolder(const fs::path& index_json,
                                                            const OpenFileFn& open_file) {
  const std::string index_file = index_json.string();
  const MapForm form = index_json.filename() == kParamNameMapName ? kNameMapForm : kIndexForm;
  const std::string noun = form.noun;
  CW_ASSIGN_OR_RETURN(const auto shard_of, ReadWeightMap(index_json, form));
  std::set<std::string> shards;
  for (const auto& [name, shard] : shard_of)
    shards.insert(shard);
  auto folder = std::make_unique<FolderReader>(index_file, noun);
  for (const std::string& shard : shards) {
    const fs::path path = index_json.parent_path() / shard;
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      return Error(ErrorCode::kIo,
                   "shard " + Quoted(shard) + " listed in the " + noun + " is missing",
                   FileLocation(path.string()))
          .With("reading the folder of " + index_file);
    }
    auto reader = open_file(path);
    if (!reader.ok())
      return std::move(reader).error().With("reading shard " + Quoted(shard));
    CW_RETURN_IF_ERROR(folder->AddShard(shard, path.string(), std::move(reader).value(), shard_of));
  }
  CW_RETURN_IF_ERROR(folder->CheckComplete(shard_of));
  return std::unique_ptr<CheckpointReader>(std::move(folder));
}

Result<std::unique_ptr<CheckpointReader>> OpenUnlistedFolder(const fs::path& folder,
                                                             std::vector<fs::path> files,
                                                             const OpenFileFn& open_file) {
  if (files.size() > limits::kMaxTensorCount) {
    return Error(ErrorCode::kLimitExceeded,
                 std::to_string(files.size()) + " weight files are over the cap of " +
                     std::to_string(limits::kMaxTensorCount),
                 FileLocation(folder.string()));
  }
  std::sort(files.begin(), files.end());
  auto reader = std::make_unique<FolderReader>(folder.string(), "folder");
  // The map a param_name_map.json would hold, built from the files themselves: each name must
  // be in one file only, or which one to convert would be a guess.
  std::map<std::string, std::string> shard_of;
  uint64_t total = 0;
  for (const fs::path& path : files) {
    auto file = open_file(path);
    if (!file.ok())
      return std::move(file).error().With("reading the files of folder " + folder.string());
    const std::string name = path.filename().string();
    const auto& tensors = (*file)->tensors();
    if (tensors.size() > limits::kMaxTensorCount - total) {
      return Error(ErrorCode::kLimitExceeded,
                   "the folder's files hold more than the cap of " +
                       std::to_string(limits::kMaxTensorCount) + " tensors",
                   FileLocation(path.string()));
    }
    total += tensors.size();
    for (const TensorInfo& t : tensors) {
      const auto [at, added] = shard_of.emplace(t.name, name);
      if (!added) {
        return Error(ErrorCode::kCorrupt,
                     "tensor " + Quoted(t.name) + " is also in " + Quoted(at->second) +
                         ": without a param_name_map.json, names must be unique across the "
                         "folder's files",
                     FileLocation(path.string()));
      }
    }
    CW_RETURN_IF_ERROR(reader->AddShard(name, path.string(), std::move(file).value(), shard_of));
  }
  return std::unique_ptr<CheckpointReader>(std::move(reader));
}

Result<std::unique_ptr<CheckpointWriter>> CreateShardedSafetensorsWriter(
    const fs::path& folder, std::vector<TensorInfo> tensors, const WriterOptions& options) {
  const bool name_map = options.folder_layout == FolderLayout::kParamNameMap;
  const std::vector<size_t> shard_of = SplitIntoShards(tensors, options.max_shard_bytes);
  const size_t count = shard_of.empty() ? 1 : shard_of.back() + 1;
  std::vector<std::string> names;
  for (size_t s = 0; s < count; ++s)
    names.push_back(count == 1 && !name_map ? kSingleSafetensorsName : ShardName(s, count));

  std::vector<std::vector<TensorInfo>> shard_tensors(count);
  std::vector<ShardedWriter::Route> routes;
  routes.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    routes.push_back({shard_of[i], shard_tensors[shard_of[i]].size()});
    shard_tensors[shard_of[i]].push_back(tensors[i]);
  }

  WriterOptions shard_options = options;
  // transformers 4.x refuses shards without "pt"; MindSpore writes "ms" into its own.
  shard_options.metadata = {{"format", name_map ? "ms" : "pt"}};
  for (const auto& [key, value] : options.metadata)
    shard_options.metadata.insert_or_assign(key, value);

  std::vector<std::unique_ptr<CheckpointWriter>> writers;
  for (size_t s = 0; s < count; ++s) {
    CW_ASSIGN_OR_RETURN(OutputFile out, OutputFile::CreateInStaging(folder / names[s]));
    CW_ASSIGN_OR_RETURN(
        auto writer,
        safetensors::CreateWriter(std::move(out), std::move(shard_tensors[s]), shard_options));
    writers.push_back(std::move(writer));
  }

  std::optional<OutputFile> index;
  if (count > 1 || name_map) {
    const fs::path index_path = folder / (name_map ? kParamNameMapName : kSafetensorsIndexName);
    const Location where = FileLocation(index_path.string());
    CW_ASSIGN_OR_RETURN(const std::string text, name_map
                                                    ? NameMapText(tensors, shard_of, names, where)
                                                    : IndexText(tensors, shard_of, names, where));
    CW_ASSIGN_OR_RETURN(OutputFile out, OutputFile::CreateInStaging(index_path));
    CW_RETURN_IF_ERROR(out.WriteAt(0, AsBytes(text)));
    index.emplace(std::move(out));
  }
  return std::unique_ptr<CheckpointWriter>(
      std::make_unique<ShardedWriter>(std::move(writers), std::move(routes), std::move(index)));
}

}  // namespace cw
