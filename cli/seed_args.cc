#include "cli/seed_args.h"

#include <charconv>
#include <set>

namespace cw::cli {
namespace {

// Options that may stand without a value (then they mean true), as a bare flag is the natural
// way to say so; the reference requires a value.
const std::set<std::string> kOptionalValue = {"is_pretrain", "qkv_concat", "is_lora"};

using Options = std::vector<std::pair<std::string, std::string>>;

// `--KEY VALUE`, `--KEY=VALUE`, and the keys in `flags` alone, in order.
Result<Options> SplitOptions(const std::vector<std::string>& args,
                             const std::set<std::string>& flags) {
  Options out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      return Error(ErrorCode::kUsage, "unexpected argument \"" + arg + "\": options start with --");
    }
    std::string key = arg.substr(2);
    std::string value;
    if (const size_t eq = key.find('='); eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
    } else if (!flags.count(key)) {
      if (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) {
        value = args[++i];
      } else if (kOptionalValue.count(key) != 0) {
        value = "true";
      } else {
        return Error(ErrorCode::kUsage, "option --" + key + " needs a value");
      }
    }
    out.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

}  // namespace

bool LooksLikeSeedCommand(const std::vector<std::string>& args) {
  if (args.empty() || args[0].rfind("--", 0) != 0)
    return false;
  // Help is the top-level help, which shows this form too.
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h")
      return false;
  }
  for (const std::string& a : args) {
    if (a == "--model" || a.rfind("--model=", 0) == 0 || a == "--input_path" ||
        a.rfind("--input_path=", 0) == 0) {
      return true;
    }
  }
  return false;
}

Result<ConvertRequest> ParseSeedCommand(const std::vector<std::string>& args) {
  ConvertRequest r;
  r.progress = false;
  CW_ASSIGN_OR_RETURN(const Options options,
                      SplitOptions(args, {"reversed", "force", "quiet", "skip_replica_check",
                                          "allow_unused_layouts"}));
  for (const auto& [key, value] : options) {
    if (key == "model") {
      r.rules.model = value;
    } else if (key == "input_path") {
      r.input = value;
    } else if (key == "output_path") {
      r.output = value;
    } else if (key == "reversed") {
      r.reverse = true;
    } else if (key == "dtype") {
      r.dtype = value;
    } else if (key == "config") {
      r.rules.config = value;
    } else if (key == "threads") {
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), r.threads);
      if (ec != std::errc() || end != value.data() + value.size()) {
        return Error(ErrorCode::kUsage, "--threads needs a number, not \"" + value + "\"");
      }
    } else if (key == "strategy") {
      r.distributed.strategy = value;
    } else if (key == "rank") {
      r.ranks = value;
    } else if (key == "skip_replica_check") {
      r.distributed.skip_replica_check = true;
    } else if (key == "allow_unused_layouts") {
      r.distributed.allow_unused_layouts = true;
    } else if (key == "force") {
      r.force = true;
    } else if (key == "quiet") {
      r.quiet = true;
    } else {
      r.rules.set.emplace_back(key, value);
    }
  }
  if (r.rules.model.empty() || r.input.empty() || r.output.empty()) {
    return Error(ErrorCode::kUsage, "--model, --input_path and --output_path are required");
  }
  return r;
}

Status AddFlagSets(const std::vector<std::string>& args,
                   std::vector<std::pair<std::string, std::string>>& sets) {
  CW_ASSIGN_OR_RETURN(const Options options, SplitOptions(args, {}));
  sets.insert(sets.end(), options.begin(), options.end());
  return OkStatus();
}

}  // namespace cw::cli
