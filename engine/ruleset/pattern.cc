// The only file that uses RE2.
#include "engine/ruleset/pattern.h"

#include <algorithm>
#include <cctype>

#include <re2/re2.h>
#include <re2/set.h>

namespace cw {
namespace {

bool IsNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

RE2::Options QuietOptions() {
  RE2::Options options;
  options.set_log_errors(false);
  options.set_encoding(RE2::Options::EncodingLatin1);  // names are bytes; match them as bytes
  return options;
}

constexpr const char* kIntRegex = "0|[1-9][0-9]*";
constexpr const char* kIdentRegex = "[A-Za-z_][A-Za-z0-9_]*";

// The bytes kIntRegex and kIdentRegex can hold (ASCII only: names are matched as Latin-1).
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsIdentByte(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

// Digits to int64; false when there are none or the value does not fit.
bool ParseInt(std::string_view digits, int64_t* v) {
  *v = 0;
  for (char c : digits) {
    if (__builtin_mul_overflow(*v, 10, v) || __builtin_add_overflow(*v, c - '0', v))
      return false;
  }
  return !digits.empty();
}

}  // namespace

Result<NamePattern> NamePattern::Parse(const std::string& text, const Location& where) {
  NamePattern p;
  p.text_ = text;
  p.where_ = where;
  auto fail = [&](const std::string& message, size_t pos) {
    Location at = where;
    if (at.column > 0)
      at.column += static_cast<int>(pos);
    return Error(ErrorCode::kRuleInvalid, "bad pattern \"" + text + "\": " + message, at);
  };
  if (text.empty())
    return fail("a pattern cannot be empty", 0);
  size_t i = 0;
  while (i < text.size()) {
    const bool param = text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{';
    if (text[i] == '{' || param) {
      const size_t open = param ? i + 1 : i;
      const size_t close = text.find('}', open);
      if (close == std::string::npos)
        return fail("\"{\" is never closed", i);
      const std::string name = text.substr(open + 1, close - open - 1);
      if (name.empty() || !IsNameStart(name[0]) ||
          !std::all_of(name.begin(), name.end(), IsNameChar)) {
        return fail("\"" + name + "\" is not a placeholder name (letters, digits, _)", open + 1);
      }
      const auto kind = param ? PatternSegment::Kind::kParam : PatternSegment::Kind::kPlaceholder;
      if (!param && p.has_placeholder(name))
        return fail("placeholder {" + name + "} appears twice", i);
      if (!p.segments_.empty() && p.segments_.back().kind == PatternSegment::Kind::kPlaceholder &&
          kind == PatternSegment::Kind::kPlaceholder) {
        return fail("placeholders {" + p.segments_.back().text + "} and {" + name +
                        "} need literal text between them",
                    i);
      }
      p.segments_.push_back({kind, name, static_cast<int>(i), {}});
      i = close + 1;
    } else if (text[i] == '}') {
      return fail("\"}\" without \"{\"", i);
    } else {
      const size_t end = std::min(text.find_first_of("{}$", i + 1), text.size());
      if (!p.segments_.empty() && p.segments_.back().kind == PatternSegment::Kind::kLiteral)
        p.segments_.back().text += text.substr(i, end - i);
      else
        p.segments_.push_back(
            {PatternSegment::Kind::kLiteral, text.substr(i, end - i), static_cast<int>(i), {}});
      i = end;
    }
  }
  return p;
}

std::vector<std::string> NamePattern::placeholders() const {
  std::vector<std::string> out;
  for (const auto& s : segments_) {
    if (s.kind == PatternSegment::Kind::kPlaceholder)
      out.push_back(s.text);
  }
  return out;
}

std::vector<std::string> NamePattern::params() const {
  std::vector<std::string> out;
  for (const auto& s : segments_) {
    if (s.kind == PatternSegment::Kind::kParam &&
        std::find(out.begin(), out.end(), s.text) == out.end())
      out.push_back(s.text);
  }
  return out;
}

bool NamePattern::has_placeholder(const std::string& name) const {
  return std::any_of(segments_.begin(), segments_.end(), [&](const PatternSegment& s) {
    return s.kind == PatternSegment::Kind::kPlaceholder && s.text == name;
  });
}

Location NamePattern::SegmentLocation(const PatternSegment& segment) const {
  Location at = where_;
  if (at.column > 0)
    at.column += segment.column;
  return at;
}

void NamePattern::SetSpelling(const std::string& placeholder,
                              const std::vector<std::pair<std::string, std::string>>& spelling) {
  for (PatternSegment& s : segments_) {
    if (s.kind == PatternSegment::Kind::kPlaceholder && s.text == placeholder)
      s.spelling = spelling;
  }
}

namespace {

// How `segment` spells `value`: its spelling, or the value itself.
const std::string& Spelled(const PatternSegment& segment, const std::string& value) {
  for (const auto& [v, text] : segment.spelling) {
    if (v == value)
      return text;
  }
  return value;
}

// The value `segment` spells as `text` (the inverse of Spelled).
std::string Unspelled(const std::vector<std::pair<std::string, std::string>>& spelling,
                      std::string_view text) {
  for (const auto& [v, t] : spelling) {
    if (t == text)
      return v;
  }
  return std::string(text);
}

}  // namespace

std::string NamePattern::Instantiate(const Bindings& values,
                                     const std::map<std::string, std::string>& params) const {
  std::string out;
  out.reserve(text_.size());  // most names are no longer than their pattern: one allocation
  for (const auto& s : segments_) {
    switch (s.kind) {
      case PatternSegment::Kind::kLiteral:
        out += s.text;
        break;
      case PatternSegment::Kind::kPlaceholder:
        if (s.spelling.empty())
          out += values.at(s.text).ToText();
        else
          out += Spelled(s, values.at(s.text).as_string());
        break;
      case PatternSegment::Kind::kParam:
        out += params.at(s.text);
        break;
    }
  }
  return out;
}

// ---- PatternMatcher -------------------------------------------------------------------------

namespace {

// A pattern as a sequence of literal text and placeholders, `${param}` text already inserted.
struct MatchPiece {
  bool placeholder = false;
  std::string text;  // the literal text, or the placeholder's name
  bool integer = false;
  std::vector<std::string> values;  // an ident placeholder's allowed texts (empty = any)
  std::vector<std::pair<std::string, std::string>> spelling;  // PatternSegment::spelling
};

// The texts an ident placeholder segment matches: its values as this pattern spells them.
std::vector<std::string> AllowedTexts(const PatternSegment& s, const PlaceholderType& t) {
  std::vector<std::string> out;
  for (const std::string& v : t.values)
    out.push_back(Spelled(s, v));
  return out;
}

std::vector<MatchPiece> Pieces(const NamePattern& pattern,
                               const std::map<std::string, PlaceholderType>& types,
                               const std::map<std::string, std::string>& params) {
  std::vector<MatchPiece> pieces;
  for (const auto& s : pattern.segments()) {
    if (s.kind == PatternSegment::Kind::kPlaceholder) {
      const PlaceholderType& t = types.at(s.text);
      pieces.push_back(MatchPiece{true, s.text, t.integer, AllowedTexts(s, t), s.spelling});
      continue;
    }
    const std::string& text = s.kind == PatternSegment::Kind::kLiteral ? s.text : params.at(s.text);
    if (pieces.empty() || pieces.back().placeholder)
      pieces.push_back(MatchPiece{});
    pieces.back().text += text;
  }
  return pieces;
}

// True when every placeholder ends at the end of the pattern or before a literal whose first
// byte the placeholder cannot hold, and every allowed value is made of identifier bytes. Then a
// placeholder can only span the whole run of its bytes where it starts, the match (if any) is
// unique, and MatchPieces finds it in one pass, with the captures RE2 would give.
bool Unambiguous(const std::vector<MatchPiece>& pieces) {
  for (size_t i = 0; i < pieces.size(); ++i) {
    const MatchPiece& p = pieces[i];
    if (!p.placeholder)
      continue;
    for (const std::string& v : p.values) {
      if (v.empty() || !std::all_of(v.begin(), v.end(), IsIdentByte))
        return false;
    }
    if (i + 1 == pieces.size())
      continue;
    const std::string& next = pieces[i + 1].text;
    if (next.empty() || (p.integer ? IsDigit(next[0]) : IsIdentByte(next[0])))
      return false;
  }
  return true;
}

// Matches the whole of unambiguous `pieces` against `name`; adds the captured values to `out`.
bool MatchPieces(const std::vector<MatchPiece>& pieces, std::string_view name, Bindings* out) {
  std::vector<std::pair<const std::string*, Value>> captured;
  captured.reserve(pieces.size());
  size_t pos = 0;
  for (const MatchPiece& p : pieces) {
    if (!p.placeholder) {
      if (name.substr(pos, p.text.size()) != p.text)
        return false;
      pos += p.text.size();
      continue;
    }
    size_t end = pos;
    while (end < name.size() && (p.integer ? IsDigit(name[end]) : IsIdentByte(name[end])))
      ++end;
    const std::string_view run = name.substr(pos, end - pos);
    pos = end;
    if (p.integer) {
      int64_t v = 0;
      if ((run.size() > 1 && run[0] == '0') || !ParseInt(run, &v))
        return false;
      captured.emplace_back(&p.text, Value::Int(v));
      continue;
    }
    const bool allowed = p.values.empty()
                             ? !run.empty() && !IsDigit(run[0])
                             : std::find(p.values.begin(), p.values.end(), run) != p.values.end();
    if (!allowed)
      return false;
    captured.emplace_back(&p.text, Value::String(Unspelled(p.spelling, run)));
  }
  if (pos != name.size())
    return false;
  for (auto& [placeholder, value] : captured)
    (*out)[*placeholder] = std::move(value);
  return true;
}

}  // namespace

struct PatternMatcher::Impl {
  std::string regex;
  std::unique_ptr<RE2> re;
  struct Group {
    std::string placeholder;
    bool integer = false;
    std::vector<std::pair<std::string, std::string>> spelling;
  };
  std::vector<Group> groups;
  std::vector<MatchPiece> pieces;
  bool direct = false;  // Unambiguous(pieces): matched without RE2
};

PatternMatcher::PatternMatcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PatternMatcher::PatternMatcher(PatternMatcher&&) noexcept = default;
PatternMatcher& PatternMatcher::operator=(PatternMatcher&&) noexcept = default;
PatternMatcher::~PatternMatcher() = default;

Result<PatternMatcher> PatternMatcher::Compile(const NamePattern& pattern,
                                               const std::map<std::string, PlaceholderType>& types,
                                               const std::map<std::string, std::string>& params) {
  auto impl = std::make_unique<Impl>();
  for (const auto& s : pattern.segments()) {
    if (s.kind == PatternSegment::Kind::kLiteral) {
      impl->regex += RE2::QuoteMeta(s.text);
    } else if (s.kind == PatternSegment::Kind::kParam) {
      impl->regex += RE2::QuoteMeta(params.at(s.text));
    } else {
      const PlaceholderType& t = types.at(s.text);
      std::string alternatives;
      for (const std::string& v : AllowedTexts(s, t))
        alternatives += (alternatives.empty() ? "" : "|") + RE2::QuoteMeta(v);
      impl->regex += "(" +
                     (t.integer          ? std::string(kIntRegex)
                      : t.values.empty() ? std::string(kIdentRegex)
                                         : alternatives) +
                     ")";
      impl->groups.push_back(Impl::Group{s.text, t.integer, s.spelling});
    }
  }
  impl->pieces = Pieces(pattern, types, params);
  impl->direct = Unambiguous(impl->pieces);
  impl->re = std::make_unique<RE2>(impl->regex, QuietOptions());
  if (!impl->re->ok()) {
    return Error(ErrorCode::kInternal,
                 "pattern \"" + pattern.text() + "\" gave a bad regex: " + impl->re->error(),
                 pattern.where());
  }
  return PatternMatcher(std::move(impl));
}

bool PatternMatcher::Match(std::string_view name, Bindings* out) const {
  return impl_->direct ? MatchPieces(impl_->pieces, name, out) : MatchWithRegex(name, out);
}

bool PatternMatcher::MatchWithRegex(std::string_view name, Bindings* out) const {
  const size_t n = impl_->groups.size();
  std::vector<std::string> captured(n);
  std::vector<RE2::Arg> args(n);
  std::vector<const RE2::Arg*> arg_ptrs(n);
  for (size_t i = 0; i < n; ++i) {
    args[i] = RE2::Arg(&captured[i]);
    arg_ptrs[i] = &args[i];
  }
  if (!RE2::FullMatchN(re2::StringPiece(name.data(), name.size()), *impl_->re, arg_ptrs.data(),
                       static_cast<int>(n)))
    return false;
  for (size_t i = 0; i < n; ++i) {
    const auto& [placeholder, integer, spelling] = impl_->groups[i];
    if (!integer) {
      (*out)[placeholder] = Value::String(Unspelled(spelling, captured[i]));
      continue;
    }
    int64_t v = 0;
    if (!ParseInt(captured[i], &v))
      return false;
    (*out)[placeholder] = Value::Int(v);
  }
  return true;
}

const std::string& PatternMatcher::regex() const { return impl_->regex; }

// ---- PatternSet -----------------------------------------------------------------------------

struct PatternSet::Impl {
  RE2::Set set{QuietOptions(), RE2::ANCHOR_BOTH};
  bool compiled = false;
  int count = 0;
};

PatternSet::PatternSet() : impl_(std::make_unique<Impl>()) {}
PatternSet::PatternSet(PatternSet&&) noexcept = default;
PatternSet& PatternSet::operator=(PatternSet&&) noexcept = default;
PatternSet::~PatternSet() = default;

int PatternSet::Add(const PatternMatcher& matcher) {
  std::string error;
  const int index = impl_->set.Add(matcher.regex(), &error);
  ++impl_->count;
  return index;
}

Status PatternSet::Compile() {
  if (impl_->count > 0 && !impl_->set.Compile())
    return Error(ErrorCode::kInternal, "RE2 could not compile the set of rule patterns");
  impl_->compiled = true;
  return OkStatus();
}

std::vector<int> PatternSet::Match(std::string_view name) const {
  std::vector<int> hits;
  if (impl_->count == 0)
    return hits;
  impl_->set.Match(re2::StringPiece(name.data(), name.size()), &hits);
  std::sort(hits.begin(), hits.end());
  return hits;
}

}  // namespace cw
