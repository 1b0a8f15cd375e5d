// The default of CheckpointWriter::CopyFromFile, for writers that must see every byte (a CRC).
#include <algorithm>
#include <memory>

#include "engine/formats/checkpoint.h"

namespace cw {

Status CheckpointWriter::CopyFromFile(size_t index, uint64_t offset, const InputFile& source,
                                      uint64_t source_offset, uint64_t size) {
  constexpr uint64_t kBufferBytes = 4u << 20;
  const uint64_t buffer_size = std::min(size, kBufferBytes);
  auto buffer = std::make_unique_for_overwrite<std::byte[]>(buffer_size);
  for (uint64_t done = 0; done < size;) {
    const MutableByteSpan chunk(buffer.get(), std::min(buffer_size, size - done));
    CW_RETURN_IF_ERROR(source.ReadAt(source_offset + done, chunk));
    CW_RETURN_IF_ERROR(Write(index, offset + done, chunk));
    done += chunk.size();
  }
  return OkStatus();
}

}  // namespace cw
