#include "engine/app/model_registry.h"

#include <algorithm>
#include <cstdlib>

#include "engine/ruleset/rule_file.h"

namespace cw {
namespace fs = std::filesystem;

fs::path RulesDir() {
  if (const char* dir = std::getenv("CW_RULES_DIR"); dir != nullptr && *dir != '\0')
    return dir;
  return CW_DEFAULT_RULES_DIR;
}

Result<BundledRules> LoadBundledRules() {
  const fs::path dir = RulesDir();
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && e.path().extension() == ".yaml")
      files.push_back(e.path());
  }
  if (ec) {
    return Error(ErrorCode::kIo, "cannot list the rule files: " + ec.message(),
                 FileLocation(dir.string()));
  }
  std::sort(files.begin(), files.end());
  BundledRules out;
  for (const fs::path& f : files) {
    Result<RuleSet> rules = LoadRuleFile(f);
    if (!rules.ok()) {
      out.broken.push_back(std::move(rules).error());
    } else if (!rules->models.empty()) {
      out.rules.push_back(std::move(rules).value());
    }
  }
  return out;
}

Result<std::string> RuleFileForModel(const std::string& key,
                                     const std::vector<std::pair<std::string, std::string>>& set) {
  CW_ASSIGN_OR_RETURN(const BundledRules bundled, LoadBundledRules());
  const std::vector<RuleSet>& all = bundled.rules;
  std::vector<const RuleSet*> serving;
  std::vector<std::string> known;
  for (const RuleSet& r : all) {
    for (const std::string& m : r.models)
      known.push_back(m);
    if (std::find(r.models.begin(), r.models.end(), key) != r.models.end())
      serving.push_back(&r);
  }
  if (serving.size() == 1)
    return serving.front()->file;
  for (const RuleSet* r : serving) {
    for (const auto& [name, value] : set) {
      if (value == r->name)
        return r->file;
    }
  }
  std::sort(known.begin(), known.end());
  known.erase(std::unique(known.begin(), known.end()), known.end());
  std::string list;
  for (const std::string& k : known)
    list += (list.empty() ? "" : ", ") + k;
  if (serving.empty()) {
    std::string broken;
    if (!bundled.broken.empty()) {
      broken = " (" + std::to_string(bundled.broken.size()) +
               " rule file(s) did not load; the first: " + bundled.broken.front().ToString() + ")";
    }
    return Error(ErrorCode::kUsage,
                 "unknown model \"" + key + "\"; known models: " + list + broken);
  }
  std::string names;
  for (const RuleSet* r : serving)
    names += (names.empty() ? "" : ", ") + r->name;
  return Error(ErrorCode::kUsage, "model \"" + key + "\" is served by several rule files (" +
                                      names + "): say which, e.g. with the variant's flag");
}

}  // namespace cw
