// The reference tool's command line (MindFormers convert_weight.py), so that its users can switch
// by changing only the program name:
//   convert_weight --model llama --input_path IN --output_path OUT [--reversed] [--dtype bf16]
//                  [--layers N] [--is_pretrain [true|false]] [--telechat_type telechat_7b]
//                  [--qkv_concat [true|false]] [--KEY VALUE]...
// Every option other than model, input_path, output_path, reversed and dtype sets the rule
// parameter bound to that flag name (typed by the parameter; an unknown one is an error listing
// the accepted ones). Also accepted: --threads N, --force, --quiet, --config FILE, and for a
// distributed MindSpore checkpoint --strategy FILE|DIR, --rank R, --skip_replica_check,
// --allow_unused_layouts (docs/distributed.md).
#pragma once

#include <string>
#include <vector>

#include "cw/convert_weight.h"

namespace cw::cli {

// True when the arguments use the reference tool's form (no subcommand, --model or --input_path)
// and do not ask for help.
bool LooksLikeSeedCommand(const std::vector<std::string>& args);

// Parses the arguments after the program name. kUsage errors name the offending argument.
Result<ConvertRequest> ParseSeedCommand(const std::vector<std::string>& args);

// The reference tool's parameter flags after a subcommand (`convert --rules R --use_gmm true`):
// each `--KEY VALUE` or `--KEY=VALUE` (a bare --is_pretrain, --qkv_concat or --is_lora: true)
// appended to `sets` as --set KEY=VALUE. kUsage names an argument that is not such an option.
Status AddFlagSets(const std::vector<std::string>& args,
                   std::vector<std::pair<std::string, std::string>>& sets);

}  // namespace cw::cli
