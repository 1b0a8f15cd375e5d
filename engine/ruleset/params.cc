#include "engine/ruleset/params.h"

#include <algorithm>
#include <cctype>

#include "engine/ruleset/suggest.h"

namespace cw {
namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string AllowedList(const ParamDecl& decl) {
  std::vector<std::string> names;
  for (const Value& v : decl.allowed)
    names.push_back(v.ToString());
  return JoinNames(names);
}

bool HasType(const Value& v, const ParamDecl& decl) {
  if (v.type() != decl.type)
    return false;
  if (v.type() != ValueType::kList)
    return true;
  const auto& items = v.as_list();
  return std::all_of(items.begin(), items.end(),
                     [&](const Value& i) { return i.type() == decl.item_type; });
}

bool IsAllowed(const ParamDecl& decl, const Value& v) {
  return decl.allowed.empty() ||
         std::find(decl.allowed.begin(), decl.allowed.end(), v) != decl.allowed.end();
}

}  // namespace

std::optional<Value> ParseValueText(const std::string& text, ValueType type, ValueType item_type) {
  if (type == ValueType::kList) {
    std::vector<Value> items;
    for (size_t start = 0; !text.empty() && start <= text.size();) {
      const size_t comma = std::min(text.find(',', start), text.size());
      auto item = ParseValueText(text.substr(start, comma - start), item_type, item_type);
      if (!item || item->type() == ValueType::kList)
        return std::nullopt;
      items.push_back(std::move(*item));
      start = comma + 1;
    }
    return Value::List(std::move(items));
  }
  if (type == ValueType::kString)
    return Value::String(text);
  if (type == ValueType::kBool) {
    const std::string t = Lower(text);
    if (t == "true" || t == "1" || t == "yes")
      return Value::Bool(true);
    if (t == "false" || t == "0" || t == "no")
      return Value::Bool(false);
    return std::nullopt;
  }
  const size_t start = !text.empty() && text[0] == '-' ? 1 : 0;
  if (text.size() == start || text.size() > 19)
    return std::nullopt;
  int64_t v = 0;
  for (size_t i = start; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9')
      return std::nullopt;
    v = v * 10 + (text[i] - '0');
  }
  return Value::Int(start ? -v : v);
}

ParamResolver::ParamResolver(const RuleSet& rules, const ParamInputs& inputs)
    : rules_(rules), inputs_(inputs) {}

Status ParamResolver::CheckInputs() const {
  for (const auto& [name, text] : inputs_.set) {
    const ParamDecl* decl = rules_.FindParam(name);
    if (!decl)
      decl = rules_.FindParamByFlag(name);
    if (!decl) {
      std::vector<std::string> accepted;
      for (const ParamDecl& p : rules_.params) {
        accepted.push_back(p.name);
        if (!p.flag.empty() && p.flag != p.name)
          accepted.push_back(p.flag);
      }
      return Error(ErrorCode::kUsage,
                   "unknown parameter \"" + name + "\"" + DidYouMean(name, accepted) + " for " +
                       rules_.file + "; accepted: " +
                       (accepted.empty() ? std::string("none") : JoinNames(accepted)));
    }
    const auto v = ParseValueText(text, decl->type, decl->item_type);
    if (!v) {
      return Error(ErrorCode::kUsage, "--set " + name + "=" + text + ": " + decl->name + " is a " +
                                          decl->TypeName() + " parameter");
    }
    if (!IsAllowed(*decl, *v)) {
      return Error(ErrorCode::kUsage, "--set " + name + "=" + text + ": " + decl->name + " takes " +
                                          AllowedList(*decl));
    }
  }
  return OkStatus();
}

Result<std::optional<Value>> ParamResolver::FromSet(const ParamDecl& decl) const {
  std::optional<Value> out;
  for (const auto& [name, text] : inputs_.set) {
    if (name != decl.name && (decl.flag.empty() || name != decl.flag))
      continue;
    out = ParseValueText(text, decl.type, decl.item_type);
    if (!out) {
      return Error(ErrorCode::kUsage, "--set " + name + "=" + text + ": " + decl.name + " is a " +
                                          decl.TypeName() + " parameter");
    }
  }
  return out;
}

Result<std::optional<Value>> ParamResolver::FromConfig(const ParamDecl& decl,
                                                       std::string* source) const {
  for (const std::string& key : decl.config_keys) {
    for (const std::string& path : {key, "text_config." + key}) {
      const auto it = inputs_.config.entries.find(path);
      if (it == inputs_.config.entries.end() || it->second.json == "null")
        continue;
      const std::optional<Value>& v = it->second.value;
      if (!v || !HasType(*v, decl)) {
        return Error(ErrorCode::kPlanInvalid,
                     "config key \"" + path + "\" is " + it->second.json + ", but parameter " +
                         decl.name + " is a " + decl.TypeName(),
                     FileLocation(inputs_.config.file));
      }
      *source = "config " + path;
      return v;
    }
  }
  return std::optional<Value>();
}

std::optional<Value> ParamResolver::FromDetected(const ParamDecl& decl) const {
  std::optional<Value> out;
  for (const auto& [name, text] : inputs_.detected) {
    if (name == decl.name)
      out = ParseValueText(text, decl.type, decl.item_type);
  }
  return out;
}

bool ParamResolver::Given(const ParamDecl& decl) const {
  for (const auto& [name, text] : inputs_.set) {
    if (name == decl.name || (!decl.flag.empty() && name == decl.flag))
      return true;
  }
  for (const std::string& key : decl.config_keys) {
    for (const std::string& path : {key, "text_config." + key}) {
      const auto it = inputs_.config.entries.find(path);
      if (it != inputs_.config.entries.end() && it->second.json != "null")
        return true;
    }
  }
  return false;
}

bool ParamResolver::HasNoValue(const std::string& name) const {
  const ParamDecl* decl = rules_.FindParam(name);
  const bool solved = std::any_of(inputs_.solved.begin(), inputs_.solved.end(),
                                  [&](const SolvedParam& s) { return s.name == name; });
  return decl && !Given(*decl) && !decl->default_value && !FromDetected(*decl) && !solved;
}

Result<Value> ParamResolver::Resolve(const ParamDecl& decl) {
  CW_ASSIGN_OR_RETURN(std::optional<Value> v, FromSet(decl));
  std::string source = "--set";
  if (!v) {
    CW_ASSIGN_OR_RETURN(v, FromConfig(decl, &source));
  }
  if (!v) {
    v = FromDetected(decl);
    source = "detected from the input names";
  }
  if (!v) {
    for (const SolvedParam& s : inputs_.solved) {
      if (s.name == decl.name) {
        v = s.value;
        source = s.source;
      }
    }
  }
  if (!v && decl.default_value) {
    source = "default";
    auto d = decl.default_value->Evaluate(Lookup(nullptr));
    if (!d.ok())
      return std::move(d).error().With("computing the default of parameter " + decl.name);
    v = std::move(d).value();
    if (!HasType(*v, decl)) {
      return Error(
          ErrorCode::kRuleInvalid,
          "the default of " + decl.name + " is " + v->ToString() + ", not a " + decl.TypeName(),
          decl.default_value->where());
    }
  }
  if (!v) {
    missing_.insert(decl.name);
    std::vector<std::string> tried;
    for (const std::string& k : decl.config_keys) {
      tried.push_back(k);
      tried.push_back("text_config." + k);
    }
    return Error(ErrorCode::kPlanInvalid,
                 "parameter " + decl.name + " has no value: give --set " + decl.name + "=..." +
                     (tried.empty() ? std::string()
                                    : " or a config.json with " + JoinNames(tried) +
                                          (inputs_.config.file.empty()
                                               ? " (no config.json was given)"
                                               : " (none is in " + inputs_.config.file + ")")),
                 decl.where);
  }
  if (!IsAllowed(decl, *v)) {
    return Error(ErrorCode::kPlanInvalid,
                 "parameter " + decl.name + " is " + v->ToString() + " (from " + source +
                     "), but it takes " + AllowedList(decl),
                 decl.where);
  }
  resolved_[decl.name] = Resolved{*v, source};
  return *v;
}

Result<Value> ParamResolver::Get(const std::string& name) {
  if (auto it = resolved_.find(name); it != resolved_.end())
    return it->second.value;
  if (auto it = failed_.find(name); it != failed_.end())
    return it->second;
  const ParamDecl* decl = rules_.FindParam(name);
  if (!decl)
    return Error(ErrorCode::kInternal, "no parameter named " + name);
  if (!in_progress_.insert(name).second) {
    return Error(ErrorCode::kRuleInvalid, "the default of " + name + " depends on itself",
                 decl->where);
  }
  Result<Value> r = Resolve(*decl);
  in_progress_.erase(name);
  if (!r.ok())
    failed_.emplace(name, r.error());
  return r;
}

NameLookup ParamResolver::Lookup(const Bindings* bound) {
  auto get = [this, bound](const std::string& name) -> Result<std::optional<Value>> {
    if (bound) {
      if (auto it = bound->find(name); it != bound->end())
        return std::optional<Value>(it->second);
    }
    if (!rules_.FindParam(name))
      return std::optional<Value>();
    CW_ASSIGN_OR_RETURN(Value v, Get(name));
    return std::optional<Value>(v);
  };
  auto has = [this, bound](const std::string& name) -> Result<bool> {
    if (bound && bound->count(name))
      return true;
    if (!rules_.FindParam(name))
      return Error(ErrorCode::kRuleInvalid, "has(" + name + "): " + name + " is not a parameter");
    auto v = Get(name);
    if (v.ok())
      return true;
    if (missing_.count(name))
      return false;
    return std::move(v).error();
  };
  return NameLookup(std::move(get), std::move(has));
}

}  // namespace cw
