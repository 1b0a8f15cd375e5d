// The public API of the ConvertWeight engine: one function per command of the convert_weight
// tool. The command-line program only parses arguments into these requests and prints errors.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>

#include "cw/error.h"

namespace cw {

// Lists the tensors of a checkpoint file or folder from its headers alone.
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

// Makes SIGINT and SIGTERM remove every temporary output before the process exits (status 130 or
// 143), so an interrupted conversion leaves nothing under any output name. Call once, first thing
// in main(), before any thread starts.
void InstallInterruptCleanup();

// Process exit code for an error: 1 bad input or rules, 2 usage, 3 environment, 70 internal.
int ExitCodeFor(const Error& error);

}  // namespace cw
