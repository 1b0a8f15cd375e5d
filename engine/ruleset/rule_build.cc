// TextNode -> RuleSet: the schema of a rule file (docs/rules.md), checked key by key.
#include "engine/ruleset/rule_build.h"

#include <set>

#include "engine/ruleset/suggest.h"
#include "engine/ruleset/text_fields.h"

namespace cw {
namespace {

std::optional<ValueType> ParseValueType(const TextNode& node, Diagnostics& diag) {
  auto text = ReadText(node, "type", diag);
  if (!text)
    return std::nullopt;
  if (*text == "int")
    return ValueType::kInt;
  if (*text == "bool")
    return ValueType::kBool;
  if (*text == "string")
    return ValueType::kString;
  if (*text == "list")
    return ValueType::kList;
  diag.Report("unknown parameter type \"" + *text + "\" (int, bool, string or list)" +
                  DidYouMean(*text, {"int", "bool", "string", "list"}),
              node.where);
  return std::nullopt;
}

// A literal of `type` written as a YAML scalar: `12`, `true`, `text`.
std::optional<Value> ReadLiteral(const TextNode& node, ValueType type, const std::string& what,
                                 Diagnostics& diag) {
  if (type == ValueType::kList) {
    diag.Report(what + ": list parameters take no values: list", node.where);
    return std::nullopt;
  }
  if (type == ValueType::kString) {
    auto t = ReadText(node, what, diag);
    return t ? std::optional(Value::String(*t)) : std::nullopt;
  }
  if (type == ValueType::kBool) {
    auto b = ReadBool(node, what, diag);
    return b ? std::optional(Value::Bool(*b)) : std::nullopt;
  }
  auto i = ReadInt(node, what, diag);
  return i ? std::optional(Value::Int(*i)) : std::nullopt;
}

// `default:` — an expression for int and bool parameters; for string parameters literal text,
// or `{expr: "..."}` for an expression.
std::optional<Expr> ReadDefault(const TextNode& node, const ParamDecl& p, Diagnostics& diag) {
  const ValueType type = p.type;
  if (type == ValueType::kList && node.is_sequence()) {
    std::vector<Value> items;
    for (const TextNode& item : node.items) {
      auto v = ReadLiteral(item, p.item_type, "an item of the default of " + p.name, diag);
      if (!v)
        return std::nullopt;
      items.push_back(std::move(*v));
    }
    return Expr::Constant(Value::List(std::move(items)), node.where);
  }
  if (type != ValueType::kString || node.is_map()) {
    if (node.is_map()) {
      Fields f(node, "default", {"expr"}, diag);
      const TextNode* e = f.Get("expr");
      if (!e) {
        diag.Report("a map default needs \"expr\"", node.where);
        return std::nullopt;
      }
      return ReadExpr(*e, "default", diag);
    }
    return ReadExpr(node, "default", diag);
  }
  auto text = ReadText(node, "default", diag);
  if (!text)
    return std::nullopt;
  return Expr::Constant(Value::String(*text), TextStart(node));
}

// count_of: {hf: pattern, ms: pattern}, either side or both: one pattern each, whose one int
// placeholder is checked with the rules (rule_check.cc).
void ReadCountOf(const TextNode& node, ParamDecl& p, Diagnostics& diag) {
  Fields f(node, "count_of", {"hf", "ms"}, diag);
  if (!f.ok())
    return;
  if (p.type != ValueType::kInt)
    diag.Report("count_of gives int parameters only", node.where);
  if (!f.Get("hf") && !f.Get("ms"))
    diag.Report("count_of needs an hf or an ms pattern (or both)", node.where);
  for (Side side : {Side::kHf, Side::kMs}) {
    const TextNode* n = f.Get(SideName(side));
    if (!n)
      continue;
    auto patterns = ReadPatterns(*n, "count_of", diag);
    if (patterns && patterns->size() != 1)
      diag.Report("count_of takes one pattern per side", n->where);
    else if (patterns)
      (side == Side::kHf ? p.count_of_hf : p.count_of_ms) = std::move(patterns->front());
  }
}

void BuildParam(const TextNode& key, const TextNode& node, RuleSet& out, Diagnostics& diag) {
  ParamDecl p;
  p.name = key.scalar;
  p.where = key.where;
  Fields f(
      node, "parameter \"" + p.name + "\"",
      {"type", "items", "config", "default", "flag", "values", "detect", "count_of", "description"},
      diag);
  if (!f.ok())
    return;
  if (const TextNode* t = f.Get("type")) {
    auto type = ParseValueType(*t, diag);
    if (type)
      p.type = *type;
  }
  if (const TextNode* i = f.Get("items")) {
    auto type = ParseValueType(*i, diag);
    if (p.type != ValueType::kList)
      diag.Report("items applies to list parameters only", i->where);
    else if (type == ValueType::kList)
      diag.Report("a list parameter holds ints, bools or strings, not lists", i->where);
    else if (type)
      p.item_type = *type;
  }
  if (const TextNode* c = f.Get("config")) {
    if (auto keys = ReadTextList(*c, "config", diag))
      p.config_keys = *keys;
  }
  if (const TextNode* d = f.Get("default")) {
    p.default_value = ReadDefault(*d, p, diag);
  }
  if (const TextNode* fl = f.Get("flag")) {
    if (auto text = ReadText(*fl, "flag", diag))
      p.flag = *text;
  }
  if (const TextNode* v = f.Get("values")) {
    if (!v->is_sequence() || v->items.empty()) {
      diag.Report("values must be a non-empty list", v->where);
    } else {
      for (const TextNode& item : v->items) {
        if (auto value = ReadLiteral(item, p.type, "a value of " + p.name, diag))
          p.allowed.push_back(*value);
      }
    }
  }
  if (const TextNode* d = f.Get("detect")) {
    p.detect = ReadBool(*d, "detect", diag).value_or(false);
    if (p.detect && p.allowed.empty())
      diag.Report("detect needs values: the candidates tried in order", d->where);
  }
  if (const TextNode* c = f.Get("count_of"))
    ReadCountOf(*c, p, diag);
  if (const TextNode* d = f.Get("description")) {
    if (auto text = ReadText(*d, "description", diag))
      p.description = *text;
  }
  out.params.push_back(std::move(p));
}

void BuildCondition(const TextNode& key, const TextNode& node, RuleSet& out, Diagnostics& diag) {
  auto e = ReadExpr(node, "condition " + key.scalar, diag);
  if (e)
    out.conditions.push_back(ConditionDecl{key.scalar, std::move(*e), key.where});
}

void BuildPlaceholder(const TextNode& key, const TextNode& node, RuleSet& out, Diagnostics& diag) {
  PlaceholderDecl p;
  p.name = key.scalar;
  p.where = key.where;
  const TextNode* type_node = &node;
  const TextNode* values = nullptr;
  if (!node.is_scalar()) {
    Fields f(node, "placeholder \"" + p.name + "\"", {"type", "count", "values", "description"},
             diag);
    if (!f.ok())
      return;
    type_node = f.Get("type");
    values = f.Get("values");
    if (const TextNode* c = f.Get("count"))
      p.count = ReadExpr(*c, "count", diag);
    if (const TextNode* d = f.Get("description")) {
      if (auto text = ReadText(*d, "description", diag))
        p.description = *text;
    }
  }
  const std::string type = type_node ? ReadText(*type_node, "type", diag).value_or("") : "int";
  if (type == "ident") {
    p.type.integer = false;
  } else if (type != "int") {
    if (type_node && type_node->is_scalar()) {
      diag.Report("unknown placeholder type \"" + type + "\" (int or ident)" +
                      DidYouMean(type, {"int", "ident"}),
                  type_node->where);
    }
    return;
  }
  if (p.count && !p.type.integer)
    diag.Report("count applies to int placeholders only", p.count->where());
  if (values && p.type.integer) {
    diag.Report("values applies to ident placeholders only", values->where);
  } else if (values && values->is_map()) {
    std::set<std::string> hf, ms;
    for (const auto& [hf_value, ms_value] : values->entries) {
      auto spelled = ReadText(ms_value, "the ms spelling of " + hf_value.scalar, diag);
      if (!spelled)
        continue;
      if (!hf.insert(hf_value.scalar).second || !ms.insert(*spelled).second)
        diag.Report("each value of {" + p.name + "} needs its own spelling", ms_value.where);
      p.type.values.push_back(hf_value.scalar);
      p.ms_spelling.emplace_back(hf_value.scalar, *spelled);
    }
  } else if (values) {
    if (auto list = ReadTextList(*values, "values", diag))
      p.type.values = *list;
  }
  out.placeholders.push_back(std::move(p));
}

std::optional<DTypeOverride> ReadDTypeChoice(const TextNode& node, Diagnostics& diag) {
  auto text = ReadText(node, "dtype", diag);
  if (!text)
    return std::nullopt;
  if (*text == "keep")
    return DTypeOverride{};
  if (auto d = DTypeFromUserName(*text)) {
    if (!IsFloat(*d)) {
      diag.Report("dtype overrides take floating types only, not \"" + *text + "\"", node.where);
      return std::nullopt;
    }
    return DTypeOverride{false, *d};
  }
  diag.Report("unknown dtype \"" + *text + "\" (keep, F32, F16, BF16, F64)", node.where);
  return std::nullopt;
}

void ReadRuleDType(const TextNode& node, Rule& rule, Diagnostics& diag) {
  if (node.is_map()) {
    Fields f(node, "dtype", {"hf", "ms"}, diag);
    if (const TextNode* h = f.Get("hf"))
      rule.dtype_hf = ReadDTypeChoice(*h, diag);
    if (const TextNode* m = f.Get("ms"))
      rule.dtype_ms = ReadDTypeChoice(*m, diag);
    return;
  }
  rule.dtype_hf = rule.dtype_ms = ReadDTypeChoice(node, diag);
}

std::optional<TiedSpec> ReadTied(const TextNode& node, Diagnostics& diag) {
  Fields f(node, "tied", {"to", "when"}, diag);
  if (!f.ok())
    return std::nullopt;
  TiedSpec t;
  t.where = node.where;
  const TextNode* to = f.Get("to");
  if (!to) {
    diag.Report("tied needs \"to\": the hf name of the tensor it equals", node.where);
    return std::nullopt;
  }
  auto pattern = ReadPatterns(*to, "tied.to", diag);
  if (!pattern)
    return std::nullopt;
  if (pattern->size() != 1) {
    diag.Report("tied.to names one tensor", to->where);
    return std::nullopt;
  }
  t.to = std::move(pattern->front());
  if (const TextNode* w = f.Get("when"))
    t.when = ReadExpr(*w, "tied.when", diag);
  return t;
}

// One side's `shape:` value: one shape (for every pattern of the side) or a list of shapes (one
// per pattern, in order).
std::optional<std::vector<ShapeDecl>> ReadSideShapes(const TextNode& node, size_t patterns,
                                                     Diagnostics& diag) {
  if (!node.is_sequence()) {
    diag.Report("a shape is a list of sizes, or a list of such lists", node.where);
    return std::nullopt;
  }
  const bool several = !node.items.empty() && node.items.front().is_sequence();
  std::vector<ShapeDecl> out;
  if (!several) {
    auto shape = ReadExprList(node, "shape", diag);
    if (!shape)
      return std::nullopt;
    out.assign(std::max<size_t>(patterns, 1), *shape);
    return out;
  }
  for (const TextNode& item : node.items) {
    auto shape = ReadExprList(item, "shape", diag);
    if (!shape)
      return std::nullopt;
    out.push_back(std::move(*shape));
  }
  if (out.size() != patterns) {
    diag.Report("gives " + std::to_string(out.size()) + " shapes for " + std::to_string(patterns) +
                    " patterns",
                node.where);
    return std::nullopt;
  }
  return out;
}

// `shape: [...]` declares the hf side (and, for a rule without ops, the ms side too);
// `shape: {hf: ..., ms: ...}` declares each side.
void ReadRuleShapes(const TextNode& node, Rule& rule, Diagnostics& diag) {
  if (node.is_map()) {
    Fields f(node, "shape", {"hf", "ms"}, diag);
    if (const TextNode* h = f.Get("hf"))
      rule.shape_hf = ReadSideShapes(*h, rule.hf.size(), diag).value_or(std::vector<ShapeDecl>{});
    if (const TextNode* m = f.Get("ms"))
      rule.shape_ms = ReadSideShapes(*m, rule.ms.size(), diag).value_or(std::vector<ShapeDecl>{});
    return;
  }
  const Side side = rule.hf.empty() ? Side::kMs : Side::kHf;
  auto shapes = ReadSideShapes(node, rule.side(side).size(), diag);
  if (!shapes)
    return;
  (side == Side::kHf ? rule.shape_hf : rule.shape_ms) = *shapes;
  if (side == Side::kHf && rule.ops.empty() && rule.ms.size() == rule.hf.size())
    rule.shape_ms = *shapes;
}

// A rule with a problem is reported and left out, so that later checks do not report the
// same problem again in other words.
void BuildRule(const TextNode& node, RuleSet& out, Diagnostics& diag) {
  const size_t before = diag.errors.size();
  Rule rule;
  rule.where = node.where;
  Fields f(node, "rule",
           {"hf", "ms", "ops", "when", "optional", "drop", "tied", "copy_of", "dtype", "shape",
            "description"},
           diag);
  if (!f.ok())
    return;
  if (const TextNode* h = f.Get("hf"))
    rule.hf = ReadPatterns(*h, "hf", diag).value_or(std::vector<NamePattern>{});
  if (const TextNode* m = f.Get("ms"))
    rule.ms = ReadPatterns(*m, "ms", diag).value_or(std::vector<NamePattern>{});
  if (!f.Get("hf") && !f.Get("ms"))
    diag.Report("a rule needs hf: and ms: patterns (or one of them with drop: true)", node.where);
  if (const TextNode* ops = f.Get("ops")) {
    if (!ops->is_sequence()) {
      diag.Report("ops must be a list, not " + std::string(ops->KindName()), ops->where);
    } else {
      for (const TextNode& item : ops->items) {
        if (auto op = BuildOp(item, diag))
          rule.ops.push_back(std::move(*op));
      }
    }
  }
  if (const TextNode* w = f.Get("when"))
    rule.when = ReadExpr(*w, "when", diag);
  if (const TextNode* o = f.Get("optional"))
    rule.optional = ReadExpr(*o, "optional", diag);
  if (const TextNode* d = f.Get("drop"))
    rule.drop = ReadBool(*d, "drop", diag).value_or(false);
  if (const TextNode* t = f.Get("tied"))
    rule.tied = ReadTied(*t, diag);
  if (const TextNode* c = f.Get("copy_of")) {
    auto to = ReadPatterns(*c, "copy_of", diag);
    if (to && to->size() != 1)
      diag.Report("copy_of names one tensor", c->where);
    else if (to)
      rule.copy_of = CopyOfSpec{std::move(to->front()), c->where};
  }
  if (const TextNode* d = f.Get("dtype"))
    ReadRuleDType(*d, rule, diag);
  if (const TextNode* s = f.Get("shape"))
    ReadRuleShapes(*s, rule, diag);
  if (const TextNode* d = f.Get("description"))
    rule.description = ReadText(*d, "description", diag).value_or("");
  if (diag.errors.size() == before)
    out.rules.push_back(std::move(rule));
}

// ms_layout: {folder: hf | mindformers}.
void ReadMsLayout(const TextNode& node, RuleFileParts& parts, Diagnostics& diag) {
  Fields lf(node, "ms_layout", {"folder"}, diag);
  const TextNode* folder = lf.Get("folder");
  if (!folder)
    return;
  const std::optional<std::string> text = ReadText(*folder, "folder", diag);
  if (!text)
    return;
  if (*text == "hf") {
    parts.rules.ms_folder = RuleSet::MsFolder::kHfIndex;
  } else if (*text == "mindformers") {
    parts.rules.ms_folder = RuleSet::MsFolder::kMindFormers;
  } else {
    diag.Report("unknown folder layout \"" + *text +
                    "\" (hf: model.safetensors.index.json, mindformers: param_name_map.json)",
                folder->where);
    return;
  }
  parts.has_ms_folder = true;
}

void BuildHeader(const Fields& f, RuleFileParts& parts, Diagnostics& diag) {
  RuleSet& rs = parts.rules;
  if (const TextNode* n = f.Get("name"))
    rs.name = ReadText(*n, "name", diag).value_or("");
  if (const TextNode* d = f.Get("description")) {
    rs.description = ReadText(*d, "description", diag).value_or("");
    parts.has_description = true;
  }
  if (const TextNode* m = f.Get("models")) {
    rs.models = ReadTextList(*m, "models", diag).value_or(std::vector<std::string>{});
    parts.has_models = true;
  }
  if (const TextNode* l = f.Get("hf_layout")) {
    Fields lf(*l, "hf_layout", {"container", "fp8_scales"}, diag);
    if (const TextNode* c = lf.Get("container")) {
      rs.hf_container = ReadText(*c, "container", diag).value_or("");
      parts.has_container = true;
    }
    if (const TextNode* s = lf.Get("fp8_scales")) {
      Fields sf(*s, "fp8_scales", {"suffix", "block"}, diag);
      const TextNode* suffix = sf.Get("suffix");
      const TextNode* block = sf.Get("block");
      if (sf.ok() && (!suffix || !block)) {
        diag.Report("fp8_scales needs suffix (e.g. _scale_inv) and block ([rows, columns])",
                    s->where);
      } else if (sf.ok()) {
        auto text = ReadText(*suffix, "suffix", diag);
        std::vector<int64_t> sizes;
        for (const TextNode& item : block->items) {
          if (auto v = ReadInt(item, "block", diag))
            sizes.push_back(*v);
        }
        if (sizes.size() != 2 || sizes[0] <= 0 || sizes[1] <= 0 || sizes[0] > (1 << 20) ||
            sizes[1] > (1 << 20))
          diag.Report("block gives rows and columns: two positive sizes", block->where);
        else if (text && !text->empty())
          rs.hf_fp8_scales = RuleSet::Fp8Scales{*text, static_cast<uint64_t>(sizes[0]),
                                                static_cast<uint64_t>(sizes[1])};
        else if (text)
          diag.Report("the suffix of the scales cannot be empty", suffix->where);
      }
      parts.has_fp8_scales = true;
    }
  }
  if (const TextNode* l = f.Get("ms_layout"))
    ReadMsLayout(*l, parts, diag);
  if (const TextNode* e = f.Get("extends")) {
    parts.extends = ReadText(*e, "extends", diag).value_or("");
    parts.extends_where = e->where;
  }
}

}  // namespace

RuleFileParts BuildRuleFile(const TextNode& root, Diagnostics& diag) {
  RuleFileParts parts;
  parts.rules.file = root.where.file;
  const size_t before = diag.errors.size();
  Fields f(root, "the rule file",
           {"name", "description", "models", "hf_layout", "ms_layout", "extends", "params",
            "placeholders", "conditions", "rules"},
           diag);
  if (!f.ok())
    return parts;
  BuildHeader(f, parts, diag);
  if (!f.Get("name"))
    diag.Report("the rule file needs a name", root.where);
  if (const TextNode* params = f.Get("params")) {
    if (params->is_map()) {
      for (const auto& [key, value] : params->entries)
        BuildParam(key, value, parts.rules, diag);
    } else if (params->kind != TextNode::Kind::kNull) {
      diag.Report("params must be a map, not " + std::string(params->KindName()), params->where);
    }
  }
  if (const TextNode* ph = f.Get("placeholders")) {
    if (ph->is_map()) {
      for (const auto& [key, value] : ph->entries)
        BuildPlaceholder(key, value, parts.rules, diag);
    } else if (ph->kind != TextNode::Kind::kNull) {
      diag.Report("placeholders must be a map, not " + std::string(ph->KindName()), ph->where);
    }
  }
  if (const TextNode* c = f.Get("conditions")) {
    if (c->is_map()) {
      for (const auto& [key, value] : c->entries)
        BuildCondition(key, value, parts.rules, diag);
    } else if (c->kind != TextNode::Kind::kNull) {
      diag.Report("conditions must be a map, not " + std::string(c->KindName()), c->where);
    }
  }
  const TextNode* rules = f.Get("rules");
  if (rules && rules->is_sequence()) {
    for (const TextNode& item : rules->items)
      BuildRule(item, parts.rules, diag);
  } else if (rules) {
    diag.Report("rules must be a list, not " + std::string(rules->KindName()), rules->where);
  } else if (parts.extends.empty() && diag.errors.size() == before) {
    diag.Report("the rule file has no rules", root.where);
  }
  return parts;
}

}  // namespace cw
