// The default of CheckpointWriter::CopyFromFile, for writers that must see every byte (a CRC).
#include "engine/formats/checkpoint.h"

namespace cw {

Status CheckpointWriter::CopyFromFile(size_t index, uint64_t offset, const InputFile& source,
                                      uint64_t source_offset, uint64_t size) {
  return source.ReadInPieces(source_offset, size, [&](ByteSpan piece, uint64_t at) {
    return Write(index, offset + at, piece);
  });
}

}  // namespace cw
