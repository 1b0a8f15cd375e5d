// The only file that uses yaml-cpp: YAML text -> TextNode, with positions made 1-based and
// duplicate keys rejected (yaml-cpp 0.7 silently keeps both).
#include <algorithm>
#include <new>
#include <set>
#include <stdexcept>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "engine/base/limits.h"
#include "engine/ruleset/text_node.h"

namespace cw {
namespace {

// The text being parsed, by 0-based line (without the newline); never empty.
std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (true) {
    const size_t end = text.find('\n');
    lines.push_back(text.substr(0, end));
    if (end == std::string_view::npos)
      return lines;
    text.remove_prefix(end + 1);
  }
}

// yaml-cpp's 0-based mark, made 1-based. yaml-cpp may mark a place past the end of a line or of
// the text (it reads on past a NUL byte, and takes a lone CR for a line break): such a mark is
// moved back to the end of the line, or of the text, so that a location is always in the file.
Location At(const std::string& file, const std::vector<std::string_view>& lines,
            const YAML::Mark& mark, const Location& fallback) {
  if (mark.line < 0 || mark.column < 0)
    return fallback;
  size_t line = static_cast<size_t>(mark.line);
  size_t column = static_cast<size_t>(mark.column);
  if (line >= lines.size()) {
    line = lines.size() - 1;
    column = lines[line].size();
  }
  column = std::min(column, lines[line].size());
  return TextLocation(file, static_cast<int>(line) + 1, static_cast<int>(column) + 1);
}

// True when `scalar` is written as-is at `mark`, plain or between quotes, on one line: only then
// is an offset into its text a column offset. A scalar folded over several lines, or with
// escapes, or in a block, is not.
bool Verbatim(const std::vector<std::string_view>& lines, const YAML::Mark& mark,
              const std::string& scalar, bool quoted) {
  if (mark.line < 0 || mark.column < 0 || static_cast<size_t>(mark.line) >= lines.size())
    return false;
  std::string_view rest = lines[static_cast<size_t>(mark.line)];
  if (static_cast<size_t>(mark.column) > rest.size())
    return false;
  rest.remove_prefix(static_cast<size_t>(mark.column));
  if (!quoted)
    return rest.starts_with(scalar);
  if (rest.empty() || (rest[0] != '"' && rest[0] != '\''))
    return false;
  const char quote = rest[0];
  rest.remove_prefix(1);
  return rest.starts_with(scalar) && rest.size() > scalar.size() && rest[scalar.size()] == quote;
}

// One document, node by node, with what every node needs: the file name and lines, for
// positions, and how many nodes may still be made.
class Converter {
 public:
  // Aliases repeat the node they name, so a few lines of aliases of aliases (a "billion laughs")
  // would expand to billions of nodes. A document without aliases has at most one node per byte
  // of its text (plus the root), and so may one with aliases.
  Converter(std::string_view text, const std::string& file,
            const std::vector<std::string_view>& lines)
      : file_(file), lines_(lines), nodes_left_(text.size() + 1) {}

  Result<TextNode> Convert(const YAML::Node& node, const Location& parent, uint64_t depth) {
    if (depth > limits::kMaxNestingDepth) {
      return Error(ErrorCode::kLimitExceeded,
                   "YAML nesting is deeper than " + std::to_string(limits::kMaxNestingDepth),
                   parent);
    }
    TextNode out;
    out.where = At(file_, lines_, node.Mark(), parent);
    if (nodes_left_ == 0) {
      return Error(ErrorCode::kLimitExceeded,
                   "YAML aliases expand to more nodes than the text has bytes", out.where);
    }
    --nodes_left_;
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        out.kind = TextNode::Kind::kNull;
        return out;
      case YAML::NodeType::Scalar:
        out.kind = TextNode::Kind::kScalar;
        out.scalar = node.Scalar();
        out.quoted = node.Tag() == "!";
        out.verbatim = Verbatim(lines_, node.Mark(), out.scalar, out.quoted);
        return out;
      case YAML::NodeType::Sequence:
        out.kind = TextNode::Kind::kSequence;
        for (const YAML::Node& item : node) {
          CW_ASSIGN_OR_RETURN(TextNode child, Convert(item, out.where, depth + 1));
          out.items.push_back(std::move(child));
        }
        return out;
      case YAML::NodeType::Map:
        break;
    }
    out.kind = TextNode::Kind::kMap;
    std::set<std::string> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      CW_ASSIGN_OR_RETURN(TextNode key, Convert(it->first, out.where, depth + 1));
      if (!key.is_scalar())
        return Error(ErrorCode::kRuleInvalid, "map keys must be plain text", key.where);
      if (!seen.insert(key.scalar).second)
        return Error(ErrorCode::kRuleInvalid, "duplicate key \"" + key.scalar + "\"", key.where);
      CW_ASSIGN_OR_RETURN(TextNode value, Convert(it->second, key.where, depth + 1));
      out.entries.push_back({std::move(key), std::move(value)});
    }
    return out;
  }

 private:
  const std::string& file_;
  const std::vector<std::string_view>& lines_;
  uint64_t nodes_left_;
};

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
  const std::vector<std::string_view> lines = SplitLines(text);
  try {
    const YAML::Node root = YAML::Load(std::string(text));
    return Converter(text, file, lines).Convert(root, start, 0);
  } catch (const YAML::Exception& e) {
    return Error(ErrorCode::kRuleInvalid, "YAML: " + e.msg, At(file, lines, e.mark, start));
  } catch (const std::bad_alloc&) {
    return Error(ErrorCode::kLimitExceeded, "out of memory reading YAML", start);
  } catch (const std::length_error&) {
    return Error(ErrorCode::kLimitExceeded, "YAML too large", start);
  }
}

}  // namespace cw
