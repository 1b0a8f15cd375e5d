// Reader and writer interfaces shared by every checkpoint format.
//
// Readers list every tensor from headers alone (no tensor data touched) and read one tensor at a
// time, borrowing bytes from the memory-mapped file whenever the layout allows. Writers know the
// full list of tensors up front, so every tensor's place in the file is fixed at creation: data
// may then arrive in any order, from any thread, and the output is byte-identical either way.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cw/error.h"
#include "engine/base/bytes.h"
#include "engine/base/input_file.h"
#include "engine/tensor/tensor.h"

namespace cw {

enum class FileFormat { kSafetensors, kTorch, kMindSpore };

std::string_view FormatName(FileFormat format);  // "safetensors", "torch", "mindspore"

// A value found in a checkpoint that is not a tensor (None, a number, a string, ...): reported,
// never converted.
struct SkippedValue {
  std::string name;
  std::string description;  // e.g. "int 3", "None", "str \"adam\""
};

// Bytes [offset, offset + size) of a file.
struct FileExtent {
  uint64_t offset = 0;
  uint64_t size = 0;
  // The file holding these bytes when a tensor's bytes lie in several files (a distributed
  // checkpoint: one extent per block of a rank file); nullptr: CheckpointReader::FileOf(index).
  // Points into the reader that listed the extent, valid while it lives.
  const std::string* file = nullptr;
  bool operator==(const FileExtent&) const = default;
};

// Bytes [offset, offset + size) of a tensor.
struct ByteRange {
  uint64_t offset = 0;
  uint64_t size = 0;
  bool operator==(const ByteRange&) const = default;
};

class CheckpointReader {
 public:
  virtual ~CheckpointReader() = default;

  virtual FileFormat format() const = 0;
  // Every tensor, in file order. Names are unique.
  virtual const std::vector<TensorInfo>& tensors() const = 0;
  // Bytes of tensors()[index] in C order. Borrowed views stay valid while the reader lives.
  // Thread-safe. REQUIRES: index < tensors().size()
  virtual Result<TensorData> Read(size_t index) const = 0;
  // The file holding tensors()[index] (differs per shard in a sharded folder).
  virtual const std::string& FileOf(size_t index) const = 0;
  // Non-tensor values found and left out.
  virtual const std::vector<SkippedValue>& skipped() const = 0;
  // Free-form string metadata (safetensors "__metadata__"); empty for other formats.
  virtual const std::map<std::string, std::string>& metadata() const = 0;

  // Where the bytes of tensors()[index] lie in FileOf(index) when the file stores them as they
  // are, in C order: one extent, or several for a tensor saved in pieces, or in pieces of several
  // files (FileExtent::file). Empty when only Read() can produce them (a strided torch tensor, a
  // reader over bytes in memory, a tensor of many small pieces). Lets an executor stream inputs in
  // file order, or copy them inside the kernel, without mapping them.
  virtual std::vector<FileExtent> Extents(size_t index) const {
    (void)index;
    return {};
  }

  // Bytes [offset, offset + out.size()) of tensors()[index], in C order, without building the
  // rest: for a reader whose Read() would assemble the tensor in memory from many small pieces (a
  // distributed checkpoint's blocks cut on an inner axis), so that a caller can stream it in
  // chunks. kUnsupported from readers that only produce whole tensors (the default): use Read().
  // Like Extents(), the bytes are not checked: call Verify() first. Thread-safe.
  // REQUIRES: offset + out.size() <= tensors()[index].byte_size.
  virtual Status ReadRange(size_t index, uint64_t offset, MutableByteSpan out) const {
    (void)index;
    (void)offset;
    (void)out;
    return Error(ErrorCode::kUnsupported, "no ranged reads");
  }

  // Checks what only the bytes can show about tensors()[index] when the reader takes it from one
  // of several sources that must agree (the replicas of a distributed checkpoint, a value every
  // rank saves): kCorrupt naming the tensor and the sources that differ. Read() runs the same
  // check itself; bytes taken through Extents() or ReadRange() are checked by nothing else, so
  // whoever copies them must call Verify() first (the executor does). Thread-safe.
  // Ok for a reader whose tensors each have one source.
  virtual Status Verify(size_t index) const {
    (void)index;
    return OkStatus();
  }
};

// How a folder output names and lists its safetensors files (docs/formats/safetensors.md).
enum class FolderLayout {
  // HuggingFace: model.safetensors alone, or model-0000i-of-0000N.safetensors shards listed by
  // model.safetensors.index.json ({"metadata": ..., "weight_map": {name: file}}); shards carry
  // {"format": "pt"}.
  kHfIndex,
  // MindFormers 1.7+ (MindSpore's safetensors): model-0000i-of-0000N.safetensors, even for one
  // file, listed by a flat param_name_map.json ({name: file}); files carry {"format": "ms"}.
  kParamNameMap,
};

struct WriterOptions {
  // safetensors "__metadata__". Writers of HF outputs add {"format": "pt"} when absent.
  std::map<std::string, std::string> metadata;
  // .ckpt: tensors above this many bytes are split into several records (MindSpore: 512 MiB).
  uint64_t ckpt_chunk_bytes = 512ull << 20;
  // .ckpt: append MindSpore's "crc_num" trailer (readable by MindSpore >= 2.3 only).
  bool ckpt_crc = false;
  // torch: nest the state dict under this key ({"model": {...}}), as timm/MAE checkpoints do.
  std::string torch_root_key;
  // Sharded folder output: start a new shard before a shard's tensor bytes would exceed this.
  uint64_t max_shard_bytes = 5'000'000'000;
  // Folder output: how the shards are named and listed (hf_folder.h).
  FolderLayout folder_layout = FolderLayout::kHfIndex;
  // Replace an existing output instead of refusing.
  bool replace_existing = false;
  // Folder outputs: files copied into the folder beside the weights (config.json, tokenizer...).
  std::vector<std::string> side_files;
  // A config.json among them is written without its "quantization_config": the weights written
  // are not quantised (FP8 checkpoints are dequantised on the way), and a loader reading that
  // entry would treat bfloat16 weights as FP8.
  bool drop_quantization_config = false;
};

class CheckpointWriter {
 public:
  virtual ~CheckpointWriter() = default;

  // Writes bytes [offset, offset + bytes.size()) of tensor `index` (an index into the list given
  // at creation). Thread-safe; pieces may come in any order. Every byte of every tensor must be
  // written exactly once before Commit() (every byte of NeededRanges(), when it is given).
  virtual Status Write(size_t index, uint64_t offset, ByteSpan bytes) = 0;
  // Writes `size` bytes of `source` from `source_offset` as bytes [offset, offset + size) of tensor
  // `index`, like Write(). Writers that need not see the bytes copy them inside the kernel; the
  // default reads them through a buffer.
  virtual Status CopyFromFile(size_t index, uint64_t offset, const InputFile& source,
                              uint64_t source_offset, uint64_t size);
  // Which bytes of tensor `index` the writer keeps: ranges ascending and disjoint, possibly more
  // than it strictly needs (close ranges joined). Bytes outside them may be written or not: they
  // are dropped. nullopt: every byte (every writer but one that writes a part of each tensor, the
  // selected ranks of a distributed checkpoint). Lets an executor read only the bytes it needs.
  virtual std::optional<std::vector<ByteRange>> NeededRanges(size_t index) const {
    (void)index;
    return std::nullopt;
  }
  // Checks that everything was written, finishes the file(s), fsyncs and renames into place.
  // Without Commit(), destroying the writer leaves nothing under the output name.
  virtual Status Commit() = 0;
};

}  // namespace cw
