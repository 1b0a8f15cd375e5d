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

// A distributed MindSpore checkpoint: a folder of rank_<r>/ folders, one checkpoint per rank,
// read with its parallel strategy as one checkpoint of full tensors (docs/distributed.md). Every
// command that reads a checkpoint accepts one.
struct DistributedInput {
  // --strategy: the parallel-strategy file or folder; "": the strategy/ folder or the one
  // *strategy*.ckpt beside the rank folders.
  std::string strategy;
  // --skip-replica-check: replicas of a block are not compared byte for byte; the first rank's
  // copy is used and a differing one goes unnoticed (values without a layout are still compared).
  bool skip_replica_check = false;
  // --allow-unused-layouts: layouts of parameters no rank file holds (a strategy of a larger run
  // of the network) are noted instead of refused.
  bool allow_unused_layouts = false;
};

// Lists the tensors of a checkpoint file or folder from its headers alone; for a MindSpore
// parallel-strategy file or folder (told from the bytes), the layout of every parameter.
struct InspectRequest {
  std::string path;
  bool json = false;  // machine-readable output
  DistributedInput distributed;
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
//
// With a strategy (distributed.strategy): in reverse, the input is a distributed checkpoint,
// merged and converted in one pass (training state left out, listed in the summary); forward,
// the output is a folder of rank folders, OUT/rank_<r>/checkpoint_<r>.ckpt, each rank's slices
// cut as the strategy lays them out (`ranks` chooses which ranks to write).
struct ConvertRequest {
  RuleChoice rules;
  std::string input;   // file, folder, or any file of a sharded folder
  std::string output;  // .ckpt, .safetensors, .bin/.pth/.pt, or a folder
  bool reverse = false;
  DistributedInput distributed;
  // --rank: forward with a strategy, only these global ranks: "3", "0-7", "0,4-7"; "": all.
  std::string ranks;
  std::string dtype;                   // "", fp32, fp16, bf16: cast every floating tensor
  unsigned threads = 0;                // 0: all cores
  std::string max_shard_size = "5GB";  // folder outputs
  std::string max_memory = "2GiB";     // cap on the bytes steps hold at once
  bool force = false;                  // replace an existing output
  bool quiet = false;                  // no progress, no summary
  bool progress = false;               // draw progress on `err` (set when it is a terminal)
};
Status Convert(const ConvertRequest& request, std::ostream& err);

// Merges a distributed MindSpore checkpoint into one checkpoint of full tensors, same names, same
// dtypes: .ckpt, .safetensors (MindSpore's {"format": "ms"}), or a folder of safetensors shards.
// Training state is kept, as MindSpore's own transform keeps it, unless drop_training_state
// (then every kind is left out whole, listed in the summary).
struct MergeRequest {
  std::string input;  // the folder of rank_<r>/ folders
  DistributedInput distributed;
  std::string output;
  bool drop_training_state = false;
  unsigned threads = 0;                // 0: all cores
  std::string max_shard_size = "5GB";  // folder outputs
  std::string max_memory = "2GiB";     // cap on the bytes held at once
  bool force = false;
  bool quiet = false;
  bool progress = false;
};
Status Merge(const MergeRequest& request, std::ostream& err);

// Prints the plan of a conversion (steps, shapes, dtypes, bytes, peak memory) without reading
// any tensor data.
struct PlanRequest {
  RuleChoice rules;
  std::string input;
  bool reverse = false;
  DistributedInput distributed;
  std::string dtype;
  bool json = false;
};
Status PrintPlan(const PlanRequest& request, std::ostream& out, std::ostream& err);

// Checks rule files; with `against`, also compiles forward on that checkpoint and reverse on the
// result and requires the original names, shapes and dtypes back. Prints every finding.
struct LintRequest {
  std::vector<std::string> rule_files;
  std::string against;
  DistributedInput distributed;  // when `against` is a distributed checkpoint
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
