#include "engine/formats/mindspore/mindspore_reader.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "checkpoint.pb.h"
#include "engine/base/mapped_file.h"
#include "engine/base/text.h"
#include "engine/formats/common/write_tracker.h"
#include "engine/formats/mindspore/ckpt_wire.h"
#include "tests/support/ckpt_builder.h"
#include "tests/support/test_files.h"

namespace cw::mindspore {
namespace {

namespace ck = test::ckpt;
using namespace std::string_literals;
using ReaderPtr = std::unique_ptr<CheckpointReader>;

const char* const kRealFiles[] = {
    "mindcv_network_2.ckpt",
    "mindformers_golden_router.ckpt",
    "mindscience_example_net_10000.ckpt",
    "mindscience_fno1d.ckpt",
    "mindscience_multihead.ckpt",
    "mindscience_spectralconv1d.ckpt",
};

std::filesystem::path RealFile(const std::string& name) {
  return test::ExternalPath("mindspore/" + name);
}

Result<ReaderPtr> Open(const std::string& bytes) {
  return OpenReaderOnBytes(AsBytes(bytes), "t.ckpt");
}

Result<ReaderPtr> OpenFile(const std::filesystem::path& path) {
  CW_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  return OpenReader(std::move(file));
}

std::string ReadAll(const CheckpointReader& reader, size_t index) {
  auto data = reader.Read(index);
  REQUIRE(data.ok());
  return std::string(AsChars(data->bytes()));
}

float FloatAt(const CheckpointReader& reader, size_t index, size_t element) {
  auto data = reader.Read(index);
  REQUIRE(data.ok());
  return LoadLE<float>(data->bytes().data() + 4 * element);
}

// What an editor or a text-mode copy does: every byte that is not part of valid UTF-8 becomes
// U+FFFD (EF BF BD), so lengths no longer match the bytes they count.
std::string MangleAsText(const std::string& bytes) {
  const std::string_view view = bytes;
  std::string out;
  size_t i = 0;
  while (i < bytes.size()) {
    size_t n = 1;
    while (n <= 4 && !IsValidUtf8(view.substr(i, n)))
      ++n;
    if (n > 4 || i + n > bytes.size()) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out += bytes.substr(i, n);
      i += n;
    }
  }
  return out;
}

// Opens the first `size` bytes of `bytes` in an allocation of exactly that size (so ASan sees any
// read past the end), reads every tensor, and checks the outcome is ok or a located error.
void CheckOkOrLocated(const std::string& bytes, size_t size) {
  CAPTURE(size);
  auto copy = std::make_unique<std::byte[]>(size);
  std::copy_n(AsBytes(bytes).data(), size, copy.get());
  auto reader = OpenReaderOnBytes(ByteSpan(copy.get(), size), "t.ckpt");
  if (!reader.ok()) {
    CHECK(reader.error().where().file == "t.ckpt");
    REQUIRE(reader.error().where().offset.has_value());
    CHECK(*reader.error().where().offset <= size);
    return;
  }
  for (size_t i = 0; i < (*reader)->tensors().size(); ++i) {
    auto data = (*reader)->Read(i);
    REQUIRE(data.ok());
    CHECK(data->size() == (*reader)->tensors()[i].byte_size);
  }
}

// Check that the joined content of each tag in a libprotobuf parse equals what we read.
void CrossCheckWithProtobuf(const std::string& bytes, const CheckpointReader& reader) {
  Checkpoint parsed;
  REQUIRE(parsed.ParseFromString(bytes));
  size_t index = 0;
  for (int v = 0; v < parsed.value_size(); ++index) {
    REQUIRE(index < reader.tensors().size());
    const TensorInfo& info = reader.tensors()[index];
    const TensorProto& first = parsed.value(v).tensor();
    CHECK(info.name == parsed.value(v).tag());
    CHECK(Info(info.dtype).mindspore == first.tensor_type());
    Shape dims(first.dims().begin(), first.dims().end());
    CHECK(info.shape == (dims == Shape{0} ? Shape{} : dims));
    std::string content;
    for (; v < parsed.value_size() && parsed.value(v).tag() == info.name; ++v)
      content += parsed.value(v).tensor().tensor_content();
    CHECK(ReadAll(reader, index) == content);
  }
  CHECK(index == reader.tensors().size());
}

TEST_SUITE("formats.mindspore.reader") {
  TEST_CASE("every real MindSpore file lists what protobuf parses with the same bytes") {
    for (const char* name : kRealFiles) {
      CAPTURE(name);
      auto reader = OpenFile(RealFile(name));
      REQUIRE(reader.ok());
      CHECK((*reader)->format() == FileFormat::kMindSpore);
      CHECK((*reader)->skipped().empty());
      CHECK((*reader)->FileOf(0) == RealFile(name).string());
      CrossCheckWithProtobuf(test::ReadFile(RealFile(name)), **reader);
    }
  }

  TEST_CASE("the MindFormers router holds gating.weight as Float32 4x16") {
    auto reader = OpenFile(RealFile("mindformers_golden_router.ckpt"));
    REQUIRE(reader.ok());
    REQUIRE((*reader)->tensors().size() == 1);
    CHECK((*reader)->tensors()[0] == TensorInfo{"gating.weight", DType::kF32, {4, 16}, 256});
    CHECK(FloatAt(**reader, 0, 0) == 0.004556679166853428f);
    CHECK(FloatAt(**reader, 0, 63) == -0.01320293266326189f);
  }

  TEST_CASE("old dims [0] scalars read as 0-d tensors and a [1] counter as 1-D") {
    auto reader = OpenFile(RealFile("mindscience_example_net_10000.ckpt"));
    REQUIRE(reader.ok());
    const auto& tensors = (*reader)->tensors();
    REQUIRE(tensors.size() == 22);
    CHECK(tensors[6] == TensorInfo{"optimizer.global_step", DType::kI32, {1}, 4});
    CHECK(tensors[7] == TensorInfo{"optimizer.learning_rate", DType::kF32, {}, 4});
    CHECK(tensors[8].shape.empty());
    CHECK(tensors[9].shape.empty());
    CHECK(FloatAt(**reader, 7, 0) == 0.001f);
    CHECK(ReadAll(**reader, 6) == ck::I32({0}));
  }

  TEST_CASE("a tensor in one record is borrowed from the file and not copied") {
    const std::string bytes = ck::TensorRecord("w", {.dims = {2}, .content = ck::F32({1, 2})});
    auto reader = Open(bytes);
    REQUIRE(reader.ok());
    auto data = (*reader)->Read(0);
    REQUIRE(data.ok());
    CHECK_FALSE(data->owned());
    CHECK(data->bytes().data() == AsBytes(bytes).data() + bytes.size() - 8);
  }

  TEST_CASE("adjacent records of one tag are joined in order into one owned tensor") {
    const std::string bytes = ck::TensorRecord("a", {.dims = {3}, .content = ck::F32({1, 2})}) +
                              ck::TensorRecord("a", {.dims = {3}, .content = ck::F32({3})}) +
                              ck::TensorRecord("b", {.dims = {}, .content = ck::F32({4})});
    auto reader = Open(bytes);
    REQUIRE(reader.ok());
    REQUIRE((*reader)->tensors().size() == 2);
    CHECK((*reader)->tensors()[0] == TensorInfo{"a", DType::kF32, {3}, 12});
    auto data = (*reader)->Read(0);
    REQUIRE(data.ok());
    CHECK(data->owned());
    CHECK(AsChars(data->bytes()) == ck::F32({1, 2, 3}));
    CHECK(ReadAll(**reader, 1) == ck::F32({4}));
  }

  TEST_CASE("a file's extents are its records' contents, in order; none over bytes in memory") {
    const std::string bytes = ck::TensorRecord("a", {.dims = {3}, .content = ck::F32({1, 2})}) +
                              ck::TensorRecord("a", {.dims = {3}, .content = ck::F32({3})}) +
                              ck::TensorRecord("b", {.dims = {}, .content = ck::F32({4})});
    test::TempDir dir;
    test::WriteFile(dir / "m.ckpt", bytes);
    auto reader = OpenFile(dir / "m.ckpt");
    REQUIRE(reader.ok());
    const std::vector<FileExtent> a = (*reader)->Extents(0);
    REQUIRE(a.size() == 2);
    CHECK(bytes.substr(a[0].offset, a[0].size) + bytes.substr(a[1].offset, a[1].size) ==
          ck::F32({1, 2, 3}));
    const std::vector<FileExtent> b = (*reader)->Extents(1);
    REQUIRE(b.size() == 1);
    CHECK(bytes.substr(b[0].offset, b[0].size) == ck::F32({4}));
    CHECK((*Open(bytes))->Extents(0).empty());
  }

  TEST_CASE("a piece whose dims or type differ from the first piece's is corrupt at its record") {
    const std::string first = ck::TensorRecord("a", {.dims = {2}, .content = ck::F32({1})});
    const std::string dims = ck::TensorRecord("a", {.dims = {3}, .content = ck::F32({2})});
    const std::string type =
        ck::TensorRecord("a", {.dims = {2}, .type = "Int32", .content = "abcd"});
    for (const std::string& second : {dims, type}) {
      const std::string bytes = first + second;
      auto reader = Open(bytes);
      REQUIRE_FALSE(reader.ok());
      CHECK(reader.error().code() == ErrorCode::kCorrupt);
      CHECK(reader.error().where().offset == first.size());
    }
  }

  TEST_CASE("a tag that comes back after another value is a duplicate located at its second run") {
    const std::string a = ck::TensorRecord("a", {.content = ck::F32({1})});
    const std::string b = ck::TensorRecord("b", {.content = ck::F32({2})});
    const std::string bytes = a + b + a;
    auto reader = Open(bytes);
    REQUIRE_FALSE(reader.ok());
    CHECK(reader.error().code() == ErrorCode::kCorrupt);
    CHECK(reader.error().where().offset == a.size() + b.size());
  }

  TEST_CASE("dims [0] with no content is corrupt: a length-0 1-D tensor cannot be stored") {
    const std::string ok = ck::TensorRecord("ok", {.content = ck::F32({1})});
    const std::string bytes = ok + ck::TensorRecord("w", {.dims = {0}, .content = ""});
    auto reader = Open(bytes);
    REQUIRE_FALSE(reader.ok());
    CHECK(reader.error().code() == ErrorCode::kCorrupt);
    CHECK(reader.error().where().offset == ok.size());
  }

  TEST_CASE("a zero-element tensor of rank 2 with no content is read as empty") {
    const std::string bytes = ck::TensorRecord("e", {.dims = {3, 0}, .content = ""});
    auto reader = Open(bytes);
    REQUIRE(reader.ok());
    CHECK((*reader)->tensors()[0] == TensorInfo{"e", DType::kF32, {3, 0}, 0});
    CHECK(ReadAll(**reader, 0).empty());
  }

  TEST_CASE("content that does not match dims and type is corrupt at the value's record") {
    const std::string ok = ck::TensorRecord("ok", {.content = ck::F32({1})});
    SUBCASE("one record") {
      const std::string bytes = ok + ck::TensorRecord("w", {.dims = {2}, .content = ck::F32({1})});
      auto reader = Open(bytes);
      REQUIRE_FALSE(reader.ok());
      CHECK(reader.error().code() == ErrorCode::kCorrupt);
      CHECK(reader.error().where().offset == ok.size());
    }
    SUBCASE("joined records") {
      const std::string piece = ck::TensorRecord("w", {.dims = {3}, .content = ck::F32({1, 2})});
      const std::string bytes = ok + piece + piece;
      auto reader = Open(bytes);
      REQUIRE_FALSE(reader.ok());
      CHECK(reader.error().code() == ErrorCode::kCorrupt);
      CHECK(reader.error().where().offset == ok.size());
    }
    SUBCASE("dims whose product overflows") {
      const std::string bytes =
          ok + ck::TensorRecord("w", {.dims = {1ll << 40, 1ll << 40}, .content = ""});
      auto reader = Open(bytes);
      REQUIRE_FALSE(reader.ok());
      CHECK(reader.error().code() == ErrorCode::kCorrupt);
      CHECK(reader.error().where().offset == ok.size());
    }
  }

  TEST_CASE("str values are listed in skipped() with their text minus trailing NULs") {
    const std::string bytes =
        ck::TensorRecord("w", {.content = ck::F32({1})}) +
        ck::TensorRecord("optimizer", {.dims = {0}, .type = "str", .content = ck::Utf32(U"adam")}) +
        ck::TensorRecord("note", {.dims = {0}, .type = "str", .content = ck::Utf32(U"é中\0\0"s)}) +
        ck::TensorRecord("empty", {.dims = {0}, .type = "str", .content = ck::Utf32(U"\0"s)});
    auto reader = Open(bytes);
    REQUIRE(reader.ok());
    CHECK((*reader)->tensors().size() == 1);
    const auto& skipped = (*reader)->skipped();
    REQUIRE(skipped.size() == 3);
    CHECK(skipped[0].name == "optimizer");
    CHECK(skipped[0].description == "str \"adam\"");
    CHECK(skipped[1].description == "str \"é中\"");
    CHECK(skipped[2].description == "str \"\"");
  }

  TEST_CASE("a str value that is not UTF-32 is corrupt at its record") {
    const std::string ok = ck::TensorRecord("ok", {.content = ck::F32({1})});
    for (const std::string& content :
         {std::string("abc"), ck::Utf32(U"a") + ck::I32({0xD800}), ck::I32({0x110000})}) {
      const std::string bytes = ok + ck::TensorRecord("s", {.type = "str", .content = content});
      auto reader = Open(bytes);
      REQUIRE_FALSE(reader.ok());
      CHECK(reader.error().code() == ErrorCode::kCorrupt);
      CHECK(reader.error().where().offset == ok.size());
    }
  }

  TEST_CASE("a random_op RNG state is skipped with a note") {
    const std::string bytes =
        ck::TensorRecord("w", {.content = ck::F32({1})}) +
        ck::TensorRecord("random_op", {.type = "random_op", .content = "xyz"});
    auto reader = Open(bytes);
    REQUIRE(reader.ok());
    REQUIRE((*reader)->skipped().size() == 1);
    CHECK((*reader)->skipped()[0].name == "random_op");
  }

  TEST_CASE("an unknown tensor_type is unsupported and names the type and the tag") {
    const std::string ok = ck::TensorRecord("ok", {.content = ck::F32({1})});
    for (const char* type : {"Int4", "Complex64", "float32"}) {
      CAPTURE(type);
      const std::string bytes = ok + ck::TensorRecord("q", {.type = type, .content = "ab"});
      auto reader = Open(bytes);
      REQUIRE_FALSE(reader.ok());
      CHECK(reader.error().code() == ErrorCode::kUnsupported);
      CHECK(reader.error().where().offset == ok.size());
      CHECK(reader.error().message().find(type) != std::string::npos);
      CHECK(reader.error().message().find("\"q\"") != std::string::npos);
    }
  }

  TEST_CASE("a file without tensors is an error and never an empty checkpoint") {
    SUBCASE("empty file") {
      auto reader = Open("");
      REQUIRE_FALSE(reader.ok());
      CHECK(reader.error().code() == ErrorCode::kCorrupt);
      CHECK(reader.error().where().offset == 0u);
    }
    SUBCASE("only string values") {
      auto reader = Open(ck::TensorRecord("s", {.type = "str", .content = ck::Utf32(U"x")}));
      REQUIRE_FALSE(reader.ok());
      CHECK(reader.error().code() == ErrorCode::kCorrupt);
    }
    SUBCASE("only a CRC trailer") {
      auto reader = Open(ck::CrcTrailer(0));
      REQUIRE_FALSE(reader.ok());
      CHECK(reader.error().code() == ErrorCode::kCorrupt);
    }
  }

  TEST_CASE("each encrypted magic is unsupported at byte 0 and names its cipher") {
    const std::pair<const char*, const char*> magics[] = {{"\xD8\x5E\x3A\x7F", "AES-GCM"},
                                                          {"\xD9\x5E\x3A\x7F", "AES-CBC"},
                                                          {"\xDA\x5E\x3A\x7F", "SM4-CBC"}};
    for (const auto& [magic, mode] : magics) {
      auto reader = Open(std::string(magic) + std::string(40, '\x11'));
      REQUIRE_FALSE(reader.ok());
      CHECK(reader.error().code() == ErrorCode::kUnsupported);
      CHECK(reader.error().where().offset == 0u);
      CHECK(reader.error().message().find(mode) != std::string::npos);
    }
  }

  TEST_CASE("a CRC trailer is verified and stripped") {
    const std::string payload = test::ReadFile(RealFile("mindscience_spectralconv1d.ckpt"));
    const uint32_t crc = Crc32(AsBytes(payload));
    SUBCASE("right") {
      const std::string bytes = payload + ck::CrcTrailer(crc);
      auto reader = Open(bytes);
      REQUIRE(reader.ok());
      CHECK((*reader)->tensors().size() == 2);
    }
    SUBCASE("wrong") {
      const std::string bytes = payload + ck::CrcTrailer(crc ^ 1);
      auto reader = Open(bytes);
      REQUIRE_FALSE(reader.ok());
      CHECK(reader.error().code() == ErrorCode::kCorrupt);
      CHECK(reader.error().where().offset == payload.size() + 7);
    }
    SUBCASE("over 32 bits") {
      for (const size_t high :
           {size_t{0}, size_t{5}}) {  // byte 0 would be lost by a 64-bit accumulator
        CAPTURE(high);
        std::string bytes = payload + ck::CrcTrailer(crc);
        bytes[payload.size() + 7 + high] = '\x01';
        auto reader = Open(bytes);
        REQUIRE_FALSE(reader.ok());
        CHECK(reader.error().code() == ErrorCode::kCorrupt);
        CHECK(reader.error().where().offset == payload.size() + 7);
      }
    }
  }

  TEST_CASE("a parallel-strategy-like message saved as .ckpt is not a MindSpore checkpoint") {
    // ParallelStrategyMap: current_stage (field 1, varint), then strategy items (field 2).
    const std::string bytes =
        ck::VarintField(1, 1) + ck::LenField(2, ck::LenField(1, "Default/network-MatMul-op0"));
    auto reader = Open(bytes);
    REQUIRE_FALSE(reader.ok());
    CHECK(reader.error().code() == ErrorCode::kCorrupt);
    CHECK(reader.error().where().offset == 0u);
    CHECK(reader.error().message().rfind("not a MindSpore checkpoint", 0) == 0);
  }

  TEST_CASE("a serialised MapTensorProto saved as .ckpt is not a MindSpore checkpoint") {
    MapTensorProto map;
    for (const char* type : {"int32", "float32"}) {
      TensorProto* t = map.add_tensor();
      t->add_dims(1);
      t->set_tensor_type(type);
      t->set_tensor_content("abcd");
    }
    const std::string bytes = map.SerializeAsString();
    REQUIRE(bytes[0] == '\x0a');  // it starts like a checkpoint record
    auto reader = Open(bytes);
    REQUIRE_FALSE(reader.ok());
    CHECK(reader.error().code() == ErrorCode::kCorrupt);
    CHECK(reader.error().where().offset == 2u);  // dims (a varint) where Value.tag should be
    CHECK(reader.error().message().rfind("not a MindSpore checkpoint", 0) == 0);
  }

  TEST_CASE("a torch zip and a safetensors file are not MindSpore checkpoints") {
    const std::string torch = test::ReadFile(test::ExternalPath("torch/dtypes_views.pt"));
    const std::string safetensors = std::string("\x0a\0\0\0\0\0\0\0", 8) + "{}        ";
    for (const std::string& bytes : {torch, safetensors}) {
      auto reader = Open(bytes);
      REQUIRE_FALSE(reader.ok());
      CHECK(reader.error().code() == ErrorCode::kCorrupt);
      CHECK(reader.error().message().rfind("not a MindSpore checkpoint", 0) == 0);
    }
  }

  TEST_CASE("a text-mode mangled copy of a real file is refused at a located byte") {
    const std::string bytes =
        MangleAsText(test::ReadFile(RealFile("mindformers_golden_router.ckpt")));
    auto reader = Open(bytes);
    REQUIRE_FALSE(reader.ok());
    CHECK(reader.error().code() == ErrorCode::kCorrupt);
    CHECK(reader.error().where().offset.has_value());
  }

  TEST_CASE("damage in a later record is located in the file and names nothing else") {
    const std::string first = ck::TensorRecord("a", {.content = ck::F32({1})});
    SUBCASE("length past the end") {
      const std::string bytes = first + "\x0a\x7f\x0a\x01";
      auto reader = Open(bytes);
      REQUIRE_FALSE(reader.ok());
      CHECK(reader.error().code() == ErrorCode::kCorrupt);
      CHECK(reader.error().where().offset == first.size() + 1);
    }
    SUBCASE("an 11-byte varint as a record length") {
      const std::string bytes = first + "\x0a" + std::string(10, '\x80') + "\x01";
      auto reader = Open(bytes);
      REQUIRE_FALSE(reader.ok());
      CHECK(reader.error().code() == ErrorCode::kCorrupt);
      CHECK(reader.error().where().offset == first.size() + 1);
    }
    SUBCASE("a group inside a Value") {
      const std::string bytes = first + ck::Record(ck::Key(5, 3) + ck::Key(5, 4));
      auto reader = Open(bytes);
      REQUIRE_FALSE(reader.ok());
      CHECK(reader.error().code() == ErrorCode::kCorrupt);
      CHECK(reader.error().where().offset == first.size() + 2);
      CHECK(reader.error().message().rfind("not a MindSpore", 0) != 0);
    }
    SUBCASE("a MapTensor") {
      const std::string bytes = first + ck::Record(ck::LenField(1, "m") + ck::LenField(3, ""));
      auto reader = Open(bytes);
      REQUIRE_FALSE(reader.ok());
      CHECK(reader.error().code() == ErrorCode::kUnsupported);
      CHECK(reader.error().where().offset == first.size());
    }
  }

  TEST_CASE("files serialised by libprotobuf read back for every MindSpore dtype") {
    Checkpoint checkpoint;
    std::vector<TensorInfo> expected;
    for (const DTypeInfo& row : AllDTypes()) {
      if (row.mindspore.empty())
        continue;
      Checkpoint::Value* value = checkpoint.add_value();
      value->set_tag("t." + std::string(row.safetensors));
      value->mutable_tensor()->add_dims(3);
      value->mutable_tensor()->set_tensor_type(std::string(row.mindspore));
      std::string content(size_t{3} * row.size_bytes, '\0');
      for (size_t i = 0; i < content.size(); ++i)
        content[i] = static_cast<char>(i * 7 + 1);
      value->mutable_tensor()->set_tensor_content(content);
      expected.push_back({value->tag(), row.dtype, {3}, content.size()});
    }
    const std::string bytes = checkpoint.SerializeAsString();
    auto reader = Open(bytes);
    REQUIRE(reader.ok());
    CHECK((*reader)->tensors() == expected);
    CrossCheckWithProtobuf(bytes, **reader);
  }

  TEST_CASE("truncating a real file at every length gives tensors or a located error") {
    const std::string bytes = test::ReadFile(RealFile("mindscience_example_net_10000.ckpt"));
    for (size_t size = 0; size <= bytes.size(); ++size)
      CheckOkOrLocated(bytes, size);
  }

  TEST_CASE("flipping any bit of a real file gives tensors or a located error") {
    const std::string original = test::ReadFile(RealFile("mindscience_spectralconv1d.ckpt"));
    for (size_t at = 0; at < original.size(); ++at) {
      for (int bit = 0; bit < 8; ++bit) {
        CAPTURE(at);
        CAPTURE(bit);
        std::string bytes = original;
        bytes[at] = static_cast<char>(bytes[at] ^ (1 << bit));
        CheckOkOrLocated(bytes, bytes.size());
      }
    }
  }

  TEST_CASE("flipping every byte of a larger real file gives tensors or a located error") {
    const std::string original = test::ReadFile(RealFile("mindscience_example_net_10000.ckpt"));
    for (size_t at = 0; at < original.size(); ++at) {
      std::string bytes = original;
      bytes[at] = static_cast<char>(~bytes[at]);
      CheckOkOrLocated(bytes, bytes.size());
    }
  }

  TEST_CASE("files and records over 2 GiB are listed and read without a whole-file parse") {
    // Sparse: only the headers take disk space. "big" is 5 records of 1 GiB, "single" one
    // record of 2.5 GiB (a length over INT32_MAX), "tail" a small tensor past 7 GiB.
    test::TempDir dir;
    const auto path = dir / "big.ckpt";
    const uint64_t gib = 1ull << 30;
    std::fstream out(path, std::ios::out | std::ios::binary);
    uint64_t offset = 0;
    auto put = [&](const std::string& header, uint64_t content_bytes) {
      out.seekp(static_cast<std::streamoff>(offset));
      out.write(header.data(), static_cast<std::streamsize>(header.size()));
      offset += header.size() + content_bytes;
    };
    for (int k = 0; k < 5; ++k)
      put(EncodeRecordHeader("big", {5 * gib}, "UInt8", gib), gib);
    put(EncodeRecordHeader("single", {gib / 2 * 5}, "UInt8", gib / 2 * 5), gib / 2 * 5);
    const std::string tail = ck::TensorRecord("tail", {.dims = {2}, .content = ck::F32({7, 8})});
    out.seekp(static_cast<std::streamoff>(offset));
    out.write(tail.data(), static_cast<std::streamsize>(tail.size()));
    out.close();
    REQUIRE(out);
    auto reader = OpenFile(path);
    REQUIRE(reader.ok());
    const auto& tensors = (*reader)->tensors();
    REQUIRE(tensors.size() == 3);
    CHECK(tensors[0] == TensorInfo{"big", DType::kU8, {5 * gib}, 5 * gib});
    CHECK(tensors[1].byte_size == gib / 2 * 5);
    auto single = (*reader)->Read(1);
    REQUIRE(single.ok());
    CHECK_FALSE(single->owned());
    CHECK(single->size() == gib / 2 * 5);
    CHECK(single->bytes().back() == std::byte{0});
    CHECK(ReadAll(**reader, 2) == ck::F32({7, 8}));
  }

  TEST_CASE("an error from a mapped file names that file") {
    test::TempDir dir;
    test::WriteFile(dir / "bad.ckpt", "\x0a\x05\x0a");
    auto reader = OpenFile(dir / "bad.ckpt");
    REQUIRE_FALSE(reader.ok());
    CHECK(reader.error().where().file == (dir / "bad.ckpt").string());
    CHECK(reader.error().where().offset == 1u);
  }
}

}  // namespace
}  // namespace cw::mindspore
