#include "engine/exec/executor.h"

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/plan/step_ops.h"
#include "engine/tensor/dtype_cast.h"

namespace cw {
namespace {

// Admits steps while their working bytes fit under the cap; a step over the cap waits until it
// is alone.
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

std::string OutputNames(const PlanStep& step) {
  std::string names;
  for (const TensorInfo& t : step.outputs)
    names += (names.empty() ? "\"" : ", \"") + t.name + "\"";
  return names.empty() ? "(none)" : names;
}

class Runner {
 public:
  Runner(const Plan& plan, const CheckpointReader& reader, CheckpointWriter& writer,
         const ExecuteOptions& options)
      : plan_(plan),
        reader_(reader),
        writer_(writer),
        options_(options),
        budget_(options.max_bytes_in_flight) {
    uint64_t k = 0;
    for (const PlanStep& step : plan.steps) {
      first_output_.push_back(k);
      k += step.outputs.size();
    }
  }

  Status Run() {
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
  void Work() {
    auto cast_buffer = std::make_unique_for_overwrite<std::byte[]>(kCastChunkBytes);
    while (!failed_.load()) {
      if (options_.cancel != nullptr && options_.cancel->load()) {
        Fail(Error(ErrorCode::kCancelled, "interrupted"));
        return;
      }
      const size_t s = next_.fetch_add(1);
      if (s >= plan_.steps.size())
        return;
      const PlanStep& step = plan_.steps[s];
      budget_.Acquire(step.working_bytes);
      Status status = RunStep(s, cast_buffer.get());
      budget_.Release(step.working_bytes);
      if (!status.ok()) {
        Fail(std::move(status).error().With("running the step of rule at " + step.rule.file + ":" +
                                            std::to_string(step.rule.line) + " that writes " +
                                            OutputNames(step)));
      }
    }
  }

  Status RunStep(size_t s, std::byte* cast_buffer) {
    const PlanStep& step = plan_.steps[s];
    std::vector<TensorData> inputs;
    for (uint64_t i : step.inputs)
      reader_.Prefetch(i);
    for (uint64_t i : step.inputs) {
      CW_ASSIGN_OR_RETURN(TensorData data, reader_.Read(i));
      inputs.push_back(std::move(data));
    }
    if (step.kind == PlanStep::Kind::kVerifyEqual) {
      if (!SameBytes(inputs[0], inputs[1])) {
        return Error(ErrorCode::kPlanInvalid,
                     "\"" + plan_.inventory[step.inputs[0]].name + "\" is declared tied to \"" +
                         plan_.inventory[step.inputs[1]].name +
                         "\" but their bytes differ; set the tying parameter to false to keep it",
                     step.rule);
      }
    } else {
      CW_ASSIGN_OR_RETURN(std::vector<TensorData> values,
                          ApplyStep(plan_, step, std::move(inputs)));
      for (size_t o = 0; o < values.size(); ++o) {
        CW_RETURN_IF_ERROR(WriteOutput(first_output_[s] + o, step.value_dtype, step.outputs[o],
                                       values[o], cast_buffer));
      }
    }
    for (uint64_t i : step.inputs)
      reader_.Release(i);
    return OkStatus();
  }

  Status WriteOutput(uint64_t k, DType from, const TensorInfo& out, const TensorData& value,
                     std::byte* cast_buffer) {
    if (out.dtype == from) {
      CW_RETURN_IF_ERROR(writer_.Write(k, 0, value.bytes()));
      CountBytes(value.size());
    } else {
      const uint64_t in_size = ElementSize(from);
      const uint64_t out_size = ElementSize(out.dtype);
      const uint64_t per_chunk = kCastChunkBytes / std::max(in_size, out_size);
      const ByteSpan in = value.bytes();
      for (uint64_t e = 0; e * in_size < in.size(); e += per_chunk) {
        const uint64_t n = std::min(per_chunk, in.size() / in_size - e);
        const MutableByteSpan chunk(cast_buffer, n * out_size);
        CastElements(from, out.dtype, in.subspan(e * in_size, n * in_size), chunk);
        CW_RETURN_IF_ERROR(writer_.Write(k, e * out_size, chunk));
        CountBytes(chunk.size());
      }
    }
    if (options_.progress != nullptr)
      options_.progress->tensors_done.fetch_add(1);
    return OkStatus();
  }

  void CountBytes(uint64_t n) {
    if (options_.progress != nullptr)
      options_.progress->bytes_done.fetch_add(n);
  }

  void Fail(Error error) {
    std::lock_guard lock(error_mutex_);
    if (!error_)
      error_ = std::move(error);
    failed_.store(true);
  }

  const Plan& plan_;
  const CheckpointReader& reader_;
  CheckpointWriter& writer_;
  const ExecuteOptions& options_;
  ByteBudget budget_;
  std::vector<uint64_t> first_output_;
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
  return Runner(plan, reader, writer, options).Run();
}

}  // namespace cw
