#include "engine/formats/pytorch/pytorch_writer.h"

#include <algorithm>
#include <cstdio>
#include <tuple>
#include <utility>

#include <doctest/doctest.h>

#include "engine/formats/common/write_tracker.h"
#include "engine/formats/pytorch/pickle_writer.h"
#include "engine/formats/pytorch/zip_writer.h"
#include "tests/support/test_files.h"

namespace cw::pytorch {
namespace {

// The oracle is real torch: Debian's python3 with torch 1.13 (`python3` on PATH has no torch).
constexpr const char* kPython = "/usr/bin/python3 ";

struct Sample {
  TensorInfo info;
  std::string bytes;
  uint32_t crc = 0;  // of the bytes: what the torch check compares
};

Sample MakeSample(std::string name, DType dtype, Shape shape) {
  Sample s;
  s.info = {std::move(name), dtype, std::move(shape), 0};
  s.info.byte_size = ByteSize(dtype, s.info.shape).value();
  s.bytes.resize(s.info.byte_size);
  uint32_t x = static_cast<uint32_t>(std::hash<std::string>{}(s.info.name));
  for (char& c : s.bytes) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(dtype == DType::kBool ? (x >> 24) & 1 : x >> 24);
  }
  s.crc = Crc32(AsBytes(s.bytes));
  return s;
}

std::vector<TensorInfo> Infos(const std::vector<Sample>& samples) {
  std::vector<TensorInfo> infos(samples.size());
  std::transform(samples.begin(), samples.end(), infos.begin(), [](auto& s) { return s.info; });
  return infos;
}

Result<std::unique_ptr<CheckpointWriter>> Open(const std::filesystem::path& path,
                                               std::vector<TensorInfo> infos,
                                               const WriterOptions& options = {}) {
  CW_ASSIGN_OR_RETURN(OutputFile out, OutputFile::Create(path, false));
  return CreateWriter(std::move(out), std::move(infos), options);
}

// Writes each tensor as two pieces, second half first, last tensor first.
Status WriteTorch(const std::filesystem::path& path, const std::vector<Sample>& samples,
                  const WriterOptions& options = {}) {
  CW_ASSIGN_OR_RETURN(auto writer, Open(path, Infos(samples), options));
  for (size_t i = samples.size(); i-- > 0;) {
    const ByteSpan bytes = AsBytes(samples[i].bytes);
    const size_t half = bytes.size() / 2;
    CW_RETURN_IF_ERROR(writer->Write(i, half, bytes.subspan(half)));
    if (half > 0)
      CW_RETURN_IF_ERROR(writer->Write(i, 0, bytes.first(half)));
  }
  return writer->Commit();
}

// Loads the file with torch.load, with and without weights_only, and compares every tensor with
// the expectation file (UTF-8; first line: the root key, if any; then tab-separated lines of name,
// dtype, shape as "[2, 3]" and the CRC-32 of the raw bytes). Also checks the zip CRCs and
// that data.pkl uses only torch 1.13's weights_only opcodes.
constexpr const char* kTorchScript = R"(
import sys, json, zipfile, zlib, pickletools, torch
lines = open(sys.argv[2], encoding='utf-8').read().split('\n')[:-1]
root = lines[0] or None
expected = []
for name, dtype, shape, crc in (line.split('\t') for line in lines[1:]):
    expected.append((name, getattr(torch, dtype), tuple(json.loads(shape)), int(crc)))
ALLOWED = set('''APPEND APPENDS BINGET BININT BININT1 BININT2 BINPERSID BINPUT BINUNICODE BUILD
  EMPTY_DICT EMPTY_LIST EMPTY_SET EMPTY_TUPLE GLOBAL LONG1 LONG_BINGET LONG_BINPUT MARK NEWFALSE
  NEWOBJ NEWTRUE NONE PROTO REDUCE SETITEM SETITEMS SHORT_BINSTRING STOP TUPLE TUPLE1 TUPLE2
  TUPLE3'''.split())
problems = []
with zipfile.ZipFile(sys.argv[1]) as z:
    if z.testzip() is not None:
        problems.append('bad CRC')
    pickle = z.read(z.namelist()[0])
    ops = {op.name for op, _, _ in pickletools.genops(pickle)}
    problems += ['opcode ' + name for name in sorted(ops - ALLOWED)]
for weights_only in (True, False):
    sd = torch.load(sys.argv[1], weights_only=weights_only)
    if root is not None:
        if list(sd) != [root]:
            problems.append('root keys %r' % list(sd)[:5])
            continue
        sd = sd[root]
    if type(sd) is not dict or list(sd) != [e[0] for e in expected]:
        problems.append('keys differ (weights_only=%s)' % weights_only)
        continue
    for name, dtype, shape, crc in expected:
        t = sd[name]
        got = (t.dtype, tuple(t.shape), t.requires_grad, t.is_contiguous(),
               zlib.crc32(t.reshape(-1).view(torch.uint8).numpy()))
        if got != (dtype, shape, False, True, crc):
            problems.append('%s (weights_only=%s): %r' % (name, weights_only, got))
    del sd
print('\n'.join(problems[:20]) if problems else 'ok %d' % len(expected))
)";

// What kTorchScript prints for a file holding `samples` as they were written.
std::string TorchLoad(const test::TempDir& dir, const std::filesystem::path& file,
                      const std::vector<Sample>& samples, const std::string& root_key = "") {
  std::string spec = root_key + "\n";
  for (const Sample& s : samples) {
    spec += s.info.name + "\t" + std::string(Info(s.info.dtype).torch) + "\t" +
            ShapeToString(s.info.shape) + "\t" + std::to_string(s.crc) + "\n";
  }
  test::WriteFile(dir / "expected.txt", spec);
  test::WriteFile(dir / "load.py", kTorchScript);
  const test::Ran ran = test::RunCommand(kPython + (dir / "load.py").string() + " " +
                                         file.string() + " " + (dir / "expected.txt").string());
  CHECK(ran.exit_code == 0);
  return ran.output;
}

// Python's zipfile lists each entry with its method, payload offset modulo 64 (payload = header
// offset + 30 + name and extra lengths from the local header) and the CRC-32 of its content.
constexpr const char* kRecordsScript = R"(
import sys, zipfile, struct, zlib
raw = open(sys.argv[1], 'rb').read()
with zipfile.ZipFile(sys.argv[1]) as z:
    print('testzip', z.testzip())
    for i in z.infolist():
        name_len, extra_len = struct.unpack_from('<HH', raw, i.header_offset + 26)
        payload = i.header_offset + 30 + name_len + extra_len
        shown = '' if i.filename.endswith('.pkl') else zlib.crc32(z.read(i))
        print(i.filename, i.compress_type, payload % 64, shown)
)";

// A piece of the payload of tensor `tensor` in a hand-made archive.
using Part = std::tuple<size_t, uint64_t, std::string>;  // tensor, offset, bytes

// Lays out the records of a torch archive for `infos` (folder "z") with `thresholds` and writes
// the tensor parts given, which may leave holes: hence the tensors' CRC-32s are given too.
ZipLayout WriteByHand(const std::filesystem::path& path, const std::vector<TensorInfo>& infos,
                      Zip64Thresholds thresholds, const std::vector<Part>& parts,
                      const std::vector<uint32_t>& tensor_crcs) {
  auto pickle = StateDictPickle(infos, "");
  REQUIRE(pickle.ok());
  std::vector<ZipEntrySpec> entries = {{"z/data.pkl", pickle->size()}, {"z/byteorder", 6}};
  for (size_t i = 0; i < infos.size(); ++i)
    entries.push_back({"z/data/" + std::to_string(i), infos[i].byte_size});
  entries.push_back({"z/version", 2});
  auto layout = ZipLayout::Compute(entries, thresholds);
  REQUIRE(layout.ok());
  ZipLayout copy = *layout;
  auto out = OutputFile::Create(path, false);
  REQUIRE(out.ok());
  auto zip = ZipWriter::Create(std::move(out).value(), std::move(layout).value());
  REQUIRE(zip.ok());
  REQUIRE(zip->Write(0, 0, AsBytes(*pickle)).ok());
  REQUIRE(zip->Write(1, 0, AsBytes("little")).ok());
  REQUIRE(zip->Write(infos.size() + 2, 0, AsBytes("3\n")).ok());
  for (const auto& [tensor, offset, bytes] : parts)
    REQUIRE(zip->Write(tensor + 2, offset, AsBytes(bytes)).ok());
  std::vector<uint32_t> crcs = {Crc32(AsBytes(*pickle)), Crc32(AsBytes("little"))};
  crcs.insert(crcs.end(), tensor_crcs.begin(), tensor_crcs.end());
  crcs.push_back(Crc32(AsBytes("3\n")));
  REQUIRE(zip->Commit(crcs).ok());
  return copy;
}

// CRC-32 of `n` zero bytes, without touching n bytes.
uint32_t ZerosCrc(uint64_t n) {
  const std::string block(1 << 20, '\0');
  const uint32_t block_crc = Crc32(AsBytes(block));
  uint32_t crc = 0;
  for (; n >= block.size(); n -= block.size())
    crc = Crc32Combine(crc, block_crc, block.size());
  return Crc32Combine(crc, Crc32(AsBytes(block).first(n)), n);
}

TEST_SUITE("formats.pytorch.writer") {
  TEST_CASE("records are data.pkl, byteorder, data/0..N-1 in numeric order and version, aligned") {
    test::TempDir dir;
    std::vector<Sample> samples;
    std::string expected =
        "testzip None\npytorch_model/data.pkl 0 0 \npytorch_model/byteorder 0 0 " +
        std::to_string(Crc32(AsBytes("little"))) + "\n";
    for (size_t i = 0; i < 11; ++i) {
      samples.push_back(MakeSample("t" + std::to_string(i), DType::kI16, {3}));
      expected += "pytorch_model/data/" + std::to_string(i) + " 0 0 " +
                  std::to_string(samples[i].crc) + "\n";
    }
    expected += "pytorch_model/version 0 0 " + std::to_string(Crc32(AsBytes("3\n"))) + "\n";
    REQUIRE(WriteTorch(dir / "pytorch_model.bin", samples).ok());
    test::WriteFile(dir / "records.py", kRecordsScript);
    const test::Ran ran = test::RunCommand(kPython + (dir / "records.py").string() + " " +
                                           (dir / "pytorch_model.bin").string());
    CHECK(ran.exit_code == 0);
    CHECK(ran.output == expected);
  }

  TEST_CASE("torch 1.13 loads every dtype with a legacy storage, with and without weights_only") {
    test::TempDir dir;
    const std::vector<Sample> samples = {
        MakeSample("f64", DType::kF64, {2, 3}),  MakeSample("f32", DType::kF32, {4, 5}),
        MakeSample("f16", DType::kF16, {7}),     MakeSample("bf16", DType::kBF16, {3, 2}),
        MakeSample("i64", DType::kI64, {2, 2}),  MakeSample("i32", DType::kI32, {5}),
        MakeSample("i16", DType::kI16, {1, 3}),  MakeSample("i8", DType::kI8, {9}),
        MakeSample("u8", DType::kU8, {2, 2, 2}), MakeSample("bool", DType::kBool, {6}),
    };
    REQUIRE(WriteTorch(dir / "sd.pt", samples).ok());
    CHECK(TorchLoad(dir, dir / "sd.pt", samples) == "ok 10\n");
  }

  TEST_CASE("torch loads 0-dim, zero-size, rank-5, large-dim and non-ASCII-named tensors") {
    test::TempDir dir;
    const std::vector<Sample> samples = {
        MakeSample("scalar", DType::kF32, {}),
        MakeSample("empty", DType::kF16, {0, 4}),
        MakeSample("empty.t", DType::kBF16, {4, 0}),
        MakeSample("rank5", DType::kI8, {2, 1, 3, 1, 2}),
        MakeSample("bin_int2", DType::kU8, {300}),
        MakeSample("bin_int", DType::kF32, {0, 70000}),
        MakeSample("long1", DType::kI64, {0, 5'000'000'000}),
        MakeSample("模型.层.0.权重", DType::kF32, {2}),
        MakeSample("with space 'quote\" and \\", DType::kBool, {1}),
    };
    REQUIRE(WriteTorch(dir / "edge.bin", samples).ok());
    CHECK(TorchLoad(dir, dir / "edge.bin", samples) == "ok 9\n");
  }

  TEST_CASE("torch loads a state dict nested under a root key") {
    test::TempDir dir;
    const std::vector<Sample> samples = {
        MakeSample("blocks.0.attn.qkv.weight", DType::kF32, {3, 2}),
        MakeSample("cls_token", DType::kF32, {1, 1, 2})};
    WriterOptions options;
    options.torch_root_key = "model";
    REQUIRE(WriteTorch(dir / "mae.pth", samples, options).ok());
    CHECK(TorchLoad(dir, dir / "mae.pth", samples, "model") == "ok 2\n");
  }

  TEST_CASE("torch loads 2001 tensors written in SETITEMS batches of 1000, 1000 and 1") {
    test::TempDir dir;
    std::vector<Sample> samples;
    for (int i = 0; i < 2001; ++i)
      samples.push_back(MakeSample("layers." + std::to_string(i) + ".bias", DType::kF16, {2}));
    REQUIRE(WriteTorch(dir / "many.bin", samples).ok());
    CHECK(TorchLoad(dir, dir / "many.bin", samples) == "ok 2001\n");
  }

  // Only the entry count threshold is lowered: miniz (torch's zip reader) checks the classic
  // header offset plus size against the file size, which an escaped 0xFFFFFFFF offset passes only
  // in a truly large archive. Real ZIP64 sizes and offsets: the opt-in 4.3 GB case below.
  TEST_CASE("torch loads an archive whose entry count is escaped into a ZIP64 end record") {
    test::TempDir dir;
    const std::vector<Sample> samples = {MakeSample("big", DType::kF32, {40}),
                                         MakeSample("small", DType::kI8, {5}),
                                         MakeSample("big.too", DType::kI64, {30})};
    std::vector<Part> parts;
    std::vector<uint32_t> crcs;
    for (size_t i = 0; i < samples.size(); ++i) {
      parts.push_back({i, 0, samples[i].bytes});
      crcs.push_back(samples[i].crc);
    }
    const ZipLayout layout =
        WriteByHand(dir / "z.bin", Infos(samples), {.field16 = 3}, parts, crcs);
    CHECK(layout.has_zip64_end());
    CHECK(TorchLoad(dir, dir / "z.bin", samples) == "ok 3\n");
  }

  // Opt-in (--no-skip): a sparse 4.3 GB file that python reads once and torch loads twice.
  TEST_CASE("torch loads a 4.3 GB tensor and one past 4 GiB through real ZIP64 fields" *
            doctest::skip()) {
    test::TempDir dir;
    constexpr uint64_t kBig = 4'300'000'000;
    const std::string head = "\x01\x02\x03\x04";
    const std::string tail = "\x05\x06\x07\x08";
    const Sample after = MakeSample("after", DType::kI32, {3});
    // The middle of the big payload stays a hole of zeros in the sparse file.
    Sample big{{"big", DType::kU8, {kBig}, kBig}, "", 0};
    big.crc = Crc32Combine(Crc32Combine(Crc32(AsBytes(head)), ZerosCrc(kBig - 8), kBig - 8),
                           Crc32(AsBytes(tail)), 4);
    const ZipLayout layout = WriteByHand(
        dir / "big.bin", {big.info, after.info}, {},
        {{0, 0, head}, {0, kBig - tail.size(), tail}, {1, 0, after.bytes}}, {big.crc, after.crc});
    CHECK(layout.place(2).zip64_sizes);
    CHECK(layout.place(3).zip64_offset);
    CHECK(TorchLoad(dir, dir / "big.bin", {big, after}) == "ok 2\n");
    const test::Ran ran = test::RunCommand("unzip -tq " + (dir / "big.bin").string());
    CAPTURE(ran.output);
    CHECK(ran.exit_code == 0);
  }

  TEST_CASE("pieces written in any order give byte-identical files") {
    test::TempDir one;
    test::TempDir two;
    const std::vector<Sample> samples = {MakeSample("a", DType::kF32, {8, 3}),
                                         MakeSample("b", DType::kU8, {0}),
                                         MakeSample("c", DType::kBF16, {5})};
    REQUIRE(WriteTorch(one / "m.bin", samples).ok());
    auto writer = Open(two / "m.bin", Infos(samples));
    REQUIRE(writer.ok());
    for (size_t i = 0; i < samples.size(); ++i) {
      const ByteSpan bytes = AsBytes(samples[i].bytes);
      for (size_t k = 0; k < bytes.size(); k += 5)
        REQUIRE(
            (*writer)->Write(i, k, bytes.subspan(k, std::min<size_t>(5, bytes.size() - k))).ok());
    }
    REQUIRE((*writer)->Commit().ok());
    CHECK(test::ReadFile(one / "m.bin") == test::ReadFile(two / "m.bin"));
  }

  TEST_CASE("the folder is the file's stem, or archive when the stem is not plain ASCII") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"pytorch_model.bin", "pytorch_model/data.pkl"},
        {"my.model-v1.pt", "my.model-v1/data.pkl"},
        {"模型.bin", "archive/data.pkl"},
        {"..bin", "archive/data.pkl"},
        {"back\\slash.bin", "archive/data.pkl"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.first);
      test::TempDir dir;
      REQUIRE(WriteTorch(dir / c.first, {MakeSample("w", DType::kF32, {1})}).ok());
      const std::string bytes = test::ReadFile(dir / c.first);
      const uint16_t name_bytes = LoadLE<uint16_t>(AsBytes(bytes).data() + 26);  // local header
      CHECK(bytes.substr(30, name_bytes) == c.second);
    }
  }

  TEST_CASE("a tensor left incomplete fails the commit and leaves nothing under the output name") {
    test::TempDir dir;
    const Sample s = MakeSample("w", DType::kF32, {4});
    auto writer = Open(dir / "a.bin", {s.info});
    REQUIRE(writer.ok());
    REQUIRE((*writer)->Write(0, 0, AsBytes(s.bytes).first(12)).ok());
    const Status status = (*writer)->Commit();
    REQUIRE_FALSE(status.ok());
    CHECK(status.error().code() == ErrorCode::kInternal);
    CHECK(status.error().where().file == (dir / "a.bin").string());
    writer->reset();
    CHECK(test::ListFolder(dir.path()).empty());
  }

  TEST_CASE("a dtype torch 1.13 cannot load is refused at creation, located, leaving nothing") {
    test::TempDir dir;
    {
      auto writer = Open(dir / "a.bin", {MakeSample("ok", DType::kF32, {1}).info,
                                         MakeSample("u16", DType::kU16, {2}).info});
      REQUIRE_FALSE(writer.ok());
      CHECK(writer.error().code() == ErrorCode::kUnsupported);
      CHECK(writer.error().where().file == (dir / "a.bin").string());
    }
    CHECK(test::ListFolder(dir.path()).empty());
  }

  TEST_CASE("writes outside a tensor and sizes that disagree with the shape are internal errors") {
    test::TempDir dir;
    const Sample s = MakeSample("w", DType::kF32, {2});
    auto writer = Open(dir / "a.bin", {s.info});
    REQUIRE(writer.ok());
    CHECK((*writer)->Write(0, 4, AsBytes(s.bytes)).error().code() == ErrorCode::kInternal);
    CHECK((*writer)->Write(1, 0, AsBytes(s.bytes)).error().code() == ErrorCode::kInternal);
    TensorInfo wrong = s.info;
    wrong.byte_size = 9;
    auto refused = Open(dir / "b.bin", {wrong});
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code() == ErrorCode::kInternal);
  }
}

}  // namespace
}  // namespace cw::pytorch
