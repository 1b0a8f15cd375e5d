#include "engine/formats/distributed/distributed_reader.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <utility>

#include "engine/base/input_file.h"
#include "engine/base/text.h"
#include "engine/formats/distributed/assembly.h"
#include "engine/formats/distributed/block_runs.h"
#include "engine/formats/distributed/rank_folders.h"
#include "engine/formats/mindspore/parallel_strategy.h"

namespace cw::distributed {
namespace fs = std::filesystem;
namespace {

// Bytes of slice read at once by Read() and Verify().
constexpr uint64_t kChunkBytes = 4ull << 20;

uint64_t TotalSize(const std::vector<FileExtent>& extents) {
  uint64_t total = 0;
  for (const FileExtent& e : extents)
    total += e.size;
  return total;
}

std::string SliceText(const mindspore::TensorSlice& slice) {
  std::string out = "[";
  for (size_t i = 0; i < slice.size(); ++i) {
    out += (i == 0 ? "" : ", ") + std::to_string(slice[i].offset) + ":" +
           std::to_string(slice[i].offset + slice[i].length);
  }
  return out + "]";
}

struct Rank {
  uint64_t rank = 0;
  std::string file;  // FileExtent::file points here: never moved once the reader is built
  std::unique_ptr<CheckpointReader> reader;
  InputFile input;
};

class DistributedReader final : public CheckpointReader {
 public:
  DistributedReader(std::vector<Rank> ranks, Assembly assembly, bool compare_replicas)
      : ranks_(std::move(ranks)),
        assembly_(std::move(assembly)),
        compare_replicas_(compare_replicas) {
    for (const AssembledTensor& t : assembly_.tensors)
      tensors_.push_back(t.info);
    std::set<std::string> seen;
    for (const Rank& r : ranks_) {
      for (const SkippedValue& s : r.reader->skipped()) {
        if (seen.insert(s.name).second)
          skipped_.push_back(s);
      }
    }
  }

  FileFormat format() const override { return FileFormat::kMindSpore; }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  const std::string& FileOf(size_t index) const override {
    return ranks_[assembly_.tensors[index].blocks.front().source.rank].file;
  }
  const std::vector<SkippedValue>& skipped() const override { return skipped_; }
  const std::map<std::string, std::string>& metadata() const override {
    return ranks_.front().reader->metadata();
  }

  Result<TensorData> Read(size_t index) const override {
    CW_RETURN_IF_ERROR(Verify(index));
    const AssembledTensor& t = assembly_.tensors[index];
    TensorData data = TensorData::Allocate(t.info.byte_size);
    const MutableByteSpan out = data.mutable_bytes();
    std::unique_ptr<std::byte[]> buffer;
    for (const Block& block : t.blocks) {
      const BlockRuns runs(t.info.shape, block.slice, ElementSize(t.info.dtype));
      if (runs.count() == 1) {  // one piece: straight into place
        CW_RETURN_IF_ERROR(
            ReadSlice(block.source, 0, out.subspan(runs.FullOffset(0), runs.run_bytes())));
        continue;
      }
      if (!buffer)
        buffer = std::make_unique_for_overwrite<std::byte[]>(kChunkBytes);
      for (uint64_t at = 0; at < runs.block_bytes();) {
        const uint64_t n = std::min(kChunkBytes, runs.block_bytes() - at);
        CW_RETURN_IF_ERROR(ReadSlice(block.source, at, {buffer.get(), n}));
        runs.ForBlockRange(at, at + n, [&](uint64_t full, uint64_t within, uint64_t size) {
          std::memcpy(out.data() + full, buffer.get() + (within - at), size);
        });
        at += n;
      }
    }
    return data;
  }

  Status ReadRange(size_t index, uint64_t offset, MutableByteSpan out) const override {
    const AssembledTensor& t = assembly_.tensors[index];
    const uint64_t end = offset + out.size();
    std::unique_ptr<std::byte[]> buffer;
    for (const Block& block : t.blocks) {
      const BlockRuns runs(t.info.shape, block.slice, ElementSize(t.info.dtype));
      // The block's bytes in [offset, end) are one range of its slice: read it at once, then
      // put each piece in place.
      uint64_t first = UINT64_MAX;
      uint64_t last = 0;
      uint64_t pieces = 0;
      runs.ForFullRange(offset, end, [&](uint64_t, uint64_t at, uint64_t n) {
        first = std::min(first, at);
        last = at + n;
        ++pieces;
      });
      if (pieces == 0)
        continue;
      if (pieces == 1) {
        uint64_t full = 0;
        runs.ForFullRange(offset, end, [&](uint64_t f, uint64_t, uint64_t) { full = f; });
        CW_RETURN_IF_ERROR(
            ReadSlice(block.source, first, out.subspan(full - offset, last - first)));
        continue;
      }
      if (!buffer)
        buffer = std::make_unique_for_overwrite<std::byte[]>(out.size());
      CW_RETURN_IF_ERROR(ReadSlice(block.source, first, {buffer.get(), last - first}));
      runs.ForFullRange(offset, end, [&](uint64_t full, uint64_t at, uint64_t n) {
        std::memcpy(out.data() + (full - offset), buffer.get() + (at - first), n);
      });
    }
    return OkStatus();
  }

  std::vector<FileExtent> Extents(size_t index) const override {
    const AssembledTensor& t = assembly_.tensors[index];
    uint64_t pieces = 0;
    std::vector<BlockRuns> runs;
    for (const Block& block : t.blocks) {
      runs.emplace_back(t.info.shape, block.slice, ElementSize(t.info.dtype));
      pieces += runs.back().count();
    }
    if (pieces == 0 || pieces > kMaxExtents ||
        (pieces > t.blocks.size() && t.info.byte_size / pieces < kMinExtentBytes)) {
      return {};
    }
    std::vector<std::pair<uint64_t, FileExtent>> placed;  // full offset, extent
    for (size_t b = 0; b < t.blocks.size(); ++b) {
      const TensorSource& source = t.blocks[b].source;
      const Rank& rank = ranks_[source.rank];
      const std::vector<FileExtent> slice = rank.reader->Extents(source.tensor);
      if (TotalSize(slice) != runs[b].block_bytes())
        return {};  // only the rank reader's Read() has them
      for (uint64_t r = 0; r < runs[b].count(); ++r) {
        uint64_t full = runs[b].FullOffset(r);
        ForSliceExtents(slice, r * runs[b].run_bytes(), runs[b].run_bytes(),
                        [&](uint64_t file_offset, uint64_t n) {
                          placed.push_back({full, {file_offset, n, &rank.file}});
                          full += n;
                        });
      }
    }
    std::sort(placed.begin(), placed.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<FileExtent> extents;
    extents.reserve(placed.size());
    for (const auto& [full, extent] : placed)
      extents.push_back(extent);
    return extents;
  }

  Status Verify(size_t index) const override {
    const AssembledTensor& t = assembly_.tensors[index];
    if (t.has_layout && !compare_replicas_)
      return OkStatus();
    for (const Block& block : t.blocks) {
      for (const TensorSource& copy : block.copies)
        CW_RETURN_IF_ERROR(Compare(t, block, copy));
    }
    return OkStatus();
  }

 private:
  // Calls f(file offset, size) for bytes [offset, offset + size) of a tensor stored as `extents`.
  template <typename F>
  static void ForSliceExtents(const std::vector<FileExtent>& extents, uint64_t offset,
                              uint64_t size, F f) {
    uint64_t start = 0;
    for (const FileExtent& e : extents) {
      const uint64_t end = start + e.size;
      if (size > 0 && offset < end) {
        const uint64_t n = std::min(size, end - offset);
        f(e.offset + (offset - start), n);
        offset += n;
        size -= n;
      }
      start = end;
    }
  }

  // Bytes [offset, offset + out.size()) of a rank's slice, with positional reads.
  Status ReadSlice(const TensorSource& s, uint64_t offset, MutableByteSpan out) const {
    const Rank& rank = ranks_[s.rank];
    const std::vector<FileExtent> extents = rank.reader->Extents(s.tensor);
    if (TotalSize(extents) != rank.reader->tensors()[s.tensor].byte_size) {
      CW_ASSIGN_OR_RETURN(const TensorData data, rank.reader->Read(s.tensor));
      std::memcpy(out.data(), data.bytes().data() + offset, out.size());
      return OkStatus();
    }
    Status status = OkStatus();
    uint64_t done = 0;
    ForSliceExtents(extents, offset, out.size(), [&](uint64_t file_offset, uint64_t n) {
      if (status.ok())
        status = rank.input.ReadAt(file_offset, out.subspan(done, n));
      done += n;
    });
    return status;
  }

  // Where byte `offset` of a rank's slice lies in its file, for an error.
  Location Where(const TensorSource& s, uint64_t offset) const {
    const Rank& rank = ranks_[s.rank];
    Location where = FileLocation(rank.file);
    ForSliceExtents(rank.reader->Extents(s.tensor), offset, 1,
                    [&](uint64_t file_offset, uint64_t) { where.offset = file_offset; });
    return where;
  }

  Status Compare(const AssembledTensor& t, const Block& block, const TensorSource& copy) const {
    const uint64_t size =
        ranks_[block.source.rank].reader->tensors()[block.source.tensor].byte_size;
    const uint64_t chunk = std::min(kChunkBytes, size);
    auto a = std::make_unique_for_overwrite<std::byte[]>(chunk);
    auto b = std::make_unique_for_overwrite<std::byte[]>(chunk);
    for (uint64_t at = 0; at < size; at += chunk) {
      const uint64_t n = std::min(chunk, size - at);
      CW_RETURN_IF_ERROR(ReadSlice(block.source, at, {a.get(), n}));
      CW_RETURN_IF_ERROR(ReadSlice(copy, at, {b.get(), n}));
      if (std::memcmp(a.get(), b.get(), n) == 0)
        continue;
      const uint64_t differ =
          at + static_cast<uint64_t>(std::mismatch(a.get(), a.get() + n, b.get()).first - a.get());
      const std::string source = "rank_" + std::to_string(ranks_[block.source.rank].rank);
      const std::string other = "rank_" + std::to_string(ranks_[copy.rank].rank);
      const std::string what =
          t.has_layout
              ? "the strategy calls them replicas of block " + SliceText(block.slice) +
                    ", yet they differ: a strategy of another run, or a damaged rank file"
              : "the strategy does not lay it out, so every rank must hold it whole and the same "
                "(a strategy of another network?)";
      return Error(ErrorCode::kCorrupt,
                   Quoted(t.info.name) + " differs between " + source + " and " + other +
                       " from byte " + std::to_string(differ) + " of their copies: " + what,
                   Where(copy, differ));
    }
    return OkStatus();
  }

  std::vector<Rank> ranks_;
  Assembly assembly_;
  bool compare_replicas_ = true;
  std::vector<TensorInfo> tensors_;
  std::vector<SkippedValue> skipped_;
};

}  // namespace

Result<std::unique_ptr<CheckpointReader>> OpenDistributedCheckpoint(
    const fs::path& folder, const DistributedOptions& options, const OpenRankFileFn& open_file,
    std::vector<std::string>* notes) {
  CW_ASSIGN_OR_RETURN(RankFiles files, FindRankFiles(folder));
  fs::path strategy_path = options.strategy;
  if (strategy_path.empty()) {
    CW_ASSIGN_OR_RETURN(strategy_path, FindStrategy(folder));
    files.notes.push_back("parallel strategy found beside the rank folders: " +
                          strategy_path.string());
  }
  CW_ASSIGN_OR_RETURN(const mindspore::ParallelStrategy strategy,
                      mindspore::LoadParallelStrategy(strategy_path));
  // Each rank file stays open twice (this reader's positional reads, the executor's copies).
  CW_RETURN_IF_ERROR(ReserveOpenFiles(2 * files.ranks.size(),
                                      std::to_string(files.ranks.size()) + "-rank checkpoint"));
  std::vector<Rank> ranks;
  ranks.reserve(files.ranks.size());
  std::vector<RankInventory> inventories;
  for (const RankFile& f : files.ranks) {
    CW_ASSIGN_OR_RETURN(auto reader, open_file(f.path));
    CW_ASSIGN_OR_RETURN(InputFile input, InputFile::Open(f.path));
    inventories.push_back({f.rank, f.path, reader->tensors()});
    ranks.push_back({f.rank, f.path, std::move(reader), std::move(input)});
  }
  AssemblyOptions assembly_options;
  assembly_options.allow_unused_layouts = options.allow_unused_layouts;
  CW_ASSIGN_OR_RETURN(Assembly assembly,
                      Assemble(folder.string(), inventories, strategy, assembly_options));
  if (notes != nullptr) {
    notes->insert(notes->end(), files.notes.begin(), files.notes.end());
    notes->insert(notes->end(), assembly.notes.begin(), assembly.notes.end());
    if (!options.compare_replicas) {
      notes->push_back(
          "replicas are not compared (--skip-replica-check): each block is taken from the first "
          "rank holding it, and a rank whose copy differs goes unnoticed");
    }
  }
  return std::unique_ptr<CheckpointReader>(std::make_unique<DistributedReader>(
      std::move(ranks), std::move(assembly), options.compare_replicas));
}

}  // namespace cw::distributed
