#include "cw/convert_weight.h"

namespace cw {

int ExitCodeFor(const Error& error) {
  switch (error.code()) {
    case ErrorCode::kCorrupt:
    case ErrorCode::kUnsupported:
    case ErrorCode::kLimitExceeded:
    case ErrorCode::kRuleInvalid:
    case ErrorCode::kPlanInvalid:
      return 1;
    case ErrorCode::kUsage:
      return 2;
    case ErrorCode::kIo:
      return 3;
    case ErrorCode::kCancelled:
      return 130;
    case ErrorCode::kInternal:
      return 70;
  }
  return 70;
}

}  // namespace cw
