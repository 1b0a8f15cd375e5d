// Errors as values: every function that can fail on input returns Status or Result<T>.
//
// An Error carries a code, one plain sentence, a Location (file plus byte offset for binary input,
// file:line:column for text input) and a "while ..." chain added on the way up. Engine code never
// throws; third-party exceptions are converted where each library is wrapped.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace cw {

enum class ErrorCode {
  kIo,             // the operating system refused a read, write, rename, ...
  kCorrupt,        // input bytes do not follow their format
  kUnsupported,    // valid input we deliberately do not handle (legacy, encrypted, ...)
  kLimitExceeded,  // a size or count from the input is over one of our caps
  kRuleInvalid,    // a rule file is wrong
  kPlanInvalid,    // rules and checkpoint do not fit together
  kUsage,          // bad command line or API use
  kCancelled,      // interrupted by a signal
  kInternal,       // a bug in ConvertWeight
};

const char* ErrorCodeName(ErrorCode code);

struct Location {
  std::string file;
  std::optional<uint64_t> offset;  // binary input: byte offset in `file`
  int line = 0;                    // text input: 1-based, 0 = unknown
  int column = 0;

  bool empty() const { return file.empty() && !offset && line == 0; }
};

inline Location FileLocation(std::string file) {
  Location l;
  l.file = std::move(file);
  return l;
}
inline Location ByteLocation(std::string file, uint64_t offset) {
  Location l = FileLocation(std::move(file));
  l.offset = offset;
  return l;
}
inline Location TextLocation(std::string file, int line, int column) {
  Location l = FileLocation(std::move(file));
  l.line = line;
  l.column = column;
  return l;
}

class Error {
 public:
  Error(ErrorCode code, std::string message, Location where = {})
      : code_(code), message_(std::move(message)), where_(std::move(where)) {}

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const Location& where() const { return where_; }
  const std::vector<std::string>& context() const { return context_; }

  // Adds a "while ..." line, innermost first.
  Error With(std::string context) && {
    context_.push_back(std::move(context));
    return std::move(*this);
  }
  // Fills in the file when the code that failed did not know it.
  Error InFile(const std::string& file) && {
    if (where_.file.empty())
      where_.file = file;
    return std::move(*this);
  }

  // "file: byte N (0xN): error: message\n  while ..." or "file:line:col: error: message".
  std::string ToString() const;

 private:
  ErrorCode code_;
  std::string message_;
  Location where_;
  std::vector<std::string> context_;
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return !error_.has_value(); }
  // REQUIRES: !ok()
  const Error& error() const& { return *error_; }
  Error error() && { return std::move(*error_); }

 private:
  std::optional<Error> error_;
};

inline Status OkStatus() { return Status(); }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  // REQUIRES: ok()
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  // REQUIRES: !ok()
  const Error& error() const& { return std::get<1>(v_); }
  Error error() && { return std::get<1>(std::move(v_)); }
  Status status() const { return ok() ? Status() : Status(error()); }

 private:
  std::variant<T, Error> v_;
};

}  // namespace cw

// NOLINTBEGIN(bugprone-macro-parentheses)
#define CW_CONCAT_INNER_(a, b) a##b
#define CW_CONCAT_(a, b) CW_CONCAT_INNER_(a, b)

#define CW_RETURN_IF_ERROR(expr)            \
  do {                                      \
    auto cw_status_ = (expr);               \
    if (!cw_status_.ok()) {                 \
      return std::move(cw_status_).error(); \
    }                                       \
  } while (false)

// `lhs` may be a declaration: CW_ASSIGN_OR_RETURN(const auto x, Parse(...));
#define CW_ASSIGN_OR_RETURN(lhs, expr) \
  CW_ASSIGN_OR_RETURN_IMPL_(CW_CONCAT_(cw_result_, __LINE__), lhs, expr)
#define CW_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) {                                \
    return std::move(tmp).error();                \
  }                                               \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)
