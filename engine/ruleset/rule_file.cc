// The only file that uses yaml-cpp: YAML text -> TextNode, with positions made 1-based and
// duplicate keys rejected (yaml-cpp 0.7 silently keeps both).
#include <new>
#include <set>
#include <stdexcept>

#include <yaml-cpp/yaml.h>

#include "engine/base/limits.h"
#include "engine/ruleset/text_node.h"

namespace cw {
namespace {

Location At(const std::string& file, const YAML::Mark& mark, const Location& fallback) {
  if (mark.line < 0 || mark.column < 0)
    return fallback;
  return TextLocation(file, mark.line + 1, mark.column + 1);
}

Result<TextNode> Convert(const YAML::Node& node, const std::string& file, const Location& parent,
                         uint64_t depth) {
  if (depth > limits::kMaxNestingDepth) {
    return Error(ErrorCode::kLimitExceeded,
                 "YAML nesting is deeper than " + std::to_string(limits::kMaxNestingDepth), parent);
  }
  TextNode out;
  out.where = At(file, node.Mark(), parent);
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      out.kind = TextNode::Kind::kNull;
      return out;
    case YAML::NodeType::Scalar:
      out.kind = TextNode::Kind::kScalar;
      out.scalar = node.Scalar();
      out.quoted = node.Tag() == "!";
      return out;
    case YAML::NodeType::Sequence:
      out.kind = TextNode::Kind::kSequence;
      for (const YAML::Node& item : node) {
        CW_ASSIGN_OR_RETURN(TextNode child, Convert(item, file, out.where, depth + 1));
        out.items.push_back(std::move(child));
      }
      return out;
    case YAML::NodeType::Map:
      break;
  }
  out.kind = TextNode::Kind::kMap;
  std::set<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    CW_ASSIGN_OR_RETURN(TextNode key, Convert(it->first, file, out.where, depth + 1));
    if (!key.is_scalar())
      return Error(ErrorCode::kRuleInvalid, "map keys must be plain text", key.where);
    if (!seen.insert(key.scalar).second)
      return Error(ErrorCode::kRuleInvalid, "duplicate key \"" + key.scalar + "\"", key.where);
    CW_ASSIGN_OR_RETURN(TextNode value, Convert(it->second, file, key.where, depth + 1));
    out.entries.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

}  // namespace

const char* TextNode::KindName() const {
  switch (kind) {
    case Kind::kNull:
      return "empty";
    case Kind::kScalar:
      return "a scalar";
    case Kind::kSequence:
      return "a list";
    case Kind::kMap:
      return "a map";
  }
  return "?";
}

Result<TextNode> ParseYaml(std::string_view text, const std::string& file) {
  const Location start = TextLocation(file, 1, 1);
  try {
    const YAML::Node root = YAML::Load(std::string(text));
    return Convert(root, file, start, 0);
  } catch (const YAML::Exception& e) {
    return Error(ErrorCode::kRuleInvalid, "YAML: " + e.msg, At(file, e.mark, start));
  } catch (const std::bad_alloc&) {
    return Error(ErrorCode::kLimitExceeded, "out of memory reading YAML", start);
  } catch (const std::length_error&) {
    return Error(ErrorCode::kLimitExceeded, "YAML too large", start);
  }
}

}  // namespace cw
