#include "engine/formats/pytorch/torch_tensors.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>

#include <doctest/doctest.h>

#include "engine/base/limits.h"
#include "engine/formats/pytorch/pytorch_reader.h"
#include "tests/support/test_files.h"

namespace cw::pytorch {
namespace {

std::vector<int16_t> Copy(const Shape& shape, const std::vector<uint64_t>& stride, uint64_t offset,
                          const std::vector<int16_t>& storage) {
  TensorInfo info{"t", DType::kI16, shape, *ByteSize(DType::kI16, shape)};
  const TensorLayout layout{std::as_bytes(std::span(storage)), 0, offset, stride, false};
  std::vector<int16_t> out(*ElementCount(shape));
  CopyStrided(info, layout, std::as_writable_bytes(std::span(out)));
  return out;
}

// Makes torch files with views of every kind, then writes what torch.load sees in each file
// (given and made): one line per tensor, "path name dtype shape blob" with the C-order bytes.
constexpr const char* kScript = R"(
import collections, os, sys, torch
out, inputs = sys.argv[1], sys.argv[2:]
gen = os.path.join(out, 'gen')
os.makedirs(gen)
base = torch.arange(24, dtype=torch.float32)
sd = collections.OrderedDict()
sd['expanded'] = torch.arange(3.0).expand(4, 3)
sd['fortran'] = torch.arange(6.0).reshape(2, 3).t().contiguous().t()
sd['permuted'] = torch.arange(24, dtype=torch.int16).reshape(2, 3, 4).permute(2, 0, 1)
sd['sliced'] = base.reshape(4, 6)[1:3, ::2]
sd['column'] = torch.arange(10, dtype=torch.float64).reshape(5, 2)[:, 1]
sd['element'] = base[5]
sd['bf16_t'] = torch.arange(12, dtype=torch.bfloat16).reshape(3, 4).t()
sd['size1'] = base.reshape(24, 1)[3:5]
sd['param'] = torch.nn.Parameter(torch.ones(2, 2))
sd['base'] = base
files = []
def save(name, obj, **kw):
    path = os.path.join(gen, name)
    torch.save(obj, path, **kw)
    files.append(path)
save('views.pt', sd)
save('views_p4.pt', sd, pickle_protocol=4)
save('views_legacy.pt', sd, _use_new_zipfile_serialization=False)
save('nested.pt', {'model': {'layer': {0: {'w': torch.ones(2)}}, 'b': torch.zeros(1, dtype=torch.int8)},
                   'epoch': 3, 'args': [1, 2], 'opt': {'state': {}, 'param_groups': [{'lr': 0.1}]}})
save('many.pt', collections.OrderedDict((f'w{i}', torch.full((2,), float(i))) for i in range(1100)))
def flatten(obj, prefix, found):
    for k, v in obj.items():
        name = prefix + '.' + str(k) if prefix else str(k)
        if isinstance(v, dict) and v:
            flatten(v, name, found)
        elif isinstance(v, torch.Tensor):
            found.append((name, v))
with open(os.path.join(out, 'manifest.tsv'), 'w') as manifest:
    for i, path in enumerate(inputs + files):
        found = []
        flatten(torch.load(path, map_location='cpu'), '', found)
        for j, (name, t) in enumerate(found):
            blob = os.path.join(out, f'{i}_{j}.bin')
            with open(blob, 'wb') as f:
                f.write(t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
            shape = ','.join(str(s) for s in t.shape)
            manifest.write(f'{path}\t{name}\t{str(t.dtype)[6:]}\t{shape}\t{blob}\n')
)";

constexpr const char* kPython = "/usr/bin/python3";

bool HaveTorch() {
  return std::filesystem::exists(kPython) &&
         std::system((std::string(kPython) + " -c 'import torch' 2>/dev/null").c_str()) == 0;
}

struct Expected {
  std::string name;
  std::string dtype;
  std::string shape;
  std::string blob;
};

std::string ShapeText(const Shape& shape) {
  std::string text;
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? "," : "") + std::to_string(shape[i]);
  return text;
}

void CompareWithTorch(const std::string& path, const std::vector<Expected>& expected) {
  CAPTURE(path);
  auto file = MappedFile::Open(path);
  REQUIRE(file.ok());
  auto reader = OpenReader(std::move(file).value());
  if (!reader.ok())
    FAIL(reader.error().ToString());
  const std::vector<TensorInfo>& tensors = (*reader)->tensors();
  REQUIRE(tensors.size() == expected.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    CAPTURE(expected[i].name);
    CHECK(tensors[i].name == expected[i].name);
    CHECK(Info(tensors[i].dtype).torch == expected[i].dtype);
    CHECK(ShapeText(tensors[i].shape) == expected[i].shape);
    auto data = (*reader)->Read(i);
    REQUIRE(data.ok());
    CHECK(std::string(AsChars(data->bytes())) == test::ReadFile(expected[i].blob));
  }
}

// One float32 storage "0" of two elements at file offset 500, and over it "pos" of shape
// [rows, 2] with stride [0, 1]: each row is the same two elements, as torch's expand() makes.
struct Expanded {
  std::vector<float> storage = {1, 2};
  StateDict state;
  std::vector<StorageRecord> records;

  explicit Expanded(uint64_t rows) {
    state.storages.push_back({"0", DType::kF32, 2, 4, 8, 0});
    TensorEntry entry;
    entry.info = {"pos", DType::kF32, {rows, 2}, rows * 8};
    entry.stride = {0, 1};
    entry.pickle_offset = 77;
    state.tensors.push_back(entry);
    records.push_back({std::as_bytes(std::span(storage)), "t/data/0", 500});
  }
  Result<std::vector<TensorLayout>> LayOut(uint64_t file_bytes) const {
    return pytorch::LayOut(state, records, "t.pt", "t.pt", file_bytes);
  }
};

TEST_SUITE("formats.pytorch.torch_tensors") {
  TEST_CASE("an expanded tensor may take 64 MiB from a small file and no more, at the tensor") {
    constexpr uint64_t kRows = limits::kMinExpandedTensorCapBytes / 8;
    const auto fits = Expanded(kRows).LayOut(1000);
    REQUIRE(fits.ok());
    CHECK_FALSE(fits->front().contiguous);
    const auto over = Expanded(kRows + 1).LayOut(1000);
    REQUIRE_FALSE(over.ok());
    CHECK(over.error().code() == ErrorCode::kLimitExceeded);
    CHECK(over.error().where().file == "t.pt");
    CHECK(over.error().where().offset == 77u);
  }

  TEST_CASE("expanded tensors together may take no more than one may, at the tensor over it") {
    constexpr uint64_t kRows = limits::kMinExpandedTensorCapBytes / 16;  // half the cap each
    Expanded two(kRows);
    two.state.tensors.push_back(two.state.tensors.front());
    two.state.tensors.back().info.name = "pos2";
    CHECK(two.LayOut(1000).ok());
    two.state.tensors.back().info.shape[0] = kRows + 1;
    two.state.tensors.back().info.byte_size = (kRows + 1) * 8;
    two.state.tensors.back().pickle_offset = 99;
    const auto over = two.LayOut(1000);
    REQUIRE_FALSE(over.ok());
    CHECK(over.error().code() == ErrorCode::kLimitExceeded);
    CHECK(over.error().where().offset == 99u);
  }

  TEST_CASE("an expanded tensor may take as many bytes as its file has when that is more") {
    constexpr uint64_t kFileBytes = 3 * limits::kMinExpandedTensorCapBytes;
    CHECK(Expanded(kFileBytes / 8).LayOut(kFileBytes).ok());
    CHECK(Expanded(kFileBytes / 8 + 1).LayOut(kFileBytes).error().code() ==
          ErrorCode::kLimitExceeded);
  }

  TEST_CASE("copies a permuted 3-d tensor into C order") {
    std::vector<int16_t> storage(24);
    for (int16_t i = 0; i < 24; ++i)
      storage[static_cast<size_t>(i)] = i;
    // arange(24).reshape(2, 3, 4).permute(2, 0, 1): shape (4, 2, 3), stride (1, 12, 4).
    const std::vector<int16_t> got = Copy({4, 2, 3}, {1, 12, 4}, 0, storage);
    CHECK(got == std::vector<int16_t>{0, 4, 8,  12, 16, 20, 1, 5, 9,  13, 17, 21,
                                      2, 6, 10, 14, 18, 22, 3, 7, 11, 15, 19, 23});
  }

  TEST_CASE("copies a 0-dim element and rows with stride 0 and an offset view") {
    const std::vector<int16_t> storage = {10, 11, 12, 13, 14, 15};
    CHECK(Copy({}, {}, 4, storage) == std::vector<int16_t>{14});
    CHECK(Copy({2, 3}, {0, 1}, 1, storage) == std::vector<int16_t>{11, 12, 13, 11, 12, 13});
    CHECK(Copy({2, 2}, {2, 2}, 1, storage) == std::vector<int16_t>{11, 13, 13, 15});
  }

  TEST_CASE("reads every file exactly as torch.load does with views of all kinds") {
    if (!HaveTorch()) {
      MESSAGE("skipped: " << kPython << " cannot import torch");
      return;
    }
    std::vector<std::string> inputs;
    for (const char* dir : {"torch", "torch/tiny_llama_fp32_tied", "torch/tiny_llama_bf16_sharded",
                            "hf/burn_pytorch_reader_tests"}) {
      for (const std::string& name : test::ListFolder(test::ExternalPath(dir))) {
        if (name.ends_with(".pt") || name.ends_with(".bin"))
          inputs.push_back(test::ExternalPath(dir).string() + "/" + name);
      }
    }
    test::TempDir dir;
    test::WriteFile(dir / "expect.py", kScript);
    std::string command =
        std::string(kPython) + " " + (dir / "expect.py").string() + " " + dir.path().string();
    for (const std::string& input : inputs)
      command += " " + input;
    REQUIRE(std::system(command.c_str()) == 0);
    std::map<std::string, std::vector<Expected>> by_file;
    std::vector<std::string> order;
    std::istringstream manifest(test::ReadFile(dir / "manifest.tsv"));
    for (std::string line; std::getline(manifest, line);) {
      std::istringstream fields(line);
      std::string path;
      Expected e;
      std::getline(fields, path, '\t');
      std::getline(fields, e.name, '\t');
      std::getline(fields, e.dtype, '\t');
      std::getline(fields, e.shape, '\t');
      std::getline(fields, e.blob, '\t');
      if (!by_file.contains(path))
        order.push_back(path);
      by_file[path].push_back(e);
    }
    CHECK(order.size() == inputs.size() + 5);
    for (const std::string& path : order)
      CompareWithTorch(path, by_file[path]);
  }
}

}  // namespace
}  // namespace cw::pytorch
