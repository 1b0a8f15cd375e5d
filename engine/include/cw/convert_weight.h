// The public API of the ConvertWeight engine: one function per command of the convert_weight
// tool. The command-line program only parses arguments into these requests and prints errors.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "cw/error.h"

namespace cw {

// Lists the tensors of a checkpoint file or folder from its headers alone; for a MindSpore
// parallel-strategy file or folder (told from the bytes), the layout of every parameter.
struct InspectRequest {
  std::string path;
  bool json = false;  // machine-readable output
};
Status Inspect(const InspectRequest& request, std::ostream& out, std::ostream& err);

// Writes the same tensors (names, dtypes, shapes, bytes) to another file format, chosen by the
// output name: .safetensors, .bin/.pth/.pt, .ckpt, or a folder of safetensors shards.
struct RewriteRequest {
  std::string input;
  std::string output;
  bool force = false;     // replace an existing output
  bool ckpt_crc = false;  // .ckpt: append MindSpore's CRC trailer
  uint64_t ckpt_chunk_bytes = 512ull << 20;
  std::string max_shard_size = "5GB";  // folder outputs
  std::string torch_root_key;          // .bin/.pth: nest tensors under this key
};
Status Rewrite(const RewriteRequest& request, std::ostream& err);

// Which rules a command uses: a rule file, or a model key (as the reference tool's --model)
// resolved among the bundled rule files; plus parameter values.
struct RuleChoice {
  std::string rules_file;  // --rules
  std::string model;       // --model: a key or alias listed by `convert_weight models`
  // --set name=value and the seed flags (--layers 12 arrives as {"layers", "12"}), in order.
  std::vector<std::pair<std::string, std::string>> set;
  std::string config;  // --config: config.json to use instead of the one beside the input
};

// Converts a checkpoint with a rule file, forward (HF -> MindSpore) or reverse, streaming.
struct ConvertRequest {
  RuleChoice rules;
  std::string input;   // file, folder, or any file of a sharded folder
  std::string output;  // .ckpt, .safetensors, .bin/.pth/.pt, or a folder
  bool reverse = false;
  std::string dtype;                   // "", fp32, fp16, bf16: cast every floating tensor
  unsigned threads = 0;                // 0: all cores
  std::string max_shard_size = "5GB";  // folder outputs
  std::string max_memory = "2GiB";     // cap on the bytes steps hold at once
  bool force = false;                  // replace an existing output
  bool quiet = false;                  // no progress, no summary
  bool progress = false;               // draw progress on `err` (set when it is a terminal)
};
Status Convert(const ConvertRequest& request, std::ostream& err);

// Prints the plan of a conversion (steps, shapes, dtypes, bytes, peak memory) without reading
// any tensor data.
struct PlanRequest {
  RuleChoice rules;
  std::string input;
  bool reverse = false;
  std::string dtype;
  bool json = false;
};
Status PrintPlan(const PlanRequest& request, std::ostream& out, std::ostream& err);

// Checks rule files; with `against`, also compiles forward on that checkpoint and reverse on the
// result and requires the original names, shapes and dtypes back. Prints every finding.
struct LintRequest {
  std::vector<std::string> rule_files;
  std::string against;
  std::string config;
  std::vector<std::pair<std::string, std::string>> set;
};
Status Lint(const LintRequest& request, std::ostream& out);

// The bundled rule files: model keys, aliases, description, parameters; with `markdown`, the
// table docs/models.md holds.
Status ListModels(std::ostream& out, bool markdown = false);

// Makes SIGINT and SIGTERM remove every temporary output before the process exits (status 130 or
// 143), so an interrupted conversion leaves nothing under any output name; and makes a SIGBUS from
// a mapped input truncated while read do the same, naming the file (status 3). Call once, first
// thing in main(), before any thread starts.
void InstallInterruptCleanup();

// Process exit code for an error: 1 bad input or rules, 2 usage, 3 environment, 70 internal.
int ExitCodeFor(const Error& error);

}  // namespace cw
