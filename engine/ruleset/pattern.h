// Tensor-name patterns: literal text with typed `{placeholder}` segments and `${param}` segments.
//
//   model.layers.{layer}.self_attn.q_proj.weight
//   ${prefix}h.{layer}.ln_1.{suffix}
//
// A placeholder captures part of a name: an integer (`0|[1-9][0-9]*`, no leading zeros, so that
// a name round-trips to the same text) or an identifier (`[A-Za-z_][A-Za-z0-9_]*`, or one of an
// explicit list of values). A `${param}` segment is replaced by the parameter's text when the
// pattern is compiled, so it matches literally. Matching is always against the whole name.
//
// Parsing is pure; compiling goes through RE2 (kept inside pattern.cc) and never throws.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cw/error.h"
#include "engine/ruleset/expression.h"

namespace cw {

// Placeholder values by name: integers as Value::Int, identifiers as Value::String.
using Bindings = std::map<std::string, Value>;

// What a placeholder may match.
struct PlaceholderType {
  bool integer = true;
  std::vector<std::string> values;  // identifiers only: the allowed values (empty = any)
};

struct PatternSegment {
  enum class Kind { kLiteral, kPlaceholder, kParam };
  Kind kind = Kind::kLiteral;
  std::string text;  // literal text, or the placeholder / parameter name
  int column = 0;    // 0-based offset of the segment in the pattern text
  // An ident placeholder whose values this pattern spells differently (a placeholder's value map,
  // `values: {gate_proj: w1}`): (value, spelling here) for every value. Bindings always hold the
  // value; matching and Instantiate translate.
  std::vector<std::pair<std::string, std::string>> spelling;
};

class NamePattern {
 public:
  // Parses `text`. Errors (kRuleInvalid, at the offending column of `where`): an unclosed or
  // stray brace, an empty or malformed name, the same placeholder twice, an empty pattern.
  static Result<NamePattern> Parse(const std::string& text, const Location& where);

  const std::string& text() const { return text_; }
  const Location& where() const { return where_; }
  const std::vector<PatternSegment>& segments() const { return segments_; }
  // Placeholder and parameter names, in order of appearance.
  std::vector<std::string> placeholders() const;
  std::vector<std::string> params() const;
  bool has_placeholder(const std::string& name) const;
  // Location of a segment (for messages about one placeholder).
  Location SegmentLocation(const PatternSegment& segment) const;
  // Spells the values of `placeholder` as `spelling` says (value, text) in this pattern.
  void SetSpelling(const std::string& placeholder,
                   const std::vector<std::pair<std::string, std::string>>& spelling);

  // The concrete name for the given values. REQUIRES: every placeholder is in `values` and every
  // parameter in `params`.
  std::string Instantiate(const Bindings& values,
                          const std::map<std::string, std::string>& params) const;

 private:
  std::string text_;
  Location where_;
  std::vector<PatternSegment> segments_;
};

// A pattern compiled for matching, with its parameters fixed. Move-only.
class PatternMatcher {
 public:
  // `types` gives each placeholder's type; `params` the text of each `${param}`.
  // REQUIRES: every placeholder of `pattern` is in `types`, every parameter in `params`.
  static Result<PatternMatcher> Compile(const NamePattern& pattern,
                                        const std::map<std::string, PlaceholderType>& types,
                                        const std::map<std::string, std::string>& params);
  PatternMatcher(PatternMatcher&&) noexcept;
  PatternMatcher& operator=(PatternMatcher&&) noexcept;
  ~PatternMatcher();

  // True when the whole of `name` matches; fills `out` with the captured values (added to what
  // is there). An integer too large for int64 does not match. Patterns whose placeholders each
  // end at the end of the name or before a literal byte they cannot hold (`{layer}.`, `{w}.`)
  // match in one pass without RE2, with the same result.
  bool Match(std::string_view name, Bindings* out) const;
  // Match, always through RE2: for tests comparing the two ways.
  bool MatchWithRegex(std::string_view name, Bindings* out) const;
  // The RE2 syntax of the compiled pattern (anchoring not included).
  const std::string& regex() const;

 private:
  struct Impl;
  explicit PatternMatcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Many compiled patterns tested at once: which of them match a name. Move-only.
class PatternSet {
 public:
  PatternSet();
  PatternSet(PatternSet&&) noexcept;
  PatternSet& operator=(PatternSet&&) noexcept;
  ~PatternSet();

  // Adds `matcher`'s regex; returns its index (0, 1, ...). REQUIRES: not yet compiled.
  int Add(const PatternMatcher& matcher);
  // REQUIRES: every Add done. kInternal if RE2 refuses (patterns are built from escaped
  // literals and fixed character classes, so that is a bug).
  Status Compile();
  // Indices of the patterns matching the whole of `name`, ascending.
  std::vector<int> Match(std::string_view name) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cw
