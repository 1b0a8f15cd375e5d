#include <ostream>

#include "cw/convert_weight.h"
#include "engine/base/byte_size.h"
#include "engine/base/mapped_file.h"
#include "engine/formats/checkpoint_io.h"

namespace cw {

Status Rewrite(const RewriteRequest& request, std::ostream& err) {
  std::string note;
  CW_ASSIGN_OR_RETURN(auto reader, OpenCheckpoint(request.input, &note));
  if (!note.empty())
    err << "note: " << note << "\n";
  WriterOptions options;
  options.replace_existing = request.force;
  options.ckpt_crc = request.ckpt_crc;
  options.ckpt_chunk_bytes = request.ckpt_chunk_bytes;
  options.torch_root_key = request.torch_root_key;
  CW_ASSIGN_OR_RETURN(options.max_shard_bytes, ParseByteSize(request.max_shard_size));
  CW_ASSIGN_OR_RETURN(const OutputKind kind, OutputKindFor(request.output));
  if (kind == OutputKind::kSafetensorsFile || kind == OutputKind::kSafetensorsFolder) {
    options.metadata = reader->metadata();
    options.metadata.emplace("format", "pt");
  }
  CW_ASSIGN_OR_RETURN(auto writer,
                      CreateCheckpointWriter(request.output, reader->tensors(), options));
  CW_RETURN_IF_ERROR(CopyAllTensors(*reader, *writer));
  // As for convert: a file rewritten in place while read gives mixed bytes that only its identity
  // reveals.
  CW_RETURN_IF_ERROR(CheckMappedInputsUnchanged());
  return writer->Commit();
}

}  // namespace cw
