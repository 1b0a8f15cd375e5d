#include "engine/exec/executor.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "engine/base/input_file.h"
#include "engine/base/mapped_file.h"
#include "engine/plan/step_ops.h"
#include "engine/plan/step_runs.h"
#include "engine/plan/step_slices.h"
#include "engine/tensor/buffer_pool.h"
#include "engine/tensor/dtype_cast.h"

namespace cw {
namespace {

// Admits steps while their owned bytes fit under the cap; a step over the cap waits until it is
// alone.
class ByteBudget {
 public:
  explicit ByteBudget(uint64_t cap) : cap_(cap) {}
  void Acquire(uint64_t n) {
    if (cap_ == 0)
      return;
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return used_ == 0 || used_ + n <= cap_; });
    used_ += n;
  }
  void Release(uint64_t n) {
    if (cap_ == 0)
      return;
    {
      std::lock_guard lock(mutex_);
      used_ -= n;
    }
    cv_.notify_all();
  }

 private:
  const uint64_t cap_;
  std::mutex mutex_;
  std::condition_variable cv_;
  uint64_t used_ = 0;
};

// Lets steps read their inputs in plan order even when several run at once. Steps are ordered by
// their first input, so the disk serves one sequential stream, as for a file copy: two threads
// reading far apart in the same files were measured at 60-70 % of that speed (docs/benchmarks.md).
class ReadOrder {
 public:
  // Blocks until every step before `step` has read its inputs; false once Stop() was called.
  bool WaitFor(size_t step) {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return stopped_ || next_ == step; });
    return !stopped_;
  }
  void Done(size_t step) {
    {
      std::lock_guard lock(mutex_);
      next_ = step + 1;
    }
    cv_.notify_all();
  }
  void Stop() {
    {
      std::lock_guard lock(mutex_);
      stopped_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  size_t next_ = 0;
  bool stopped_ = false;
};

// A step's turn to read; passed on when the step has its inputs, or at the latest when it ends.
class ReadTurn {
 public:
  ReadTurn(ReadOrder& order, size_t step) : order_(order), step_(step) {
    granted_ = order_.WaitFor(step);
  }
  ~ReadTurn() { Pass(); }
  ReadTurn(const ReadTurn&) = delete;
  ReadTurn& operator=(const ReadTurn&) = delete;

  bool granted() const { return granted_; }
  void Pass() {
    if (granted_ && !passed_)
      order_.Done(step_);
    passed_ = true;
  }

 private:
  ReadOrder& order_;
  const size_t step_;
  bool granted_ = false;
  bool passed_ = false;
};

// The input files, each opened once for positional reads.
class SourceFiles {
 public:
  Result<const InputFile*> Get(const std::string& path) {
    std::lock_guard lock(mutex_);
    if (auto it = files_.find(path); it != files_.end())
      return &it->second;
    CW_ASSIGN_OR_RETURN(InputFile file, InputFile::Open(path));
    return &files_.emplace(path, std::move(file)).first->second;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, InputFile> files_;  // nodes do not move, so pointers stay valid
};

uint64_t TotalSize(const std::vector<FileExtent>& extents) {
  uint64_t total = 0;
  for (const FileExtent& e : extents)
    total += e.size;
  return total;
}

// Calls f(file, file offset, offset within [offset, offset + size), bytes) for each part of bytes
// [offset, offset + size) of a tensor stored as `extents`, extent k lying in files[k].
template <typename F>
Status ForEachExtentPart(const std::vector<FileExtent>& extents,
                         const std::vector<const InputFile*>& files, uint64_t offset, uint64_t size,
                         F f) {
  uint64_t start = 0;  // of the current extent, within the tensor
  for (size_t k = 0; k < extents.size() && size > 0; ++k) {
    const FileExtent& e = extents[k];
    const uint64_t end = start + e.size;
    if (offset < end) {
      const uint64_t n = std::min(size, end - offset);
      CW_RETURN_IF_ERROR(f(*files[k], e.offset + (offset - start), offset, n));
      offset += n;
      size -= n;
    }
    start = end;
  }
  return OkStatus();
}

// The parts of [at, at + size) that lie in `ranges` (ascending, disjoint), in order.
std::vector<ByteRange> Intersect(uint64_t at, uint64_t size, const std::vector<ByteRange>& ranges) {
  std::vector<ByteRange> parts;
  const uint64_t end = at + size;
  auto it = std::lower_bound(ranges.begin(), ranges.end(), at,
                             [](const ByteRange& r, uint64_t x) { return r.offset + r.size <= x; });
  for (; it != ranges.end() && it->offset < end; ++it) {
    const uint64_t lo = std::max(at, it->offset);
    const uint64_t hi = std::min(end, it->offset + it->size);
    if (lo < hi)
      parts.push_back({lo, hi - lo});
  }
  return parts;
}

std::string OutputNames(const PlanStep& step) {
  std::string names;
  for (const TensorInfo& t : step.outputs)
    names += (names.empty() ? "\"" : ", \"") + t.name + "\"";
  return names.empty() ? "(none)" : names;
}

// Each thread's buffers: file bytes read for a cast, and the cast's result.
struct Scratch {
  std::unique_ptr<std::byte[]> read = std::make_unique_for_overwrite<std::byte[]>(kCastChunkBytes);
  std::unique_ptr<std::byte[]> cast = std::make_unique_for_overwrite<std::byte[]>(kCastChunkBytes);
};

class Runner {
 public:
  Runner(const Plan& plan, const CheckpointReader& reader, CheckpointWriter& writer,
         const ExecuteOptions& options)
      : plan_(plan),
        reader_(reader),
        writer_(writer),
        options_(options),
        budget_(options.max_bytes_in_flight) {
    extents_.reserve(plan.inventory.size());
    for (size_t i = 0; i < plan.inventory.size(); ++i) {
      extents_.push_back(reader.Extents(i));
      if (TotalSize(extents_.back()) != plan.inventory[i].byte_size)
        extents_.back().clear();  // only Read() can give these bytes
      // Without extents, a reader may still give ranges (an empty one tells): streamed in chunks.
      ranged_.push_back(extents_.back().empty() && reader.ReadRange(i, 0, {}).ok());
    }
    files_.resize(plan.inventory.size());
    uint64_t k = 0;
    for (const PlanStep& step : plan.steps) {
      first_output_.push_back(k);
      for (size_t o = 0; o < step.outputs.size(); ++o)
        needed_.push_back(writer.NeededRanges(k + o));
      k += step.outputs.size();
      runs_.push_back(StepRuns(plan, step));
      owned_bytes_.push_back(OwnedBytes(step, runs_.back().has_value()));
    }
  }

  Status Run() {
    // Opened up front, then checked to be the files the reader listed: one deleted or replaced
    // later is still read through its descriptor, and the check before the commit reports it.
    for (size_t i = 0; i < extents_.size(); ++i) {
      for (const FileExtent& e : extents_[i]) {
        const std::string& path = e.file != nullptr ? *e.file : reader_.FileOf(i);
        Result<const InputFile*> file = sources_.Get(path);
        if (!file.ok()) {
          CW_RETURN_IF_ERROR(CheckMappedInputsUnchanged());  // says why, when it was deleted
          return file.status();
        }
        files_[i].push_back(*file);
      }
    }
    CW_RETURN_IF_ERROR(CheckMappedInputsUnchanged());
    const unsigned threads = std::max(1u, options_.threads);
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t)
      pool.emplace_back([this] { Work(); });
    Work();
    for (std::thread& t : pool)
      t.join();
    std::lock_guard lock(error_mutex_);
    if (error_)
      return *error_;
    return OkStatus();
  }

 private:
  // Bytes a step holds in memory: its inputs (read whole unless the step runs as copies) and the
  // values its ops make. Copies hold only the thread's scratch buffers.
  uint64_t OwnedBytes(const PlanStep& step, bool runs_as_copies) const {
    uint64_t owned = runs_as_copies ? 0 : step.working_bytes;
    if (!runs_as_copies && step.slices) {
      for (const uint64_t i : SliceOf(step, 0).inputs)
        owned += plan_.inventory[i].byte_size;
      return owned;
    }
    for (const uint64_t i : step.inputs) {
      if (!runs_as_copies || (extents_[i].empty() && !ranged_[i]))
        owned += plan_.inventory[i].byte_size;
    }
    return owned;
  }

  void Work() {
    Scratch scratch;
    while (!failed_.load()) {
      if (options_.cancel != nullptr && options_.cancel->load()) {
        Fail(Error(ErrorCode::kCancelled, "interrupted"));
        return;
      }
      const size_t s = next_.fetch_add(1);
      if (s >= plan_.steps.size())
        return;
      const PlanStep& step = plan_.steps[s];
      Status status = RunStep(s, scratch);
      if (!status.ok()) {
        // A plan made without rules (merge) has steps without a rule.
        Fail(std::move(status).error().With(step.rule.file.empty()
                                                ? "writing " + OutputNames(step)
                                                : "running the step of rule at " + step.rule.file +
                                                      ":" + std::to_string(step.rule.line) +
                                                      " that writes " + OutputNames(step)));
      }
    }
  }

  Status RunStep(size_t s, Scratch& scratch) {
    ReadTurn turn(order_, s);
    if (!turn.granted())
      return OkStatus();  // another step failed
    const PlanStep& step = plan_.steps[s];
    if (!Needed(s)) {  // the writer keeps none of its outputs' bytes
      for (size_t o = 0; o < step.outputs.size(); ++o)
        CountTensor();
      return OkStatus();
    }
    // Bytes copied through extents or ranges are checked by nothing else (Read() checks its own).
    for (const uint64_t i : step.inputs) {
      if (!extents_[i].empty() || (runs_[s] && ranged_[i]))
        CW_RETURN_IF_ERROR(reader_.Verify(i));
    }
    budget_.Acquire(owned_bytes_[s]);
    Status status = runs_[s] ? CopyRuns(s, *runs_[s], scratch) : ComputeStep(s, turn, scratch);
    budget_.Release(owned_bytes_[s]);
    return status;
  }

  // A step whose ops reorder elements: inputs are read whole (in turn), then the ops run in memory
  // while the next step reads.
  Status ComputeStep(size_t s, ReadTurn& turn, Scratch& scratch) {
    const PlanStep& step = plan_.steps[s];
    if (step.slices)
      return ComputeSlices(s, turn, scratch);
    std::vector<TensorData> inputs;
    for (const uint64_t i : step.inputs) {
      CW_ASSIGN_OR_RETURN(TensorData data, ReadInput(i));
      inputs.push_back(std::move(data));
    }
    turn.Pass();
    if (step.kind == PlanStep::Kind::kVerifyEqual) {
      if (!SameBytes(inputs[0], inputs[1])) {
        // A copy_of copy must equal its tensor for the reverse to give it back; a tie can be
        // switched off by its parameter.
        const bool copy_of = step.note.rfind("omitted: a copy of", 0) == 0;
        return Error(ErrorCode::kPlanInvalid,
                     "\"" + plan_.inventory[step.inputs[0]].name + "\" is declared " +
                         (copy_of ? "a copy of \"" : "tied to \"") +
                         plan_.inventory[step.inputs[1]].name + "\" but their bytes differ" +
                         (copy_of ? ": it cannot be written back from one MindSpore tensor"
                                  : "; set the tying parameter to false to keep it"),
                     step.rule);
      }
      return OkStatus();
    }
    CW_ASSIGN_OR_RETURN(std::vector<TensorData> values, ApplyStep(plan_, step, std::move(inputs)));
    for (size_t o = 0; o < values.size(); ++o) {
      CW_RETURN_IF_ERROR(WriteValue(first_output_[s] + o, 0, step.value_dtype,
                                    step.outputs[o].dtype, values[o].bytes(), scratch));
      CountTensor();
    }
    return OkStatus();
  }

  // A step that runs slice by slice: each slice's inputs are read and its part of every output
  // made and written before the next slice is read. Slices read across the step's inputs, so
  // the next step may read meanwhile.
  Status ComputeSlices(size_t s, ReadTurn& turn, Scratch& scratch) {
    const PlanStep& step = plan_.steps[s];
    turn.Pass();
    for (uint32_t k = 0; k < step.slices->count; ++k) {
      if (failed_.load())
        return OkStatus();  // another step failed: its error is the one to report
      const PlanStep part = SliceOf(step, k);
      std::vector<TensorData> inputs;
      for (const uint64_t i : part.inputs) {
        CW_ASSIGN_OR_RETURN(TensorData data, ReadInput(i));
        inputs.push_back(std::move(data));
      }
      CW_ASSIGN_OR_RETURN(std::vector<TensorData> values,
                          ApplyStep(plan_, part, std::move(inputs)));
      for (size_t o = 0; o < values.size(); ++o) {
        CW_RETURN_IF_ERROR(WriteValue(first_output_[s] + o, k * values[o].size(), step.value_dtype,
                                      step.outputs[o].dtype, values[o].bytes(), scratch));
      }
    }
    for (size_t o = 0; o < step.outputs.size(); ++o)
      CountTensor();
    return OkStatus();
  }

  // A step of whole blocks: each output is written run by run straight from the input files.
  Status CopyRuns(size_t s, const std::vector<std::vector<ByteRun>>& runs, Scratch& scratch) {
    const PlanStep& step = plan_.steps[s];
    std::vector<std::optional<TensorData>> in_memory(step.inputs.size());
    for (size_t o = 0; o < runs.size(); ++o) {
      uint64_t at = 0;
      for (const ByteRun& run : runs[o]) {
        CW_RETURN_IF_ERROR(CopyRun(step, first_output_[s] + o, step.outputs[o].dtype, run, at,
                                   in_memory, scratch));
        at += run.size;
      }
      CountTensor();
    }
    return OkStatus();
  }

  // False when the writer keeps no byte of any output of step `s` (a step without outputs checks
  // something and always runs).
  bool Needed(size_t s) const {
    const PlanStep& step = plan_.steps[s];
    if (step.outputs.empty())
      return true;
    for (size_t o = 0; o < step.outputs.size(); ++o) {
      const std::optional<std::vector<ByteRange>>& needed = needed_[first_output_[s] + o];
      if (!needed || !needed->empty())
        return true;
    }
    return false;
  }

  // Writes `run` as bytes [at, at + run.size) (in the value dtype) of output `k`: the parts the
  // writer keeps (NeededRanges, in output bytes, widened to whole values of the value dtype).
  Status CopyRun(const PlanStep& step, uint64_t k, DType to, const ByteRun& run, uint64_t at,
                 std::vector<std::optional<TensorData>>& in_memory, Scratch& scratch) {
    if (!needed_[k])
      return CopyRunPart(step, k, to, run, at, in_memory, scratch);
    const uint64_t in_size = ElementSize(step.value_dtype);
    const uint64_t out_size = ElementSize(to);
    std::vector<ByteRange> value_ranges;
    for (const ByteRange& r : *needed_[k]) {
      const uint64_t first = r.offset / out_size;
      const uint64_t last = (r.offset + r.size + out_size - 1) / out_size;
      if (!value_ranges.empty() &&
          value_ranges.back().offset + value_ranges.back().size >= first * in_size) {
        value_ranges.back().size = last * in_size - value_ranges.back().offset;
      } else {
        value_ranges.push_back({first * in_size, (last - first) * in_size});
      }
    }
    for (const ByteRange& part : Intersect(at, run.size, value_ranges)) {
      ByteRun sub = run;
      sub.offset = run.input == ByteRun::kZeros ? 0 : run.offset + (part.offset - at);
      sub.size = part.size;
      CW_RETURN_IF_ERROR(CopyRunPart(step, k, to, sub, part.offset, in_memory, scratch));
    }
    return OkStatus();
  }

  Status CopyRunPart(const PlanStep& step, uint64_t k, DType to, const ByteRun& run, uint64_t at,
                     std::vector<std::optional<TensorData>>& in_memory, Scratch& scratch) {
    const DType from = step.value_dtype;
    if (run.input == ByteRun::kZeros) {
      const uint64_t chunk = std::min(run.size, CastChunkInputBytes(from, to));
      std::memset(scratch.read.get(), 0, chunk);
      for (uint64_t done = 0; done < run.size;) {
        const uint64_t n = std::min(run.size - done, chunk);
        CW_RETURN_IF_ERROR(WriteValue(k, at + done, from, to, {scratch.read.get(), n}, scratch));
        done += n;
      }
      return OkStatus();
    }
    const uint64_t i = step.inputs[run.input];
    if (ranged_[i]) {  // in chunks, never the whole tensor
      for (uint64_t done = 0; done < run.size;) {
        const MutableByteSpan chunk(scratch.read.get(),
                                    std::min(run.size - done, CastChunkInputBytes(from, to)));
        CW_RETURN_IF_ERROR(reader_.ReadRange(i, run.offset + done, chunk));
        CW_RETURN_IF_ERROR(WriteValue(k, at + done, from, to, chunk, scratch));
        done += chunk.size();
      }
      return OkStatus();
    }
    if (extents_[i].empty()) {
      std::optional<TensorData>& data = in_memory[run.input];
      if (!data) {
        CW_ASSIGN_OR_RETURN(TensorData read, reader_.Read(i));
        data = std::move(read);
      }
      return WriteValue(k, at, from, to, data->bytes().subspan(run.offset, run.size), scratch);
    }
    if (from == to) {
      return ForEachExtentPart(
          extents_[i], files_[i], run.offset, run.size,
          [&](const InputFile& file, uint64_t file_offset, uint64_t offset, uint64_t n) -> Status {
            CountBytes(n);
            return writer_.CopyFromFile(k, at + offset - run.offset, file, file_offset, n);
          });
    }
    for (uint64_t done = 0; done < run.size;) {
      const MutableByteSpan chunk(scratch.read.get(),
                                  std::min(run.size - done, CastChunkInputBytes(from, to)));
      CW_RETURN_IF_ERROR(ReadRange(i, run.offset + done, chunk));
      CW_RETURN_IF_ERROR(WriteValue(k, at + done, from, to, chunk, scratch));
      done += chunk.size();
    }
    return OkStatus();
  }

  Result<TensorData> ReadInput(uint64_t i) {
    if (extents_[i].empty())
      return reader_.Read(i);
    TensorData data = TensorData::Allocate(plan_.inventory[i].byte_size);
    CW_RETURN_IF_ERROR(ReadRange(i, 0, data.mutable_bytes()));
    return data;
  }

  Status ReadRange(uint64_t i, uint64_t offset, MutableByteSpan out) const {
    return ForEachExtentPart(
        extents_[i], files_[i], offset, out.size(),
        [&](const InputFile& file, uint64_t file_offset, uint64_t part, uint64_t n) -> Status {
          return file.ReadAt(file_offset, out.subspan(part - offset, n));
        });
  }

  // Bytes of `from` values cast at once, so that the result fits the scratch buffer.
  static uint64_t CastChunkInputBytes(DType from, DType to) {
    return kCastChunkBytes / std::max(ElementSize(from), ElementSize(to)) * ElementSize(from);
  }

  // Writes `value` (bytes of `from` values starting at byte `at` of output k's value) cast to
  // `to`, in chunks through the scratch buffer.
  Status WriteValue(uint64_t k, uint64_t at, DType from, DType to, ByteSpan value,
                    Scratch& scratch) {
    if (from == to) {
      CW_RETURN_IF_ERROR(writer_.Write(k, at, value));
      CountBytes(value.size());
      return OkStatus();
    }
    const uint64_t in_size = ElementSize(from);
    const uint64_t out_size = ElementSize(to);
    for (uint64_t done = 0; done < value.size();) {
      const ByteSpan in = value.subspan(
          done, std::min<uint64_t>(value.size() - done, CastChunkInputBytes(from, to)));
      const MutableByteSpan out(scratch.cast.get(), in.size() / in_size * out_size);
      CastElements(from, to, in, out);
      CW_RETURN_IF_ERROR(writer_.Write(k, (at + done) / in_size * out_size, out));
      CountBytes(out.size());
      done += in.size();
    }
    return OkStatus();
  }

  void CountBytes(uint64_t n) {
    if (options_.progress != nullptr)
      options_.progress->bytes_done.fetch_add(n);
  }
  void CountTensor() {
    if (options_.progress != nullptr)
      options_.progress->tensors_done.fetch_add(1);
  }

  void Fail(Error error) {
    {
      std::lock_guard lock(error_mutex_);
      if (!error_)
        error_ = std::move(error);
      failed_.store(true);
    }
    order_.Stop();
  }

  const Plan& plan_;
  const CheckpointReader& reader_;
  CheckpointWriter& writer_;
  const ExecuteOptions& options_;
  ByteBudget budget_;
  ReadOrder order_;
  SourceFiles sources_;
  std::vector<std::vector<FileExtent>> extents_;      // per input; empty: read through Read()
  std::vector<std::vector<const InputFile*>> files_;  // per input, the file of each extent
  std::vector<bool> ranged_;  // per input: no extents, but ReadRange() works
  std::vector<std::optional<std::vector<ByteRange>>> needed_;  // per output: NeededRanges()
  std::vector<uint64_t> first_output_;
  std::vector<std::optional<std::vector<std::vector<ByteRun>>>> runs_;  // per step
  std::vector<uint64_t> owned_bytes_;                                   // per step
  std::atomic<size_t> next_{0};
  std::atomic<bool> failed_{false};
  std::mutex error_mutex_;
  std::optional<Error> error_;
};

}  // namespace

Status Execute(const Plan& plan, const CheckpointReader& reader, CheckpointWriter& writer,
               const ExecuteOptions& options) {
  if (reader.tensors() != plan.inventory) {
    return Error(ErrorCode::kInternal, "the plan was made for another inventory");
  }
  // Buffers kept for reuse count against the same budget as the steps' own bytes.
  SetPooledBufferLimit(options.max_bytes_in_flight != 0 ? options.max_bytes_in_flight
                                                        : kDefaultPooledBufferLimit);
  Status status = Runner(plan, reader, writer, options).Run();
  SetPooledBufferLimit(kDefaultPooledBufferLimit);
  return status;
}

}  // namespace cw
