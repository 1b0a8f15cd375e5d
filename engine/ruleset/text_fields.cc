#include "engine/ruleset/text_fields.h"

#include <algorithm>
#include <cstring>

#include "engine/ruleset/suggest.h"

namespace cw {

Fields::Fields(const TextNode& node, const std::string& what,
               std::initializer_list<const char*> allowed, Diagnostics& diag)
    : node_(node) {
  if (!node.is_map()) {
    diag.Report(what + " must be a map, not " + node.KindName(), node.where);
    return;
  }
  ok_ = true;
  std::vector<std::string> names(allowed.begin(), allowed.end());
  for (const auto& [key, value] : node.entries) {
    if (std::find(names.begin(), names.end(), key.scalar) == names.end()) {
      diag.Report("unknown key \"" + key.scalar + "\" in " + what + DidYouMean(key.scalar, names),
                  key.where);
    }
  }
}

const TextNode* Fields::Get(const char* key) const {
  if (!ok_)
    return nullptr;
  for (const auto& [k, value] : node_.entries) {
    if (k.scalar == key)
      return &value;
  }
  return nullptr;
}

Location TextStart(const TextNode& node) {
  Location at = node.where;
  if (!node.verbatim)
    at.column = 0;
  else if (node.quoted && at.column > 0)
    ++at.column;
  return at;
}

std::optional<std::string> ReadText(const TextNode& node, const std::string& what,
                                    Diagnostics& diag) {
  if (!node.is_scalar()) {
    diag.Report(what + " must be text, not " + node.KindName(), node.where);
    return std::nullopt;
  }
  return node.scalar;
}

std::optional<int64_t> ReadInt(const TextNode& node, const std::string& what, Diagnostics& diag) {
  auto text = ReadText(node, what, diag);
  if (!text)
    return std::nullopt;
  const std::string& s = *text;
  const size_t start = !s.empty() && s[0] == '-' ? 1 : 0;
  int64_t v = 0;
  bool ok = !node.quoted && s.size() > start && s.size() < 19;
  for (size_t i = start; ok && i < s.size(); ++i) {
    ok = s[i] >= '0' && s[i] <= '9';
    v = v * 10 + (s[i] - '0');
  }
  if (!ok) {
    diag.Report(what + " must be an integer, not \"" + s + "\"", node.where);
    return std::nullopt;
  }
  return start ? -v : v;
}

std::optional<bool> ReadBool(const TextNode& node, const std::string& what, Diagnostics& diag) {
  auto text = ReadText(node, what, diag);
  if (!text)
    return std::nullopt;
  if (!node.quoted && (*text == "true" || *text == "false"))
    return *text == "true";
  diag.Report(what + " must be true or false, not \"" + *text + "\"", node.where);
  return std::nullopt;
}

std::optional<Expr> ReadExpr(const TextNode& node, const std::string& what, Diagnostics& diag) {
  auto text = ReadText(node, what, diag);
  if (!text)
    return std::nullopt;
  auto e = Expr::Parse(*text, TextStart(node));
  if (!e.ok()) {
    diag.Add(std::move(e).error());
    return std::nullopt;
  }
  return std::move(e).value();
}

std::optional<std::vector<Expr>> ReadExprList(const TextNode& node, const std::string& what,
                                              Diagnostics& diag) {
  if (!node.is_sequence()) {
    diag.Report(what + " must be a list, not " + node.KindName(), node.where);
    return std::nullopt;
  }
  std::vector<Expr> out;
  bool ok = true;
  for (const TextNode& item : node.items) {
    auto e = ReadExpr(item, what, diag);
    ok = ok && e.has_value();
    if (e)
      out.push_back(std::move(*e));
  }
  return ok ? std::optional(std::move(out)) : std::nullopt;
}

std::optional<std::vector<int>> ReadIntList(const TextNode& node, const std::string& what,
                                            Diagnostics& diag) {
  if (!node.is_sequence()) {
    diag.Report(what + " must be a list of integers, not " + node.KindName(), node.where);
    return std::nullopt;
  }
  std::vector<int> out;
  for (const TextNode& item : node.items) {
    auto v = ReadInt(item, what, diag);
    if (!v)
      return std::nullopt;
    if (*v < -64 || *v > 64) {
      diag.Report(what + " value " + std::to_string(*v) + " is out of range", item.where);
      return std::nullopt;
    }
    out.push_back(static_cast<int>(*v));
  }
  return out;
}

std::optional<std::vector<std::string>> ReadTextList(const TextNode& node, const std::string& what,
                                                     Diagnostics& diag) {
  if (node.is_scalar())
    return std::vector<std::string>{node.scalar};
  if (!node.is_sequence()) {
    diag.Report(what + " must be text or a list, not " + node.KindName(), node.where);
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (const TextNode& item : node.items) {
    auto t = ReadText(item, what, diag);
    if (!t)
      return std::nullopt;
    out.push_back(*t);
  }
  return out;
}

std::optional<std::vector<NamePattern>> ReadPatterns(const TextNode& node, const std::string& what,
                                                     Diagnostics& diag) {
  std::vector<const TextNode*> items;
  if (node.is_sequence()) {
    for (const TextNode& item : node.items)
      items.push_back(&item);
  } else {
    items.push_back(&node);
  }
  if (items.empty()) {
    diag.Report(what + " must name at least one pattern", node.where);
    return std::nullopt;
  }
  std::vector<NamePattern> out;
  bool ok = true;
  for (const TextNode* item : items) {
    auto text = ReadText(*item, what, diag);
    if (!text) {
      ok = false;
      continue;
    }
    auto p = NamePattern::Parse(*text, TextStart(*item));
    if (!p.ok()) {
      diag.Add(std::move(p).error());
      ok = false;
      continue;
    }
    out.push_back(std::move(p).value());
  }
  return ok ? std::optional(std::move(out)) : std::nullopt;
}

}  // namespace cw
