// Parameter values for a rule set: from --set (and the seed flags), from config.json, or from
// the rule file's defaults, resolved lazily so that only what an active rule needs must exist.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cw/error.h"
#include "engine/ruleset/expression.h"
#include "engine/ruleset/pattern.h"
#include "engine/ruleset/rule_set.h"

namespace cw {

// config.json flattened to dotted keys: "num_hidden_layers", "text_config.num_hidden_layers",
// "architectures.0". Integers (within int64), booleans, strings and arrays of one of those
// ("architectures": a list) have a value; other entries (floats, null, numbers out of range,
// objects, mixed arrays) keep only their JSON text for messages.
struct ConfigEntry {
  std::optional<Value> value;
  std::string json;  // the entry as JSON text, for messages
};

struct ConfigValues {
  std::string file;  // where the values came from ("" when there is no config.json)
  std::map<std::string, ConfigEntry> entries;
};

// Parses config.json text. kCorrupt (with the byte offset) when the text is not JSON or its root
// is not an object; kLimitExceeded when nested deeper than limits::kMaxNestingDepth.
Result<ConfigValues> ParseConfigJson(std::string_view text, const std::string& file);
// Reads and parses a file (kIo when unreadable, kLimitExceeded over limits::kMaxJsonFileBytes).
Result<ConfigValues> LoadConfigJson(const std::filesystem::path& path);

// A parameter value the planner read off a tensor's shape (docs/rules.md, shapes).
struct SolvedParam {
  std::string name;
  Value value;
  std::string source;  // "solved from model.embed_tokens.weight dim 0"
};

// What the caller knows about parameters before planning.
struct ParamInputs {
  ConfigValues config;
  // name=value from --set and from the seed flags (by flag name), in command-line order; the
  // last value for a parameter wins. Values are text, typed by the parameter they bind to.
  std::vector<std::pair<std::string, std::string>> set;
  // name=value of `detect` parameters, chosen by the planner from the input names (forward) or
  // carried over from a forward plan; used when neither --set nor config.json gives a value.
  std::vector<std::pair<std::string, std::string>> detected;
  // Values read off the input's shapes, used when nothing above gives one (before defaults:
  // the weights are facts, a default is a guess).
  std::vector<SolvedParam> solved;
};

// Resolves parameters on demand and remembers the outcome (value or error).
// Lifetime: keeps references to `rules` and `inputs`; both must outlive the resolver.
class ParamResolver {
 public:
  ParamResolver(const RuleSet& rules, const ParamInputs& inputs);

  // kUsage when a --set name is neither a parameter nor a flag (listing the accepted ones), or
  // when a --set value does not parse as its parameter's type or is not an allowed value.
  Status CheckInputs() const;

  // The value of a declared parameter: --set, then config.json (each key at the top level, then
  // under text_config; null entries are skipped), then detected, then solved, then the default.
  // kPlanInvalid naming the keys tried when there is none, or when a config value has the wrong
  // type or is not allowed. REQUIRES: `name` is declared in the rule set.
  Result<Value> Get(const std::string& name);

  // True when --set (by name or flag) or a config.json key gives the parameter a value: then
  // the planner does not detect or solve it.
  bool Given(const ParamDecl& decl) const;
  // True when a detected value (ParamInputs::detected) names the parameter.
  bool Detected(const ParamDecl& decl) const { return FromDetected(decl).has_value(); }
  // True when nothing can give the parameter a value: no --set, no detected value, no config
  // key present and no default. REQUIRES: `name` is declared in the rule set.
  bool HasNoValue(const std::string& name) const;

  // For expression evaluation: placeholder values from `bound` (may be null) first, then
  // parameters. Lifetime: the returned function refers to this resolver and to `bound`.
  NameLookup Lookup(const Bindings* bound = nullptr);

  struct Resolved {
    Value value;
    std::string source;  // "--set", "config num_hidden_layers", "detected ...", "solved ...",
                         // "default"
  };
  const ParamInputs& inputs() const { return inputs_; }
  // The parameters resolved so far, by name.
  const std::map<std::string, Resolved>& resolved() const { return resolved_; }

 private:
  Result<Value> Resolve(const ParamDecl& decl);
  Result<std::optional<Value>> FromSet(const ParamDecl& decl) const;
  Result<std::optional<Value>> FromConfig(const ParamDecl& decl, std::string* source) const;
  std::optional<Value> FromDetected(const ParamDecl& decl) const;

  const RuleSet& rules_;
  const ParamInputs& inputs_;
  std::map<std::string, Resolved> resolved_;
  std::map<std::string, Error> failed_;
  std::set<std::string> missing_;  // failed because nothing gives them a value
  std::set<std::string> in_progress_;
};

// Parses a --set value as `type`: int (decimal), bool (true/false/1/0/yes/no, any case), string,
// or a list of `item_type` values separated by commas ("" is the empty list).
std::optional<Value> ParseValueText(const std::string& text, ValueType type,
                                    ValueType item_type = ValueType::kInt);

}  // namespace cw
