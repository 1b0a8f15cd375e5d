// convert_weight: parses arguments into engine requests, prints errors, returns exit codes.
#include <iostream>

#include <CLI/CLI.hpp>

#include "cw/convert_weight.h"

namespace {

int Report(const cw::Status& status) {
  if (status.ok())
    return 0;
  std::cerr << "convert_weight: " << status.error().ToString() << "\n";
  return cw::ExitCodeFor(status.error());
}

}  // namespace

int main(int argc, char** argv) {
  cw::InstallInterruptCleanup();
  CLI::App app{"ConvertWeight: converts model weights between HuggingFace/PyTorch and MindSpore"};
  app.require_subcommand(1);

  cw::InspectRequest inspect;
  CLI::App* inspect_cmd =
      app.add_subcommand("inspect", "List the tensors of a checkpoint file or folder");
  inspect_cmd->add_option("path", inspect.path, "Checkpoint file or folder")->required();
  inspect_cmd->add_flag("--json", inspect.json, "Machine-readable output");

  cw::RewriteRequest rewrite;
  CLI::App* rewrite_cmd = app.add_subcommand(
      "rewrite", "Write the same tensors in another file format (chosen by the output name)");
  rewrite_cmd->add_option("input", rewrite.input, "Checkpoint file or folder")->required();
  rewrite_cmd->add_option("output", rewrite.output, ".safetensors, .bin, .pth, .ckpt or folder/")
      ->required();
  rewrite_cmd->add_flag("--force", rewrite.force, "Replace an existing output");
  rewrite_cmd->add_flag("--crc", rewrite.ckpt_crc, ".ckpt: append MindSpore's CRC trailer");
  rewrite_cmd->add_option("--chunk-bytes", rewrite.ckpt_chunk_bytes,
                          ".ckpt: split tensors above this size into records");
  rewrite_cmd->add_option("--max-shard-size", rewrite.max_shard_size, "Folder output shard size");
  rewrite_cmd->add_option("--root-key", rewrite.torch_root_key,
                          ".bin/.pth: nest the tensors under this key");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  try {
    if (*inspect_cmd)
      return Report(cw::Inspect(inspect, std::cout, std::cerr));
    if (*rewrite_cmd)
      return Report(cw::Rewrite(rewrite, std::cerr));
  } catch (const std::exception& e) {
    std::cerr << "convert_weight: internal error, please report: " << e.what() << "\n";
    return 70;
  }
  return 2;
}
