#include "engine/formats/pytorch/pickle_reader.h"

#include <filesystem>

#include <doctest/doctest.h>

#include "engine/formats/pytorch/zip_archive.h"
#include "tests/engine/formats/pytorch/pickle_run.h"
#include "tests/support/pickle_builder.h"
#include "tests/support/test_files.h"

namespace cw::pytorch {
namespace {

using test::pt::PickleBuilder;

using test_pickle::kBase;
using test_pickle::Run;
using test_pickle::RunOk;

// The root's items, as objects (views valid while `tree` lives).
std::vector<Object> Items(const PickleTree& tree) {
  std::vector<Object> out;
  for (const ObjectId id : tree.at(tree.root()).items)
    out.push_back(tree.at(id));
  return out;
}

void CheckRefused(const std::string& bytes, ErrorCode code, uint64_t op_offset) {
  auto tree = Run(bytes);
  REQUIRE_FALSE(tree.ok());
  CHECK(tree.error().code() == code);
  CHECK(tree.error().where().file == "t.pt");
  CHECK(tree.error().where().offset == kBase + op_offset);
}

TEST_SUITE("formats.pytorch.pickle_reader") {
  TEST_CASE("reads the integers of every encoding") {
    PickleBuilder p;
    p.Proto()
        .Mark()
        .Int(7)
        .Int(300)
        .Int(-5)
        .Int(70000)
        .Int(int64_t{1} << 40)
        .Int(-(int64_t{1} << 40));
    p.Op(0x8a).Op(0).Raw("I12\n").Raw("L-99L\n").Raw("I01\n");
    p.Op(0x8a).Op(9).Raw(std::string("\x01\x00\x00\x00\x00\x00\x00\x00\x01", 9));  // 2**64 + 1
    p.Op(0x8b).Raw(std::string("\x01\x00\x00\x00\xff", 5)).Tuple().Stop();
    const PickleTree tree = RunOk(p.bytes());
    const std::vector<Object> items = Items(tree);
    REQUIRE(items.size() == 12);
    const std::vector<int64_t> ints = {7, 300, -5, 70000, int64_t{1} << 40, -(int64_t{1} << 40),
                                       0, 12,  -99};
    for (size_t i = 0; i < ints.size(); ++i) {
      CAPTURE(i);
      CHECK(items[i].kind == Kind::kInt);
      CHECK(items[i].int_value == ints[i]);
    }
    CHECK(items[9].kind == Kind::kBool);
    CHECK(items[9].int_value == 1);
    CHECK(items[10].kind == Kind::kBigInt);
    CHECK(items[11].kind == Kind::kInt);
    CHECK(items[11].int_value == -1);
  }

  TEST_CASE("reads the floats strings bytes and constants of protocols 0 to 5") {
    PickleBuilder p;
    p.Proto(4).Mark().Float(0.123).Raw("F-2.5\n").None().Bool(true).Bool(false);
    p.Str("caf\xc3\xa9")
        .Op(0x8c)
        .Op(2)
        .Raw("hi")
        .Op(0x8d)
        .Raw(std::string("\x01\0\0\0\0\0\0\0z", 9));
    p.Raw("S'a\\'b\\x41\\n'\n").Raw("V\\u00e9x\n").Op('U').Op(1).Raw("\xff");
    p.Op('C').Op(2).Raw(std::string("\x00\x01", 2)).Op('B').Raw(std::string("\x01\0\0\0q", 5));
    p.Op(0x96).Raw(std::string("\0\0\0\0\0\0\0\0", 8)).Tuple().Stop();
    const PickleTree tree = RunOk(p.bytes());
    const std::vector<Object> items = Items(tree);
    REQUIRE(items.size() == 14);
    CHECK(items[0].float_value == 0.123);
    CHECK(items[1].float_value == -2.5);
    CHECK(items[2].kind == Kind::kNone);
    CHECK(items[3].int_value == 1);
    CHECK(items[4].int_value == 0);
    CHECK(items[5].text == "caf\xc3\xa9");
    CHECK(items[6].text == "hi");
    CHECK(items[7].text == "z");
    CHECK(items[8].text == "a'bA\n");
    CHECK(items[9].text == "\xc3\xa9x");
    CHECK(items[10].text == "\xff");  // Python 2 strings are kept byte for byte
    CHECK(items[11].kind == Kind::kBytes);
    CHECK(items[11].text == std::string("\x00\x01", 2));
    CHECK(items[12].text == "q");
    CHECK(items[13].kind == Kind::kBytes);
    CHECK(items[13].text.empty());
  }

  TEST_CASE("a dict memoized empty and filled later is seen filled through BINGET") {
    PickleBuilder p;
    p.Proto().EmptyDict().Put(0).Pop();               // the memo keeps the dict
    p.EmptyList().Get(0).Append().Get(0).Append();    // [d, d]
    p.Get(0).Str("w").Int(1).SetItem().Pop().Stop();  // d["w"] = 1 after both appends
    const PickleTree tree = RunOk(p.bytes());
    const Object& list = tree.at(tree.root());
    REQUIRE(list.items.size() == 2);
    CHECK(list.items[0] == list.items[1]);  // one dict, referenced twice
    const Object& dict = tree.at(list.items[0]);
    REQUIRE(dict.items.size() == 2);
    CHECK(tree.at(dict.items[0]).text == "w");
  }

  TEST_CASE("reads protocol 4 framing with STACK_GLOBAL and MEMOIZE") {
    PickleBuilder body;
    body.Op(0x8c).Op(11).Raw("collections").Op(0x94).Op(0x8c).Op(11).Raw("OrderedDict");
    body.Op(0x94).Op(0x93).Op(0x94).EmptyTuple().Reduce().Op(0x94);
    body.Op(0x8c).Op(1).Raw("k").Op(0x94).Op(0x8f).Op(0x94).Mark().Int(1).Int(2).Op(0x90);
    body.SetItem().Stop();
    PickleBuilder p;
    p.Proto(4).Op(0x95).Raw(std::string("\0\0\0\0\0\0\0\0", 8));
    std::string bytes = p.bytes() + body.bytes();
    bytes[3] = static_cast<char>(body.size());
    const PickleTree tree = RunOk(bytes);
    const Object& dict = tree.at(tree.root());
    CHECK(dict.kind == Kind::kDict);
    CHECK(dict.ordered);
    REQUIRE(dict.items.size() == 2);
    CHECK(tree.at(dict.items[1]).kind == Kind::kSet);
    CHECK(tree.at(dict.items[1]).items.size() == 2);
  }

  TEST_CASE("refuses GLOBALs outside the allow-list by name and runs nothing") {
    test::TempDir dir;
    const std::string marker = (dir / "ran").string();
    const std::vector<std::pair<std::string, std::string>> refused = {
        {"os", "system"},
        {"posix", "system"},
        {"builtins", "eval"},
        {"builtins", "exec"},
        {"builtins", "getattr"},
        {"subprocess", "Popen"},
        {"argparse", "Namespace"},
        {"_io", "BytesIO"},
        {"numpy.core.multiarray", "_reconstruct"},
        {"torch.serialization", "_get_layout"},
        {"torch._utils", "_rebuild_qtensor"},
        {"torch", "load"},
        {"collections", "Counter"}};
    for (const auto& global : refused) {
      const std::string& module = global.first;
      const std::string& name = global.second;
      CAPTURE(module);
      CAPTURE(name);
      PickleBuilder p;
      p.Proto().Global(module, name).Str("touch " + marker).Tuple1().Reduce().Stop();
      auto tree = Run(p.bytes());
      REQUIRE_FALSE(tree.ok());
      CHECK(tree.error().code() == ErrorCode::kUnsupported);
      CHECK(tree.error().where().offset == kBase + 2);
      CHECK(tree.error().message().find((module + '.').append(name)) != std::string::npos);
      REQUIRE(tree.error().context().size() == 1);
      CHECK(tree.error().context()[0] == "reading \"t/data.pkl\" at pickle byte 2");
    }
    CHECK_FALSE(std::filesystem::exists(marker));
  }

  TEST_CASE("refuses a GLOBAL built on the stack by STACK_GLOBAL the same way") {
    PickleBuilder p;
    p.Proto(4).Str("os").Str("system").Op(0x93).Str("id").Tuple1().Reduce().Stop();
    CheckRefused(p.bytes(), ErrorCode::kUnsupported, 2 + 7 + 11);
  }

  TEST_CASE("refuses opcodes that instantiate classes or use the extension registry") {
    CheckRefused(PickleBuilder().Proto().Mark().Raw("ios\nsystem\n").Stop().bytes(),
                 ErrorCode::kUnsupported, 3);
    CheckRefused(PickleBuilder().Proto().Mark().Global("os", "system").Op('o').Stop().bytes(),
                 ErrorCode::kUnsupported, 3);
    CheckRefused(PickleBuilder().Proto().Op(0x82).Op(1).Stop().bytes(), ErrorCode::kUnsupported, 2);
    CheckRefused(PickleBuilder().Proto(5).Op(0x97).Stop().bytes(), ErrorCode::kUnsupported, 2);
  }

  TEST_CASE("refuses calling an allow-listed value that is not a function") {
    PickleBuilder p;
    p.Proto().Global("torch", "FloatStorage").Int(4).Tuple1().Reduce().Stop();
    CheckRefused(p.bytes(), ErrorCode::kUnsupported, p.size() - 2);
  }

  TEST_CASE("refuses BUILD on anything but an OrderedDict or a tensor") {
    PickleBuilder ordered;
    ordered.Proto().OrderedDict().EmptyDict().Str("_metadata").EmptyDict().SetItem().Build().Stop();
    CHECK(Run(ordered.bytes()).ok());
    PickleBuilder plain;
    plain.Proto().EmptyDict().EmptyDict().Build().Stop();
    CheckRefused(plain.bytes(), ErrorCode::kUnsupported, 4);
  }

  TEST_CASE("refuses NEWOBJ of anything but Parameter") {
    PickleBuilder p;
    p.Proto().Global("collections", "OrderedDict").EmptyTuple().Op(0x81).Stop();
    CheckRefused(p.bytes(), ErrorCode::kUnsupported, p.size() - 2);
  }

  TEST_CASE("refuses adding items to the wrong kind of container") {
    CheckRefused(PickleBuilder().Proto().EmptyDict().Int(1).Append().Stop().bytes(),
                 ErrorCode::kUnsupported, 5);
    CheckRefused(PickleBuilder().Proto().EmptyList().Int(1).Int(2).SetItem().Stop().bytes(),
                 ErrorCode::kUnsupported, 7);
  }

  TEST_CASE("reports stack underflow or a missing MARK or an unset memo entry as corrupt") {
    CheckRefused(PickleBuilder().Proto().Stop().bytes(), ErrorCode::kCorrupt, 2);
    CheckRefused(PickleBuilder().Proto().Int(1).Tuple().Stop().bytes(), ErrorCode::kCorrupt, 4);
    CheckRefused(PickleBuilder().Proto().Int(1).Mark().Tuple1().Stop().bytes(), ErrorCode::kCorrupt,
                 5);
    CheckRefused(PickleBuilder().Proto().Get(3).Stop().bytes(), ErrorCode::kCorrupt, 2);
    CheckRefused(PickleBuilder().Proto().Op(0xff).bytes(), ErrorCode::kCorrupt, 2);
    CheckRefused(PickleBuilder().Proto(6).Stop().bytes(), ErrorCode::kUnsupported, 0);
  }

  TEST_CASE("reports input ending before STOP as truncation") {
    auto tree = Run(PickleBuilder().Proto().EmptyDict().bytes());
    REQUIRE_FALSE(tree.ok());
    CHECK(tree.error().code() == ErrorCode::kCorrupt);
    CHECK(tree.error().where().offset == kBase + 3);
  }

  TEST_CASE("checks declared lengths against the input left before reading") {
    std::string huge = PickleBuilder().Proto().Op('X').Raw("\xff\xff\xff\xff").bytes() + "abc";
    auto tree = Run(huge);
    REQUIRE_FALSE(tree.ok());
    CHECK(tree.error().code() == ErrorCode::kCorrupt);
    CHECK(tree.error().where().offset == kBase + 7);
    const std::string huge8 =
        PickleBuilder().Proto(4).Op(0x8e).Raw(std::string(7, '\xff') + "\x7f").bytes();
    CHECK(Run(huge8).error().code() == ErrorCode::kCorrupt);
    const std::string frame = PickleBuilder().Proto(4).Op(0x95).Raw(std::string(8, '\x7f')).bytes();
    CHECK(Run(frame).error().code() == ErrorCode::kCorrupt);
    const std::string negative = PickleBuilder().Proto().Op('T').Raw("\xff\xff\xff\xff").bytes();
    CHECK(Run(negative).error().code() == ErrorCode::kCorrupt);
  }

  TEST_CASE("refuses strings that are not UTF-8") {
    PickleBuilder p;
    p.Proto().Str("\xc3(").Stop();
    CheckRefused(p.bytes(), ErrorCode::kCorrupt, 2);
  }

  TEST_CASE("bounds the stack and the memo and the nesting") {
    PickleLimits limits;
    limits.max_stack_depth = 100;
    limits.max_memo_entries = 3;
    limits.max_nesting_depth = 8;
    SUBCASE("stack") {
      PickleBuilder p;
      p.Proto();
      for (int i = 0; i < 101; ++i)
        p.Mark();
      auto tree = Run(p.bytes(), limits);
      CHECK(tree.error().code() == ErrorCode::kLimitExceeded);
      CHECK(tree.error().where().offset == kBase + 2 + 100);
    }
    SUBCASE("memo") {
      auto tree =
          Run(PickleBuilder().Proto().None().Put(0).Put(1).Put(0).Put(2).Put(9).bytes(), limits);
      CHECK(tree.error().code() == ErrorCode::kLimitExceeded);
      CHECK(tree.error().where().offset == kBase + 11);
    }
    SUBCASE("nesting") {
      PickleBuilder p;
      p.Proto();
      for (int i = 0; i < 10; ++i)
        p.EmptyList();
      for (int i = 0; i < 9; ++i)
        p.Append();
      auto tree = Run(p.Stop().bytes(), limits);
      CHECK(tree.error().code() == ErrorCode::kLimitExceeded);
      CHECK(tree.error().where().offset == kBase + 2 + 10 + 7);
    }
  }

  TEST_CASE("keeps the default stack cap against a flood of pushes") {
    const std::string flood = PickleBuilder().Proto().bytes() + std::string(20000, ')');
    CHECK(Run(flood).error().code() == ErrorCode::kLimitExceeded);
  }

  TEST_CASE("reads a list that contains itself without looping or leaking") {
    PickleBuilder p;
    p.Proto().EmptyList().Put(0).Get(0).Append().Stop();
    const PickleTree tree = RunOk(p.bytes());
    CHECK(tree.at(tree.root()).items[0] == tree.root());
    CHECK(tree.Describe(tree.root()) == "list of 1 item");
  }

  TEST_CASE("stops at STOP and reports the bytes read") {
    const std::string bytes = PickleBuilder().Proto().Int(5).Stop().bytes() + "trailing";
    const PickleTree tree = RunOk(bytes);
    CHECK(tree.consumed_bytes() == 5);
  }

  TEST_CASE("rebuilds tensors from _rebuild_tensor_v2 with their storage id") {
    PickleBuilder p;
    p.Proto().TensorV2("HalfStorage", "7", 24, 2, {3, 4}, {1, 3}).Stop();
    const PickleTree tree = RunOk(p.bytes());
    REQUIRE(tree.at(tree.root()).kind == Kind::kTensor);
    const PickleTensor& t = tree.tensor(tree.root());
    CHECK(t.storage_offset == 2);
    CHECK(t.shape == std::vector<uint64_t>{3, 4});
    CHECK(t.stride == std::vector<uint64_t>{1, 3});
    CHECK_FALSE(t.dtype.has_value());
    const Object& id = tree.at(tree.at(t.storage).items[0]);
    REQUIRE(id.items.size() == 5);
    CHECK(tree.at(id.items[1]).text == "torch.HalfStorage");
    CHECK(tree.at(id.items[2]).text == "7");
  }

  TEST_CASE("rebuilds _rebuild_tensor_v3 with its dtype and unwraps parameters and subclasses") {
    PickleBuilder v3;
    v3.Proto().Global("torch._utils", "_rebuild_tensor_v3").Mark();
    v3.StorageId("UntypedStorage", "0", 4, "torch.storage").Int(0).Ints({2}).Ints({1});
    v3.Bool(false).OrderedDict().Global("torch", "uint16").Tuple().Reduce().Stop();
    const PickleTree tree = RunOk(v3.bytes());
    CHECK(tree.tensor(tree.root()).dtype == DType::kU16);

    // (func, type, args, state), as torch 2.x writes tensors with Python attributes.
    PickleBuilder full;
    full.Proto().Global("torch._tensor", "_rebuild_from_type_v2").Mark();
    full.Global("torch._utils", "_rebuild_parameter").Global("torch.nn.parameter", "Parameter");
    full.TensorV2("FloatStorage", "0", 1, 0, {}, {}).Bool(true).OrderedDict().Tuple3();
    full.EmptyDict().Tuple().Reduce().Stop();
    const PickleTree unwrapped = RunOk(full.bytes());
    CHECK(unwrapped.at(unwrapped.root()).kind == Kind::kTensor);
    CHECK(unwrapped.tensor(unwrapped.root()).shape.empty());
  }

  TEST_CASE("refuses tensors with negative strides or ranks over the cap or metadata bits") {
    PickleBuilder negative;
    negative.Proto().TensorV2("FloatStorage", "0", 4, 0, {2, 2}, {-1, 1}).Stop();
    auto tree = Run(negative.bytes());
    REQUIRE_FALSE(tree.ok());
    CHECK(tree.error().code() == ErrorCode::kCorrupt);
    CHECK(tree.error().where().offset == kBase + negative.size() - 2);  // the REDUCE

    const std::vector<int64_t> rank17(17, 1);
    PickleBuilder deep;
    deep.Proto().TensorV2("FloatStorage", "0", 1, 0, rank17, rank17).Stop();
    CHECK(Run(deep.bytes()).error().code() == ErrorCode::kLimitExceeded);

    PickleBuilder conj;
    conj.Proto().Global("torch._utils", "_rebuild_tensor_v2").Mark();
    conj.StorageId("FloatStorage", "0", 1).Int(0).Ints({}).Ints({}).Bool(false).OrderedDict();
    conj.EmptyDict().Str("conj").Bool(true).SetItem().Tuple().Reduce().Stop();
    CHECK(Run(conj.bytes()).error().code() == ErrorCode::kUnsupported);
  }

  TEST_CASE("turns Size and device and set and encoded bytes into inert values") {
    PickleBuilder p;
    p.Proto().Mark().Global("torch", "Size").Ints({2, 3}).Tuple1().Reduce();
    p.Global("torch", "device").Str("cuda").Int(1).Tuple2().Reduce();
    p.Global("__builtin__", "set").EmptyList().Int(1).Append().Tuple1().Reduce();
    p.Global("_codecs", "encode").Str("a\xc3\xbf").Str("latin1").Tuple2().Reduce();
    p.Global("__builtin__", "bytearray").Global("_codecs", "encode").Str("x").Str("latin1");
    p.Tuple2().Reduce().Tuple1().Reduce().Global("torch", "bfloat16").Tuple().Stop();
    const PickleTree tree = RunOk(p.bytes());
    const std::vector<Object> items = Items(tree);
    REQUIRE(items.size() == 6);
    CHECK(items[0].kind == Kind::kTuple);
    CHECK(items[1].text == "cuda:1");
    CHECK(items[2].kind == Kind::kSet);
    CHECK(items[3].text == "a\xff");
    CHECK(items[4].text == "x");
    CHECK(items[5].text == "torch.bfloat16");
  }

  TEST_CASE("describes values for the skipped list") {
    PickleBuilder p;
    p.Proto().Mark().None().Int(42).Float(0.5).Str("adam").EmptyList().EmptyDict().Tuple().Stop();
    const PickleTree tree = RunOk(p.bytes());
    std::vector<std::string> texts;
    for (const ObjectId id : tree.at(tree.root()).items)
      texts.push_back(tree.Describe(id));
    CHECK(texts == std::vector<std::string>{"None", "int 42", "float 0.5", "str \"adam\"",
                                            "empty list", "empty dict"});
  }

  TEST_CASE("reads the pickle of a real torch file") {
    const std::string file = test::ReadFile(test::ExternalPath("torch/dtypes_views.pt"));
    auto archive = ZipArchive::Open(AsBytes(file), "dtypes_views.pt");
    REQUIRE(archive.ok());
    const ZipEntry* entry = archive->Find("dtypes_views/data.pkl");
    REQUIRE(entry != nullptr);
    auto bytes = archive->StoredBytes(*entry);
    REQUIRE(bytes.ok());
    auto tree = ReadPickle({*bytes, "dtypes_views.pt", entry->data_offset, entry->name});
    REQUIRE(tree.ok());
    const Object& root = tree->at(tree->root());
    CHECK(root.ordered);
    CHECK(root.items.size() == 2 * 15);
    CHECK(tree->consumed_bytes() == entry->uncompressed_bytes);
  }
}

}  // namespace
}  // namespace cw::pytorch
