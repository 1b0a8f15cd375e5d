// The only file of the ruleset module that uses nlohmann-json: config.json -> ConfigValues.
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/base/limits.h"
#include "engine/ruleset/params.h"

namespace cw {
namespace {

using Json = nlohmann::json;

std::optional<Value> Scalar(const Json& j) {
  if (j.is_boolean())
    return Value::Bool(j.get<bool>());
  if (j.is_string())
    return Value::String(j.get<std::string>());
  if (j.is_number_integer() && !(j.is_number_unsigned() && j.get<uint64_t>() > uint64_t{INT64_MAX}))
    return Value::Int(j.get<int64_t>());
  return std::nullopt;
}

// An array of scalars of one type as a list value; nullopt for anything else.
std::optional<Value> ListOf(const Json& j) {
  std::vector<Value> items;
  for (const Json& item : j) {
    auto v = Scalar(item);
    if (!v || (!items.empty() && v->type() != items.front().type()))
      return std::nullopt;
    items.push_back(std::move(*v));
  }
  return Value::List(std::move(items));
}

std::string Shortened(std::string text) {
  constexpr size_t kMax = 80;
  return text.size() <= kMax ? text : text.substr(0, kMax - 4) + " ...";
}

Status Flatten(const Json& j, const std::string& prefix, uint64_t depth, ConfigValues& out) {
  if (depth > limits::kMaxNestingDepth) {
    return Error(ErrorCode::kLimitExceeded,
                 "config.json nests deeper than " + std::to_string(limits::kMaxNestingDepth),
                 FileLocation(out.file));
  }
  if (j.is_object() || j.is_array()) {
    if (!prefix.empty())
      out.entries[prefix] = ConfigEntry{j.is_array() ? ListOf(j) : std::nullopt,
                                        j.is_object() ? "{...}" : Shortened(j.dump())};
    size_t index = 0;
    for (auto it = j.begin(); it != j.end(); ++it, ++index) {
      const std::string key = j.is_object() ? it.key() : std::to_string(index);
      CW_RETURN_IF_ERROR(Flatten(*it, prefix.empty() ? key : prefix + "." + key, depth + 1, out));
    }
    return OkStatus();
  }
  out.entries[prefix] = ConfigEntry{Scalar(j), j.dump()};
  return OkStatus();
}

}  // namespace

Result<ConfigValues> ParseConfigJson(std::string_view text, const std::string& file) {
  ConfigValues out;
  out.file = file;
  Json root;
  try {
    root = Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    const uint64_t offset = e.byte > 0 ? e.byte - 1 : 0;  // nlohmann counts from 1
    return Error(ErrorCode::kCorrupt, std::string("not valid JSON: ") + e.what(),
                 ByteLocation(file, offset));
  } catch (const std::exception& e) {
    return Error(ErrorCode::kCorrupt, std::string("not valid JSON: ") + e.what(),
                 FileLocation(file));
  }
  if (!root.is_object())
    return Error(ErrorCode::kCorrupt, "the root of config.json must be an object",
                 FileLocation(file));
  CW_RETURN_IF_ERROR(Flatten(root, "", 0, out));
  return out;
}

Result<ConfigValues> LoadConfigJson(const std::filesystem::path& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec)
    return Error(ErrorCode::kIo, "cannot read config: " + ec.message(), FileLocation(path));
  if (size > limits::kMaxJsonFileBytes) {
    return Error(ErrorCode::kLimitExceeded,
                 "config of " + std::to_string(size) + " bytes is over the cap of " +
                     std::to_string(limits::kMaxJsonFileBytes) + " bytes",
                 FileLocation(path));
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in)
    return Error(ErrorCode::kIo, "cannot read config", FileLocation(path));
  return ParseConfigJson(text.str(), path.string());
}

}  // namespace cw
