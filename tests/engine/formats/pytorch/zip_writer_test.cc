#include "engine/formats/pytorch/zip_writer.h"

#include <cstdio>
#include <utility>

#include <doctest/doctest.h>

#include "engine/formats/common/write_tracker.h"
#include "tests/support/test_files.h"

namespace cw::pytorch {
namespace {

// Fixed header sizes and signatures from the zip specification (APPNOTE 4.3), not from the writer.
constexpr uint64_t kLocal = 30;
constexpr uint64_t kCentral = 46;
constexpr uint64_t kEnd = 22;

uint16_t U16(const std::string& f, uint64_t at) { return LoadLE<uint16_t>(AsBytes(f).data() + at); }
uint32_t U32(const std::string& f, uint64_t at) { return LoadLE<uint32_t>(AsBytes(f).data() + at); }
uint64_t U64(const std::string& f, uint64_t at) { return LoadLE<uint64_t>(AsBytes(f).data() + at); }

struct Named {
  std::string name;
  std::string content;
};

std::vector<ZipEntrySpec> EntriesOf(const std::vector<Named>& files) {
  std::vector<ZipEntrySpec> entries;
  entries.reserve(files.size());
  for (const Named& f : files)
    entries.push_back({f.name, f.content.size()});
  return entries;
}

// Writes `files` in one piece each, last entry first, and returns the archive's bytes.
std::string WriteArchive(const std::filesystem::path& path, const std::vector<Named>& files,
                         Zip64Thresholds thresholds = {}) {
  auto layout = ZipLayout::Compute(EntriesOf(files), thresholds);
  REQUIRE(layout.ok());
  auto out = OutputFile::Create(path, false);
  REQUIRE(out.ok());
  auto zip = ZipWriter::Create(std::move(out).value(), std::move(layout).value());
  REQUIRE(zip.ok());
  std::vector<uint32_t> crcs(files.size());
  for (size_t i = files.size(); i-- > 0;) {
    REQUIRE(zip->Write(i, 0, AsBytes(files[i].content)).ok());
    crcs[i] = Crc32(AsBytes(files[i].content));
  }
  REQUIRE(zip->Commit(crcs).ok());
  return test::ReadFile(path);
}

// Python's zipfile reads every entry (checking its CRC) and prints name, size and content.
constexpr const char* kListScript = R"(
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    print('testzip', z.testzip())
    for i in z.infolist():
        print(i.filename, i.file_size, i.compress_type, z.read(i).hex())
)";

std::string PythonListing(const test::TempDir& dir, const std::filesystem::path& archive) {
  test::WriteFile(dir / "list.py", kListScript);
  const test::Ran ran =
      test::RunCommand("/usr/bin/python3 " + (dir / "list.py").string() + " " + archive.string());
  CHECK(ran.exit_code == 0);
  return ran.output;
}

std::string ExpectedListing(const std::vector<Named>& files) {
  std::string expected = "testzip None\n";
  for (const Named& f : files) {
    std::string hex;
    for (unsigned char c : f.content) {
      static constexpr char kDigits[] = "0123456789abcdef";
      hex += kDigits[c >> 4];
      hex += kDigits[c & 15];
    }
    expected += f.name + " " + std::to_string(f.content.size()) + " 0 " + hex + "\n";
  }
  return expected;
}

void CheckUnzipAccepts(const std::filesystem::path& archive) {
  const test::Ran ran = test::RunCommand("unzip -tq " + archive.string());
  CAPTURE(ran.output);
  CHECK(ran.exit_code == 0);
  CHECK(ran.output.find("No errors detected") != std::string::npos);
}

std::vector<Named> SampleFiles() {
  return {{"sd/data.pkl", "pickle bytes"},
          {"sd/byteorder", "little"},
          {"sd/data/0", std::string(200, '\x07')},
          {"sd/data/1", ""},
          {"sd/version", "3\n"}};
}

TEST_SUITE("formats.pytorch.zip_writer") {
  TEST_CASE("torch's own example: sd/data.pkl at offset 0 gets 23 extra bytes and data at 64") {
    auto layout = ZipLayout::Compute({{"sd/data.pkl", 5}});
    REQUIRE(layout.ok());
    const std::string header = layout->LocalHeader(0, 0);
    CHECK(U16(header, 28) == 23);
    CHECK(layout->place(0).data_offset == 64);
    CHECK(header.size() == 64);
    CHECK(U16(header, 41) == 0x4246);  // 'F' 'B'
    CHECK(U16(header, 43) == 19);
    CHECK(header.substr(45) == std::string(19, 'Z'));
  }

  TEST_CASE("every payload starts at a multiple of 64 right after its header, for any name") {
    std::vector<ZipEntrySpec> entries;
    for (size_t n = 1; n <= 130; ++n)
      entries.push_back({std::string(n, 'a'), n * 7 % 100});
    auto layout = ZipLayout::Compute(entries);
    REQUIRE(layout.ok());
    uint64_t expected_header = 0;
    for (size_t i = 0; i < layout->size(); ++i) {
      CAPTURE(i);
      const ZipEntryPlace& p = layout->place(i);
      const std::string header = layout->LocalHeader(i, 0);
      CHECK(p.header_offset == expected_header);
      CHECK(p.data_offset % 64 == 0);
      CHECK(p.data_offset == p.header_offset + kLocal + U16(header, 26) + U16(header, 28));
      CHECK(header.size() == p.data_offset - p.header_offset);
      CHECK(U16(header, kLocal + i + 1) == 0x4246);
      expected_header = p.data_offset + entries[i].size_bytes;
    }
    CHECK(layout->central_directory_offset() == expected_header);
  }

  TEST_CASE("local headers hold version 20, STORED, real sizes and each payload's CRC-32") {
    test::TempDir dir;
    const auto files = SampleFiles();
    const std::string f = WriteArchive(dir / "a.zip", files);
    auto layout = ZipLayout::Compute(EntriesOf(files));
    REQUIRE(layout.ok());
    for (size_t i = 0; i < files.size(); ++i) {
      CAPTURE(files[i].name);
      const uint64_t at = layout->place(i).header_offset;
      CHECK(U32(f, at) == 0x04034b50);
      CHECK(U16(f, at + 4) == 20);
      CHECK(U16(f, at + 6) == 0);  // no data descriptor, ASCII name
      CHECK(U16(f, at + 8) == 0);  // STORED
      CHECK(U32(f, at + 14) == Crc32(AsBytes(files[i].content)));
      CHECK(U32(f, at + 18) == files[i].content.size());
      CHECK(U32(f, at + 22) == files[i].content.size());
      CHECK(f.substr(at + kLocal, U16(f, at + 26)) == files[i].name);
      CHECK(f.substr(layout->place(i).data_offset, files[i].content.size()) == files[i].content);
    }
  }

  TEST_CASE("the central directory repeats sizes, CRCs and header offsets; the end record counts") {
    test::TempDir dir;
    const auto files = SampleFiles();
    const std::string f = WriteArchive(dir / "a.zip", files);
    const uint64_t end = f.size() - kEnd;
    REQUIRE(U32(f, end) == 0x06054b50);
    CHECK(U16(f, end + 8) == files.size());
    CHECK(U16(f, end + 10) == files.size());
    CHECK(U16(f, end + 20) == 0);  // no comment
    uint64_t at = U32(f, end + 16);
    CHECK(at + U32(f, end + 12) == end);  // no ZIP64 records in between
    for (const Named& file : files) {
      CAPTURE(file.name);
      REQUIRE(U32(f, at) == 0x02014b50);
      CHECK(U16(f, at + 10) == 0);
      CHECK(U32(f, at + 16) == Crc32(AsBytes(file.content)));
      CHECK(U32(f, at + 20) == file.content.size());
      CHECK(U32(f, at + 24) == file.content.size());
      CHECK(U16(f, at + 30) == 0);  // no extra field
      CHECK(f.substr(at + kCentral, U16(f, at + 28)) == file.name);
      const uint64_t local = U32(f, at + 42);
      CHECK(U32(f, local + 14) == U32(f, at + 16));
      at += kCentral + U16(f, at + 28) + U16(f, at + 30);
    }
    CHECK(at == end);
  }

  TEST_CASE("python zipfile and unzip -t read every entry of an archive with correct CRCs") {
    test::TempDir dir;
    const auto files = SampleFiles();
    WriteArchive(dir / "a.zip", files);
    CHECK(PythonListing(dir, dir / "a.zip") == ExpectedListing(files));
    CheckUnzipAccepts(dir / "a.zip");
  }

  TEST_CASE("the same entries written in a different piece order give the same bytes") {
    test::TempDir dir;
    const auto files = SampleFiles();
    const std::string whole = WriteArchive(dir / "a.zip", files);
    auto layout = ZipLayout::Compute(EntriesOf(files));
    REQUIRE(layout.ok());
    auto out = OutputFile::Create(dir / "b.zip", false);
    REQUIRE(out.ok());
    auto zip = ZipWriter::Create(std::move(out).value(), std::move(layout).value());
    REQUIRE(zip.ok());
    std::vector<uint32_t> crcs;
    for (size_t i = 0; i < files.size(); ++i) {
      const ByteSpan bytes = AsBytes(files[i].content);
      for (size_t k = bytes.size(); k-- > 0;)
        REQUIRE(zip->Write(i, k, bytes.subspan(k, 1)).ok());
      crcs.push_back(Crc32(bytes));
    }
    REQUIRE(zip->Commit(crcs).ok());
    CHECK(test::ReadFile(dir / "b.zip") == whole);
  }

  TEST_CASE("an entry at the 32-bit threshold gets a local ZIP64 extra before its padding") {
    test::TempDir dir;
    const std::string f = WriteArchive(dir / "a.zip", {{"z/a", std::string(100, 'q')}}, {100});
    CHECK(U16(f, 4) == 45);
    CHECK(U32(f, 18) == 0xFFFFFFFF);
    CHECK(U32(f, 22) == 0xFFFFFFFF);
    CHECK(U16(f, 28) == 20 + 4 + 7);  // ZIP64 extra, then 'FB' padding to 30 + 3 + 31 = 64
    CHECK(U16(f, 33) == 0x0001);
    CHECK(U16(f, 35) == 16);
    CHECK(U64(f, 37) == 100);
    CHECK(U64(f, 45) == 100);
    CHECK(U16(f, 53) == 0x4246);
    CHECK(U16(f, 55) == 7);
    CHECK(f.substr(64, 100) == std::string(100, 'q'));
    const uint64_t central = 164;
    REQUIRE(U32(f, central) == 0x02014b50);
    CHECK(U16(f, central + 6) == 45);
    CHECK(U32(f, central + 20) == 0xFFFFFFFF);
    CHECK(U32(f, central + 24) == 0xFFFFFFFF);
    CHECK(U16(f, central + 30) == 20);
    CHECK(U32(f, central + 42) == 0);  // the offset fits: not escaped
    CHECK(U16(f, central + kCentral + 3) == 0x0001);
    CHECK(U16(f, central + kCentral + 5) == 16);
    CHECK(U64(f, central + kCentral + 7) == 100);
    CHECK(U64(f, central + kCentral + 15) == 100);
  }

  TEST_CASE(
      "an entry past the 32-bit threshold keeps a plain local header; only its offset moves") {
    test::TempDir dir;
    const std::string f =
        WriteArchive(dir / "a.zip", {{"z/a", std::string(50, 'a')}, {"z/b", "bbbbb"}}, {100});
    const uint64_t second = 114;  // payload of z/a at 64..114
    REQUIRE(U32(f, second) == 0x04034b50);
    CHECK(U16(f, second + 4) == 45);
    CHECK(U32(f, second + 18) == 5);
    CHECK(U16(f, second + 28) == 4 + 41);  // 'FB' only: 114 + 30 + 3 + 45 = 192
    CHECK(U16(f, second + kLocal + 3) == 0x4246);
    const uint64_t end = f.size() - kEnd;
    const uint64_t locator = end - 20;
    const uint64_t end64 = locator - 56;
    REQUIRE(U32(f, end64) == 0x06064b50);
    const uint64_t central = U64(f, end64 + 48);
    REQUIRE(U32(f, central) == 0x02014b50);
    const uint64_t central_b = central + kCentral + 3;
    REQUIRE(U32(f, central_b) == 0x02014b50);
    CHECK(U32(f, central_b + 20) == 5);
    CHECK(U32(f, central_b + 42) == 0xFFFFFFFF);
    CHECK(U16(f, central_b + 30) == 12);
    CHECK(U16(f, central_b + kCentral + 3) == 0x0001);
    CHECK(U16(f, central_b + kCentral + 5) == 8);
    CHECK(U64(f, central_b + kCentral + 7) == second);
  }

  TEST_CASE("a ZIP64 end record and locator precede the end record when anything overflows") {
    test::TempDir dir;
    const std::string f =
        WriteArchive(dir / "a.zip", {{"z/a", std::string(50, 'a')}, {"z/b", "bbbbb"}}, {100});
    const uint64_t end = f.size() - kEnd;
    const uint64_t locator = end - 20;
    const uint64_t end64 = locator - 56;
    const uint64_t central_bytes = (kCentral + 3) + (kCentral + 3 + 12);
    REQUIRE(U32(f, end64) == 0x06064b50);
    CHECK(U64(f, end64 + 4) == 44);
    CHECK(U16(f, end64 + 12) == 45);
    CHECK(U16(f, end64 + 14) == 45);
    CHECK(U64(f, end64 + 24) == 2);
    CHECK(U64(f, end64 + 32) == 2);
    CHECK(U64(f, end64 + 40) == central_bytes);
    CHECK(U64(f, end64 + 48) == end64 - central_bytes);
    REQUIRE(U32(f, locator) == 0x07064b50);
    CHECK(U32(f, locator + 4) == 0);
    CHECK(U64(f, locator + 8) == end64);
    CHECK(U32(f, locator + 16) == 1);
    CHECK(U16(f, end + 10) == 2);  // the count fits
    CHECK(U32(f, end + 12) == 0xFFFFFFFF);
    CHECK(U32(f, end + 16) == 0xFFFFFFFF);
  }

  TEST_CASE("an entry count at the 16-bit threshold is escaped into the ZIP64 end record") {
    test::TempDir dir;
    const std::string f = WriteArchive(dir / "a.zip", {{"a/1", "1"}, {"a/2", "2"}, {"a/3", "3"}},
                                       {.field32 = 0xFFFF'FFFF, .field16 = 3});
    const uint64_t end = f.size() - kEnd;
    CHECK(U16(f, end + 8) == 0xFFFF);
    CHECK(U16(f, end + 10) == 0xFFFF);
    CHECK(U32(f, end + 16) == 193);  // the offset fits: payloads at 64, 128, 192
    REQUIRE(U32(f, end - 20 - 56) == 0x06064b50);
    CHECK(U64(f, end - 20 - 56 + 32) == 3);
    CHECK(U16(f, 4) == 20);  // the entries themselves need no ZIP64
  }

  TEST_CASE("python zipfile and unzip -t read archives laid out with small ZIP64 thresholds") {
    test::TempDir dir;
    const auto files = SampleFiles();
    WriteArchive(dir / "a.zip", files, {.field32 = 100, .field16 = 3});
    CHECK(PythonListing(dir, dir / "a.zip") == ExpectedListing(files));
    CheckUnzipAccepts(dir / "a.zip");
  }

  TEST_CASE("a non-ASCII entry name sets the UTF-8 flag and reads back in python") {
    test::TempDir dir;
    const std::vector<Named> files = {{"模型/data.pkl", "x"}};
    const std::string f = WriteArchive(dir / "a.zip", files);
    CHECK(U16(f, 6) == 0x0800);
    CHECK(PythonListing(dir, dir / "a.zip") == ExpectedListing(files));
  }

  TEST_CASE("an archive without entries is a lone end record") {
    test::TempDir dir;
    const std::string f = WriteArchive(dir / "a.zip", {});
    REQUIRE(f.size() == kEnd);
    CHECK(U32(f, 0) == 0x06054b50);
    CHECK(U16(f, 10) == 0);
  }

  TEST_CASE("a name over 65535 bytes is refused as a limit") {
    auto layout = ZipLayout::Compute({{std::string(65536, 'a'), 1}});
    REQUIRE_FALSE(layout.ok());
    CHECK(layout.error().code() == ErrorCode::kLimitExceeded);
    CHECK(ZipLayout::Compute({{std::string(65535, 'a'), 1}}).ok());
  }

  TEST_CASE("sizes whose sum passes 2^64 are refused as a limit") {
    auto layout = ZipLayout::Compute({{"a", ~0ull - 100}, {"b", 200}});
    REQUIRE_FALSE(layout.ok());
    CHECK(layout.error().code() == ErrorCode::kLimitExceeded);
  }

  TEST_CASE("a write outside an entry, to a missing entry or a wrong CRC count is internal") {
    test::TempDir dir;
    auto layout = ZipLayout::Compute({{"a/x", 4}});
    REQUIRE(layout.ok());
    auto out = OutputFile::Create(dir / "a.zip", false);
    REQUIRE(out.ok());
    auto zip = ZipWriter::Create(std::move(out).value(), std::move(layout).value());
    REQUIRE(zip.ok());
    CHECK(zip->Write(0, 3, AsBytes("ab")).error().code() == ErrorCode::kInternal);
    CHECK(zip->Write(1, 0, AsBytes("a")).error().code() == ErrorCode::kInternal);
    const std::vector<uint32_t> crcs = {1, 2};
    CHECK(zip->Commit(crcs).error().code() == ErrorCode::kInternal);
  }
}

}  // namespace
}  // namespace cw::pytorch
