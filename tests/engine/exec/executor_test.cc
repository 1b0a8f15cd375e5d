#include "engine/exec/executor.h"

#include <cstring>
#include <mutex>

#include <doctest/doctest.h>

#include "engine/plan/planner.h"
#include "engine/ruleset/rule_file.h"
#include "tests/support/test_files.h"

namespace cw {
namespace {

// Tensors held in memory; Read() borrows them.
class MemoryReader final : public CheckpointReader {
 public:
  void Add(std::string name, DType dtype, Shape shape, std::string bytes) {
    tensors_.push_back({std::move(name), dtype, std::move(shape), bytes.size()});
    data_.push_back(std::move(bytes));
  }
  FileFormat format() const override { return FileFormat::kSafetensors; }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  Result<TensorData> Read(size_t i) const override { return TensorData::Borrow(AsBytes(data_[i])); }
  const std::string& FileOf(size_t) const override { return file_; }
  const std::vector<SkippedValue>& skipped() const override { return skipped_; }
  const std::map<std::string, std::string>& metadata() const override { return metadata_; }

 private:
  std::vector<TensorInfo> tensors_;
  std::vector<std::string> data_;
  std::string file_ = "memory";
  std::vector<SkippedValue> skipped_;
  std::map<std::string, std::string> metadata_;
};

// Collects what is written; can be told to fail.
class MemoryWriter final : public CheckpointWriter {
 public:
  explicit MemoryWriter(const std::vector<TensorInfo>& tensors) {
    for (const TensorInfo& t : tensors)
      out_[t.name].resize(t.byte_size);
    for (const TensorInfo& t : tensors)
      names_.push_back(t.name);
  }
  Status Write(size_t index, uint64_t offset, ByteSpan bytes) override {
    if (fail_)
      return Error(ErrorCode::kIo, "disk full");
    std::lock_guard lock(mutex_);
    std::memcpy(out_[names_[index]].data() + offset, bytes.data(), bytes.size());
    return OkStatus();
  }
  Status Commit() override { return OkStatus(); }
  std::map<std::string, std::string> out_;
  bool fail_ = false;

 private:
  std::vector<std::string> names_;
  std::mutex mutex_;
};

// One tensor "t" of 8 bytes whose halves lie in two files (bytes 2-5 of each), as a distributed
// checkpoint's blocks do; Verify() counts its calls and can fail.
class SplitReader final : public CheckpointReader {
 public:
  explicit SplitReader(std::vector<std::string> files) : files_(std::move(files)) {
    tensors_.push_back({"t", DType::kU8, {8}, 8});
  }
  FileFormat format() const override { return FileFormat::kMindSpore; }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  Result<TensorData> Read(size_t) const override {
    return Error(ErrorCode::kInternal, "read through the extents");
  }
  const std::string& FileOf(size_t) const override { return files_[0]; }
  const std::vector<SkippedValue>& skipped() const override { return skipped_; }
  const std::map<std::string, std::string>& metadata() const override { return metadata_; }
  std::vector<FileExtent> Extents(size_t) const override {
    return {{2, 4, &files_[0]}, {0, 4, &files_[1]}};
  }
  Status Verify(size_t) const override {
    ++verified_;
    return fail_verify_ ? Status(Error(ErrorCode::kCorrupt, "copies differ")) : OkStatus();
  }
  mutable int verified_ = 0;
  bool fail_verify_ = false;

 private:
  std::vector<std::string> files_;
  std::vector<TensorInfo> tensors_;
  std::vector<SkippedValue> skipped_;
  std::map<std::string, std::string> metadata_;
};

// Keeps only `needed_` bytes (every byte when unset); counts the bytes written.
class NeedingWriter final : public CheckpointWriter {
 public:
  explicit NeedingWriter(const std::vector<TensorInfo>& tensors) {
    for (const TensorInfo& t : tensors) {
      out_[t.name].resize(t.byte_size);
      names_.push_back(t.name);
    }
  }
  Status Write(size_t index, uint64_t offset, ByteSpan bytes) override {
    std::lock_guard lock(mutex_);
    std::memcpy(out_[names_[index]].data() + offset, bytes.data(), bytes.size());
    written_ += bytes.size();
    return OkStatus();
  }
  std::optional<std::vector<ByteRange>> NeededRanges(size_t) const override { return needed_; }
  Status Commit() override { return OkStatus(); }
  std::map<std::string, std::string> out_;
  std::optional<std::vector<ByteRange>> needed_;
  uint64_t written_ = 0;

 private:
  std::vector<std::string> names_;
  std::mutex mutex_;
};

constexpr const char* kRules = R"(name: t
placeholders: {layer: {type: int}}
rules:
  - hf: w.{layer}
    ms: m.{layer}.t
    ops: [{transpose: [0, 1]}]
  - hf: head
    ms: head
    tied: {to: w.0}
)";

std::string Iota(size_t n, int start) {
  std::string s(n * 4, '\0');
  for (size_t i = 0; i < n; ++i) {
    const float v = static_cast<float>(start) + static_cast<float>(i);
    std::memcpy(&s[i * 4], &v, 4);
  }
  return s;
}

struct Fixture {
  MemoryReader reader;
  Plan plan;
  Fixture() {
    for (int l = 0; l < 6; ++l)
      reader.Add("w." + std::to_string(l), DType::kF32, {3, 5}, Iota(15, l * 100));
    auto rules = LoadRuleText(kRules, "t.yaml");
    REQUIRE(rules.ok());
    PlanOptions options;
    options.cast = DType::kBF16;
    auto made = MakePlan(*rules, reader.tensors(), options);
    REQUIRE(made.ok());
    plan = std::move(*made);
  }
};

TEST_SUITE("exec.executor") {
  TEST_CASE("one thread and four threads with a tight byte budget write the same bytes") {
    Fixture f;
    MemoryWriter one(f.plan.Outputs()), four(f.plan.Outputs());
    ExecuteOptions options;
    REQUIRE(Execute(f.plan, f.reader, one, options).ok());
    options.threads = 4;
    options.max_bytes_in_flight = 64;  // below one step's working bytes: steps run one at a time
    ExecuteProgress progress;
    options.progress = &progress;
    REQUIRE(Execute(f.plan, f.reader, four, options).ok());
    CHECK(one.out_ == four.out_);
    CHECK(progress.tensors_done.load() == f.plan.Outputs().size());
    uint64_t total = 0;
    for (const TensorInfo& t : f.plan.Outputs())
      total += t.byte_size;
    CHECK(progress.bytes_done.load() == total);
  }

  TEST_CASE("outputs are transposed then cast to bfloat16 by truncating exact values") {
    Fixture f;
    MemoryWriter w(f.plan.Outputs());
    REQUIRE(Execute(f.plan, f.reader, w, {}).ok());
    const std::string& t = w.out_.at("m.2.t");
    REQUIRE(t.size() == 15 * 2);
    // m.2.t[i][j] = w.2[j][i] = 200 + 5j + i; element [1][2] = 200 + 10 + 1 = 211.
    uint16_t bits;
    std::memcpy(&bits, &t[(1 * 3 + 2) * 2], 2);
    float value;
    const uint32_t widened = static_cast<uint32_t>(bits) << 16;
    std::memcpy(&value, &widened, 4);
    CHECK(value == 211.0f);
  }

  TEST_CASE("a padded and cast block step writes its rows then zeros, bit for bit") {
    MemoryReader reader;
    reader.Add("emb", DType::kF32, {3, 2}, Iota(6, 1));
    auto rules = LoadRuleText(R"(name: t
rules:
  - hf: emb
    ms: emb
    ops: [{pad: {axis: 0, from: 3, to: 5}}]
)",
                              "t.yaml");
    REQUIRE(rules.ok());
    for (const bool cast : {false, true}) {
      CAPTURE(cast);
      PlanOptions options;
      if (cast)
        options.cast = DType::kF16;
      auto plan = MakePlan(*rules, reader.tensors(), options);
      REQUIRE(plan.ok());
      MemoryWriter w(plan->Outputs());
      REQUIRE(Execute(*plan, reader, w, {}).ok());
      // Rows 1..6 as written by hand in the output dtype (1.0 = 0x3C00 ... 6.0 = 0x4600 in half),
      // then four zeros.
      std::string expected;
      if (cast) {
        for (const uint16_t h : {0x3C00, 0x4000, 0x4200, 0x4400, 0x4500, 0x4600, 0, 0, 0, 0})
          expected.append(reinterpret_cast<const char*>(&h), 2);
      } else {
        expected = Iota(6, 1) + std::string(16, '\0');
      }
      CHECK(w.out_.at("emb") == expected);
    }
  }

  TEST_CASE("a writer error stops execution and names the rule of the failing step") {
    Fixture f;
    MemoryWriter w(f.plan.Outputs());
    w.fail_ = true;
    ExecuteOptions options;
    options.threads = 2;
    const Status s = Execute(f.plan, f.reader, w, options);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().code() == ErrorCode::kIo);
    CHECK(s.error().ToString().find("t.yaml:") != std::string::npos);
  }

  TEST_CASE("a cancel flag stops execution with a cancelled error") {
    Fixture f;
    MemoryWriter w(f.plan.Outputs());
    std::atomic<bool> cancel{true};
    ExecuteOptions options;
    options.cancel = &cancel;
    const Status s = Execute(f.plan, f.reader, w, options);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().code() == ErrorCode::kCancelled);
  }

  TEST_CASE("a tensor whose extents lie in several files is copied from each after Verify") {
    test::TempDir dir;
    test::WriteFile(dir / "a", "xxABCD");
    test::WriteFile(dir / "b", "EFGHyy");
    SplitReader reader({(dir / "a").string(), (dir / "b").string()});
    const Plan plan = CopyPlan(reader.tensors());
    NeedingWriter w(plan.Outputs());
    REQUIRE(Execute(plan, reader, w, {}).ok());
    CHECK(w.out_.at("t") == "ABCDEFGH");
    CHECK(reader.verified_ == 1);
    reader.fail_verify_ = true;
    NeedingWriter again(plan.Outputs());
    const Status s = Execute(plan, reader, again, {});
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message() == "copies differ");
    CHECK(s.error().ToString().find("writing \"t\"") != std::string::npos);
    CHECK(again.written_ == 0);
  }

  TEST_CASE("only the needed bytes are read and written and an unneeded step is skipped") {
    test::TempDir dir;
    test::WriteFile(dir / "a", "xxABCD");
    test::WriteFile(dir / "b", "EFGHyy");
    SplitReader reader({(dir / "a").string(), (dir / "b").string()});
    const Plan plan = CopyPlan(reader.tensors());
    NeedingWriter w(plan.Outputs());
    w.needed_ = std::vector<ByteRange>{{1, 2}, {5, 2}};
    REQUIRE(Execute(plan, reader, w, {}).ok());
    CHECK(w.out_.at("t") == std::string("\0BC\0\0FG\0", 8));
    CHECK(w.written_ == 4);
    w.needed_ = std::vector<ByteRange>{};
    ExecuteProgress progress;
    ExecuteOptions options;
    options.progress = &progress;
    NeedingWriter none(plan.Outputs());
    none.needed_ = std::vector<ByteRange>{};
    REQUIRE(Execute(plan, reader, none, options).ok());
    CHECK(none.written_ == 0);
    CHECK(reader.verified_ == 1);  // from the first run only
    CHECK(progress.tensors_done.load() == 1);
  }

  TEST_CASE("a plan made for another inventory is refused") {
    Fixture f;
    MemoryReader other;
    other.Add("w.0", DType::kF32, {3, 5}, Iota(15, 0));
    MemoryWriter w(f.plan.Outputs());
    const Status s = Execute(f.plan, other, w, {});
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().code() == ErrorCode::kInternal);
  }
}

}  // namespace
}  // namespace cw
