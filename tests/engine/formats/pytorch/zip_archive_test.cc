#include "engine/formats/pytorch/zip_archive.h"

#include <doctest/doctest.h>

#include "tests/support/test_files.h"
#include "tests/support/zip_builder.h"

namespace cw::pytorch {
namespace {

std::string Content(const ZipArchive& archive, const std::string& name) {
  const ZipEntry* entry = archive.Find(name);
  REQUIRE(entry != nullptr);
  auto data = archive.ReadSmall(*entry, 1 << 20);
  REQUIRE(data.ok());
  return std::string(AsChars(data->bytes()));
}

test::pt::BuiltZip TwoEntries(const test::pt::ZipOptions& options = {}) {
  return test::pt::ZipBuilder().Add("a/one", "first").Add("a/two", "second!").Build(options);
}

TEST_SUITE("formats.pytorch.zip_archive") {
  TEST_CASE("lists a real torch 1.13 archive with every payload 64-byte aligned") {
    const std::string file = test::ReadFile(test::ExternalPath("torch/dtypes_views.pt"));
    auto archive = ZipArchive::Open(AsBytes(file), "dtypes_views.pt");
    REQUIRE(archive.ok());
    REQUIRE(archive->entries().size() == 16);
    CHECK(archive->entries()[0].name == "dtypes_views/data.pkl");
    CHECK(archive->entries()[3].name == "dtypes_views/data/10");
    CHECK(archive->entries()[15].name == "dtypes_views/version");
    for (const ZipEntry& e : archive->entries()) {
      CAPTURE(e.name);
      CHECK(e.method == kZipStored);
      CHECK(e.data_offset % 64 == 0);
    }
    CHECK(Content(*archive, "dtypes_views/version") == "3\n");
    const ZipEntry* bf16 = archive->Find("dtypes_views/data/3");
    REQUIRE(bf16 != nullptr);
    auto view = archive->StoredBytes(*bf16);
    REQUIRE(view.ok());
    CHECK(view->data() == AsBytes(file).data() + bf16->data_offset);  // a view, not a copy
    CHECK(view->size() == 8);
  }

  TEST_CASE("reads a torch 2.x archive with its byteorder and serialization records") {
    const std::string file =
        test::ReadFile(test::ExternalPath("hf/burn_pytorch_reader_tests/float64.pt"));
    auto archive = ZipArchive::Open(AsBytes(file), "float64.pt");
    REQUIRE(archive.ok());
    CHECK(Content(*archive, "float64/byteorder") == "little");
    CHECK(Content(*archive, "float64/.format_version") == "1");
    CHECK(archive->Find("float64/.data/serialization_id") != nullptr);
  }

  TEST_CASE("finds entries ignoring ASCII case as torch's miniz does") {
    const std::string file = TwoEntries().bytes;
    auto archive = ZipArchive::Open(AsBytes(file), "t.zip");
    REQUIRE(archive.ok());
    CHECK(archive->Find("A/ONE") == &archive->entries()[0]);
    CHECK(archive->Find("a/three") == nullptr);
  }

  TEST_CASE("reads sizes and offsets from ZIP64 extras when the directory holds 0xFFFFFFFF") {
    test::pt::ZipOptions options;
    options.zip64_everywhere = true;
    const std::string file = TwoEntries(options).bytes;
    auto archive = ZipArchive::Open(AsBytes(file), "t.zip");
    REQUIRE(archive.ok());
    CHECK(Content(*archive, "a/one") == "first");
    CHECK(Content(*archive, "a/two") == "second!");
  }

  TEST_CASE("reads a plain archive without data descriptors or ZIP64 records") {
    test::pt::ZipOptions options;
    options.torch_style = false;
    const std::string file = TwoEntries(options).bytes;
    auto archive = ZipArchive::Open(AsBytes(file), "t.zip");
    REQUIRE(archive.ok());
    CHECK(Content(*archive, "a/two") == "second!");
  }

  TEST_CASE("inflates a deflated entry but refuses to map it") {
    const std::string text(5000, 'x');
    const std::string file = test::pt::ZipBuilder().Add("a/p", text, true).Build().bytes;
    auto archive = ZipArchive::Open(AsBytes(file), "t.zip");
    REQUIRE(archive.ok());
    CHECK(Content(*archive, "a/p") == text);
    auto view = archive->StoredBytes(archive->entries()[0]);
    REQUIRE_FALSE(view.ok());
    CHECK(view.error().code() == ErrorCode::kUnsupported);
  }

  TEST_CASE("refuses an entry over the caller's cap before inflating it") {
    const std::string file =
        test::pt::ZipBuilder().Add("a/p", std::string(5000, 'x'), true).Build().bytes;
    auto archive = ZipArchive::Open(AsBytes(file), "t.zip");
    REQUIRE(archive.ok());
    auto data = archive->ReadSmall(archive->entries()[0], 4999);
    REQUIRE_FALSE(data.ok());
    CHECK(data.error().code() == ErrorCode::kLimitExceeded);
    CHECK(data.error().where().offset == 0u);
  }

  TEST_CASE("reports a file cut before its end record as truncated at the end of the file") {
    const std::string file = TwoEntries().bytes;
    for (const size_t cut : {size_t{0}, size_t{10}, file.size() - 30, file.size() - 1}) {
      CAPTURE(cut);
      auto archive = ZipArchive::Open(AsBytes(file).first(cut), "t.zip");
      REQUIRE_FALSE(archive.ok());
      CHECK(archive.error().code() == ErrorCode::kCorrupt);
      CHECK(archive.error().where().offset == cut);
      CHECK(archive.error().message().find("truncated") != std::string::npos);
    }
  }

  TEST_CASE("refuses bytes after the end record") {
    const std::string file = TwoEntries().bytes + "junk";
    auto archive = ZipArchive::Open(AsBytes(file), "t.zip");
    REQUIRE_FALSE(archive.ok());
    CHECK(archive.error().code() == ErrorCode::kCorrupt);
  }

  TEST_CASE("refuses a central directory that does not end where the end record starts") {
    test::pt::BuiltZip zip = TwoEntries();
    test::pt::Patch(zip.bytes, zip.zip64_end_offset + 40, 20, 8);  // ZIP64 directory size
    test::pt::Patch(zip.bytes, zip.end_offset + 12, 20, 4);        // classic directory size
    auto archive = ZipArchive::Open(AsBytes(zip.bytes), "t.zip");
    REQUIRE_FALSE(archive.ok());
    CHECK(archive.error().code() == ErrorCode::kCorrupt);
    CHECK(archive.error().where().offset == zip.zip64_end_offset);
  }

  TEST_CASE("refuses a classic end record that disagrees with the ZIP64 one") {
    test::pt::BuiltZip zip = TwoEntries();
    test::pt::Patch(zip.bytes, zip.end_offset + 10, 3, 2);  // classic entry count
    auto archive = ZipArchive::Open(AsBytes(zip.bytes), "t.zip");
    REQUIRE_FALSE(archive.ok());
    CHECK(archive.error().code() == ErrorCode::kCorrupt);
    CHECK(archive.error().where().offset == zip.end_offset);
  }

  TEST_CASE("refuses an entry count over the cap as a limit before reading entries") {
    test::pt::ZipOptions options;
    options.zip64_everywhere = true;
    test::pt::BuiltZip zip = TwoEntries(options);
    test::pt::Patch(zip.bytes, zip.zip64_end_offset + 24, 5'000'000, 8);
    test::pt::Patch(zip.bytes, zip.zip64_end_offset + 32, 5'000'000, 8);
    auto archive = ZipArchive::Open(AsBytes(zip.bytes), "t.zip");
    REQUIRE_FALSE(archive.ok());
    CHECK(archive.error().code() == ErrorCode::kLimitExceeded);
  }

  TEST_CASE("refuses more entries than the central directory can hold") {
    test::pt::BuiltZip zip = TwoEntries();
    test::pt::Patch(zip.bytes, zip.zip64_end_offset + 24, 9, 8);
    test::pt::Patch(zip.bytes, zip.zip64_end_offset + 32, 9, 8);
    test::pt::Patch(zip.bytes, zip.end_offset + 8, 9, 2);
    test::pt::Patch(zip.bytes, zip.end_offset + 10, 9, 2);
    auto archive = ZipArchive::Open(AsBytes(zip.bytes), "t.zip");
    REQUIRE_FALSE(archive.ok());
    CHECK(archive.error().code() == ErrorCode::kCorrupt);
  }

  TEST_CASE("refuses a local header offset past the central directory at the entry") {
    test::pt::BuiltZip zip = TwoEntries();
    test::pt::Patch(zip.bytes, zip.central_offsets[1] + 42, zip.directory_offset, 4);
    auto archive = ZipArchive::Open(AsBytes(zip.bytes), "t.zip");
    REQUIRE_FALSE(archive.ok());
    CHECK(archive.error().code() == ErrorCode::kCorrupt);
    CHECK(archive.error().where().offset == zip.central_offsets[1]);
  }

  TEST_CASE("refuses a bad local header signature at the local header") {
    test::pt::BuiltZip zip = TwoEntries();
    test::pt::Patch(zip.bytes, zip.header_offsets[1], 0x12345678, 4);
    auto archive = ZipArchive::Open(AsBytes(zip.bytes), "t.zip");
    REQUIRE_FALSE(archive.ok());
    CHECK(archive.error().code() == ErrorCode::kCorrupt);
    CHECK(archive.error().where().offset == zip.header_offsets[1]);
  }

  TEST_CASE("refuses a local header naming another entry than the central directory") {
    test::pt::BuiltZip zip = TwoEntries();
    zip.bytes[zip.header_offsets[0] + 30 + 2] = 'X';  // "a/one" -> "a/Xne"
    auto archive = ZipArchive::Open(AsBytes(zip.bytes), "t.zip");
    REQUIRE_FALSE(archive.ok());
    CHECK(archive.error().code() == ErrorCode::kCorrupt);
    CHECK(archive.error().where().offset == zip.header_offsets[0] + 30);
  }

  TEST_CASE("refuses overlapping entries") {
    test::pt::ZipOptions options;
    options.torch_style = false;  // sizes in the directory only matter
    test::pt::BuiltZip zip = TwoEntries(options);
    const uint64_t grown = zip.header_offsets[1] - zip.data_offsets[0] + 1;
    test::pt::Patch(zip.bytes, zip.central_offsets[0] + 20, grown, 4);
    test::pt::Patch(zip.bytes, zip.central_offsets[0] + 24, grown, 4);
    auto archive = ZipArchive::Open(AsBytes(zip.bytes), "t.zip");
    REQUIRE_FALSE(archive.ok());
    CHECK(archive.error().code() == ErrorCode::kCorrupt);
    CHECK(archive.error().where().offset == zip.header_offsets[1]);
  }

  TEST_CASE("refuses a payload running into the central directory") {
    test::pt::BuiltZip zip = TwoEntries();
    const uint64_t grown = zip.directory_offset - zip.data_offsets[1] + 1;
    test::pt::Patch(zip.bytes, zip.central_offsets[1] + 20, grown, 4);
    test::pt::Patch(zip.bytes, zip.central_offsets[1] + 24, grown, 4);
    auto archive = ZipArchive::Open(AsBytes(zip.bytes), "t.zip");
    REQUIRE_FALSE(archive.ok());
    CHECK(archive.error().code() == ErrorCode::kCorrupt);
    CHECK(archive.error().where().offset == zip.data_offsets[1]);
  }

  TEST_CASE("refuses a stored entry whose two sizes differ") {
    test::pt::BuiltZip zip = TwoEntries();
    test::pt::Patch(zip.bytes, zip.central_offsets[0] + 24, 4, 4);
    auto archive = ZipArchive::Open(AsBytes(zip.bytes), "t.zip");
    REQUIRE_FALSE(archive.ok());
    CHECK(archive.error().code() == ErrorCode::kCorrupt);
    CHECK(archive.error().where().offset == zip.central_offsets[0]);
  }

  TEST_CASE("refuses two entries whose names differ only in case") {
    const std::string file = test::pt::ZipBuilder().Add("a/x", "1").Add("a/X", "2").Build().bytes;
    auto archive = ZipArchive::Open(AsBytes(file), "t.zip");
    REQUIRE_FALSE(archive.ok());
    CHECK(archive.error().code() == ErrorCode::kCorrupt);
  }

  TEST_CASE("refuses an encrypted entry") {
    test::pt::BuiltZip zip = TwoEntries();
    test::pt::Patch(zip.bytes, zip.central_offsets[0] + 8, 0x0809, 2);
    auto archive = ZipArchive::Open(AsBytes(zip.bytes), "t.zip");
    REQUIRE_FALSE(archive.ok());
    CHECK(archive.error().code() == ErrorCode::kUnsupported);
    CHECK(archive.error().where().offset == zip.central_offsets[0] + 8);
  }

  TEST_CASE("refuses 0xFFFFFFFF sizes without a ZIP64 extra field") {
    test::pt::BuiltZip zip = TwoEntries();
    test::pt::Patch(zip.bytes, zip.central_offsets[0] + 24, 0xFFFFFFFF, 4);
    auto archive = ZipArchive::Open(AsBytes(zip.bytes), "t.zip");
    REQUIRE_FALSE(archive.ok());
    CHECK(archive.error().code() == ErrorCode::kCorrupt);
  }

  TEST_CASE("refuses an entry name over the cap as a limit") {
    const std::string file =
        test::pt::ZipBuilder().Add("a/" + std::string(5000, 'n'), "").Build().bytes;
    auto archive = ZipArchive::Open(AsBytes(file), "t.zip");
    REQUIRE_FALSE(archive.ok());
    CHECK(archive.error().code() == ErrorCode::kLimitExceeded);
  }

  TEST_CASE("refuses split archives") {
    test::pt::BuiltZip zip = TwoEntries();
    test::pt::Patch(zip.bytes, zip.zip64_end_offset + 16, 1, 4);  // this disk's number
    auto archive = ZipArchive::Open(AsBytes(zip.bytes), "t.zip");
    REQUIRE_FALSE(archive.ok());
    CHECK(archive.error().code() == ErrorCode::kUnsupported);
  }
}

}  // namespace
}  // namespace cw::pytorch
