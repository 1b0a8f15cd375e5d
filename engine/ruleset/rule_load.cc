// Reading rule files from disk, following `extends:`, and running the structural checks.
#include <fstream>
#include <set>
#include <sstream>

#include "engine/base/limits.h"
#include "engine/ruleset/rule_build.h"
#include "engine/ruleset/rule_file.h"

namespace cw {
namespace {

namespace fs = std::filesystem;

constexpr int kMaxExtendsDepth = 8;

Result<std::string> ReadRuleText(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec)
    return Error(ErrorCode::kIo, "cannot read rule file: " + ec.message(), FileLocation(path));
  if (size > limits::kMaxRuleFileBytes) {
    return Error(ErrorCode::kLimitExceeded,
                 "rule file of " + std::to_string(size) + " bytes is over the cap of " +
                     std::to_string(limits::kMaxRuleFileBytes) + " bytes",
                 FileLocation(path));
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in)
    return Error(ErrorCode::kIo, "cannot read rule file", FileLocation(path));
  return text.str();
}

template <typename Decl>
void Override(std::vector<Decl>& base, std::vector<Decl> own) {
  for (Decl& d : own) {
    bool replaced = false;
    for (Decl& b : base) {
      if (b.name == d.name) {
        b = d;
        replaced = true;
      }
    }
    if (!replaced)
      base.push_back(std::move(d));
  }
}

class Loader {
 public:
  explicit Loader(Diagnostics& diag) : diag_(diag) {}

  // The rule set of `text` with everything it extends merged in (not yet checked).
  std::optional<RuleSet> Load(std::string_view text, const std::string& file,
                              const fs::path& base_dir, int depth) {
    auto root = ParseYaml(text, file);
    if (!root.ok()) {
      diag_.Add(std::move(root).error());
      return std::nullopt;
    }
    RuleFileParts parts = BuildRuleFile(*root, diag_);
    parts.rules.sources = {file};
    if (parts.extends.empty())
      return std::move(parts.rules);
    auto base = LoadBase(parts, base_dir, depth);
    if (!base)
      return std::nullopt;
    return Merge(std::move(*base), std::move(parts));
  }

 private:
  std::optional<RuleSet> LoadBase(const RuleFileParts& parts, const fs::path& base_dir, int depth) {
    const fs::path path = base_dir / parts.extends;
    std::error_code ec;
    const std::string key = fs::weakly_canonical(path, ec).string();
    if (depth >= kMaxExtendsDepth || !visiting_.insert(key).second) {
      diag_.Report("extends \"" + parts.extends + "\" makes a cycle or is nested over " +
                       std::to_string(kMaxExtendsDepth) + " deep",
                   parts.extends_where);
      return std::nullopt;
    }
    auto text = ReadRuleText(path);
    if (!text.ok()) {
      diag_.Add(std::move(text).error().With("reading the file named by extends at " +
                                             parts.extends_where.file + ":" +
                                             std::to_string(parts.extends_where.line)));
      return std::nullopt;
    }
    auto base = Load(*text, path.string(), path.parent_path(), depth + 1);
    visiting_.erase(key);
    return base;
  }

  static RuleSet Merge(RuleSet base, RuleFileParts parts) {
    RuleSet& own = parts.rules;
    base.file = own.file;
    base.sources.insert(base.sources.begin(), own.file);
    base.name = own.name;
    if (parts.has_description)
      base.description = own.description;
    if (parts.has_models)
      base.models = own.models;
    if (parts.has_container)
      base.hf_container = own.hf_container;
    if (parts.has_fp8_scales)
      base.hf_fp8_scales = own.hf_fp8_scales;
    if (parts.has_ms_folder)
      base.ms_folder = own.ms_folder;
    Override(base.params, std::move(own.params));
    Override(base.placeholders, std::move(own.placeholders));
    Override(base.conditions, std::move(own.conditions));
    for (Rule& r : own.rules)
      base.rules.push_back(std::move(r));
    return base;
  }

  Diagnostics& diag_;
  std::set<std::string> visiting_;
};

Result<RuleSet> FirstError(RuleLoad load) {
  if (load.errors.empty())
    return std::move(*load.rules);
  Error first = std::move(load.errors.front());
  if (load.errors.size() == 1)
    return first;
  return Error(
      first.code(),
      first.message() + " (and " + std::to_string(load.errors.size() - 1) + " more problems)",
      first.where());
}

}  // namespace

RuleLoad ParseRuleText(std::string_view text, const std::string& file,
                       const std::filesystem::path& base_dir) {
  RuleLoad out;
  Diagnostics diag;
  Loader loader(diag);
  std::optional<RuleSet> rules = loader.Load(text, file, base_dir, 0);
  if (rules)
    CheckRuleSet(*rules, diag);
  out.errors = std::move(diag.errors);
  if (out.errors.empty())
    out.rules = std::move(rules);
  return out;
}

RuleLoad ParseRuleFile(const std::filesystem::path& path) {
  auto text = ReadRuleText(path);
  if (!text.ok()) {
    RuleLoad out;
    out.errors.push_back(std::move(text).error());
    return out;
  }
  return ParseRuleText(*text, path.string(), path.parent_path());
}

Result<RuleSet> LoadRuleFile(const std::filesystem::path& path) {
  return FirstError(ParseRuleFile(path));
}

Result<RuleSet> LoadRuleText(std::string_view text, const std::string& file,
                             const std::filesystem::path& base_dir) {
  return FirstError(ParseRuleText(text, file, base_dir));
}

}  // namespace cw
