#include "engine/formats/checkpoint.h"

namespace cw {

std::string_view FormatName(FileFormat format) {
  switch (format) {
    case FileFormat::kSafetensors:
      return "safetensors";
    case FileFormat::kTorch:
      return "torch";
    case FileFormat::kMindSpore:
      return "mindspore";
  }
  return "unknown";
}

}  // namespace cw
