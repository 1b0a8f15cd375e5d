#include "cw/error.h"

#include <cstdio>

namespace cw {

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kIo:
      return "io";
    case ErrorCode::kCorrupt:
      return "corrupt";
    case ErrorCode::kUnsupported:
      return "unsupported";
    case ErrorCode::kLimitExceeded:
      return "limit-exceeded";
    case ErrorCode::kRuleInvalid:
      return "rule-invalid";
    case ErrorCode::kPlanInvalid:
      return "plan-invalid";
    case ErrorCode::kUsage:
      return "usage";
    case ErrorCode::kCancelled:
      return "cancelled";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "unknown";
}

std::string Error::ToString() const {
  std::string out;
  if (!where_.file.empty()) {
    out += where_.file;
    if (where_.line > 0) {
      out += ":" + std::to_string(where_.line);
      if (where_.column > 0)
        out += ":" + std::to_string(where_.column);
    }
    out += ": ";
  }
  if (where_.offset) {
    char hex[32];
    std::snprintf(hex, sizeof hex, "0x%llx", static_cast<unsigned long long>(*where_.offset));
    out += "byte " + std::to_string(*where_.offset) + " (" + hex + "): ";
  }
  out += "error: " + message_;
  for (const std::string& c : context_)
    out += "\n  while " + c;
  return out;
}

}  // namespace cw
