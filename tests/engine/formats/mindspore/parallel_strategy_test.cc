#include "engine/formats/mindspore/parallel_strategy.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "engine/base/limits.h"
#include "parallel_strategy.pb.h"
#include "tests/support/ckpt_builder.h"
#include "tests/support/test_files.h"

namespace cw::mindspore {
namespace {

namespace fs = std::filesystem;
namespace pb = ::mindspore::straspb;
using Axes = std::vector<std::vector<uint32_t>>;
using Groups = std::vector<std::vector<uint64_t>>;

const fs::path kGoldenStick =
    test::ExternalPath("mindspore-distributed/golden-stick-llama2-2p/strategy");
const fs::path kPipeline =
    test::ExternalPath("mindspore-distributed/mindformers-gpt2-pipeline-strategies");

// One layout item, written with libprotobuf from schemas/parallel_strategy.proto.
struct Param {
  std::string name;
  std::vector<uint32_t> dev = {2};
  std::vector<std::vector<int32_t>> maps = {{0, -1}};
  int32_t field = 0;
  int32_t step = 0;
  int32_t size = 0;
  std::vector<int64_t> split = {};
};

std::string Strategy(const std::vector<Param>& params, uint32_t op_stage = 0) {
  pb::ParallelStrategyMap map;
  map.set_current_stage(1);
  auto* op = map.add_parallel_strategy_item();
  op->set_node_name("MatMul_" + params.front().name);
  op->mutable_parallel_strategys()->set_stage(op_stage);
  op->mutable_parallel_strategys()->add_parallel_strategy()->add_dim(2);
  for (const Param& p : params) {
    auto* item = map.add_parallel_layout_item();
    item->set_param_name(p.name);
    auto* layouts = item->mutable_parallel_layouts();
    auto* dev = layouts->add_dev_matrix();
    for (const uint32_t d : p.dev)
      dev->add_dim(d);
    for (const std::vector<int32_t>& m : p.maps) {
      auto* tensor_map = layouts->add_tensor_map();
      for (const int32_t v : m)
        tensor_map->add_dim(v);
    }
    auto* split = layouts->add_param_split_shape();
    for (const int64_t length : p.split)
      split->add_dim(length);
    layouts->add_indices_offset();
    layouts->set_field(p.field);
    layouts->set_opt_weight_shard_step(p.step);
    layouts->set_opt_weight_shard_size(p.size);
  }
  std::string out;
  REQUIRE(map.SerializeToString(&out));
  return out;
}

Result<ParallelStrategy> Parse(const std::string& bytes) {
  return ParseParallelStrategy(AsBytes(bytes), "s.ckpt");
}

ParallelStrategy Load(const fs::path& path) {
  auto strategy = LoadParallelStrategy(path);
  if (!strategy.ok())
    FAIL(strategy.error().ToString());
  return std::move(strategy).value();
}

const ParameterStrategy& Get(const ParallelStrategy& s, const std::string& name) {
  const ParameterStrategy* p = s.Find(name);
  REQUIRE_MESSAGE(p != nullptr, name);
  return *p;
}

// Offsets inside layout items under 128 bytes, found by the item's name (0x0A, length, name):
// the item's 0x1A key is 2 bytes before the name's key, its ParallelLayouts payload starts after
// the name, a 0x12 key and a one-byte length.
uint64_t NameKeyAt(const std::string& bytes, const std::string& name, bool last = false) {
  const std::string field = std::string(1, '\x0a') + static_cast<char>(name.size()) + name;
  const size_t at = last ? bytes.rfind(field) : bytes.find(field);
  REQUIRE(at != std::string::npos);
  return at;
}
uint64_t ItemAt(const std::string& bytes, const std::string& name, bool last = false) {
  return NameKeyAt(bytes, name, last) - 2;
}
uint64_t LayoutsOffset(const std::string& bytes, const std::string& name) {
  return NameKeyAt(bytes, name) + 2 + name.size() + 2;
}

void CheckError(const Result<ParallelStrategy>& s, ErrorCode code, uint64_t offset) {
  REQUIRE_FALSE(s.ok());
  CAPTURE(s.error().ToString());
  CHECK(s.error().code() == code);
  CHECK(s.error().where().file == "s.ckpt");
  CHECK(s.error().where().offset == offset);
}

std::string MapText(const TensorLayout& layout) {
  std::string out;
  for (const auto& axes : layout.tensor_map)
    out += axes.empty() ? "-1," : std::to_string(axes.front()) + ",";
  return out;
}

TEST_SUITE("formats.mindspore.strategy") {
  TEST_CASE("the golden-stick per-rank strategy lists the 363 layouts of a 2-device run") {
    const ParallelStrategy s = Load(kGoldenStick / "ckpt_strategy_rank_0.ckpt");
    REQUIRE(s.sources().size() == 1);
    CHECK(s.sources()[0].current_stage == 1);
    CHECK_FALSE(s.sources()[0].merged);
    CHECK(s.sources()[0].layout_items == 363);
    CHECK(s.operators().size() == 363);
    CHECK(std::all_of(s.operators().begin(), s.operators().end(),
                      [](const OperatorStrategy& op) { return op.stage == 0; }));
    CHECK(s.parameters().size() == 363);
    CHECK(s.stages() == std::vector<uint32_t>{0});
    CHECK(s.devices_per_stage() == 2);
    // The spec's census: [0,-1] x200 (wq, wk, wv, w1, w3), [-1,0] x80 (wo, w2), [-1] x81
    // (norms), [-1,-1] x2 (embedding, lm_head); no field, no optimizer shard.
    std::map<std::string, int> maps;
    for (const ParameterStrategy& p : s.parameters()) {
      REQUIRE(p.stages.size() == 1);
      const ParameterLayout& l = p.first();
      CHECK(l.layout.dev_matrix == std::vector<uint64_t>{2});
      CHECK(l.field == 0);
      CHECK(l.opt_weight_shard_step == 0);
      CHECK(l.opt_weight_shard_size == 0);
      CHECK(l.saved == l.layout);
      ++maps[MapText(l.layout)];
    }
    CHECK(maps ==
          std::map<std::string, int>{{"0,-1,", 200}, {"-1,0,", 80}, {"-1,", 81}, {"-1,-1,", 2}});
    CHECK(MapText(Get(s, "model.layers.0.attention.wq.weight").first().layout) == "0,-1,");
    CHECK(MapText(Get(s, "model.layers.0.feed_forward.w2.weight").first().layout) == "-1,0,");
    CHECK(MapText(Get(s, "model.norm_out.weight").first().layout) == "-1,");
    CHECK(s.Find("model.layers.0.attention.wq") == nullptr);
  }

  TEST_CASE("the golden-stick wq of [20, 40] per rank is rows 0-19 and 20-39 of [40, 40]") {
    const ParallelStrategy s = Load(kGoldenStick / "ckpt_strategy_rank_1.ckpt");
    const TensorLayout& wq = Get(s, "model.layers.0.attention.wq.weight").first().saved;
    const Shape full = FullShape(wq, {20, 40}).value();
    CHECK(full == Shape{40, 40});
    CHECK(SliceOf(wq, full, 0).value() == TensorSlice{{0, 20}, {0, 40}});
    CHECK(SliceOf(wq, full, 1).value() == TensorSlice{{20, 20}, {0, 40}});
    // w2 of [40, 128] per rank: columns, full [40, 256].
    const TensorLayout& w2 = Get(s, "model.layers.0.feed_forward.w2.weight").first().saved;
    CHECK(FullShape(w2, {40, 128}).value() == Shape{40, 256});
    CHECK(SliceOf(w2, {40, 256}, 1).value() == TensorSlice{{0, 40}, {128, 128}});
  }

  TEST_CASE("the golden-stick strategy calls lm_head replicated on both ranks") {
    // Its checkpoints hold different halves: the spec's example of a strategy from another run,
    // which the assembly must catch by comparing replicas.
    const ParallelStrategy s = Load(kGoldenStick / "ckpt_strategy_rank_0.ckpt");
    for (const char* name : {"lm_head.weight", "model.tok_embeddings.embedding_weight"}) {
      CAPTURE(name);
      const TensorLayout& l = Get(s, name).first().saved;
      CHECK(MapText(l) == "-1,-1,");
      CHECK(ReplicaGroups(l) == Groups{{0, 1}});
      CHECK(FullShape(l, {16000, 40}).value() == Shape{16000, 40});
    }
  }

  TEST_CASE("a folder of two identical per-rank files reads as one, the second skipped") {
    const ParallelStrategy s = Load(kGoldenStick);
    REQUIRE(s.sources().size() == 2);
    CHECK_FALSE(s.sources()[0].skipped);
    CHECK(s.sources()[1].skipped);
    CHECK(s.parameters().size() == 363);
    CHECK(s.operators().size() == 363);
  }

  TEST_CASE("the merged 4-device pipeline strategy splits its names into stages 0 and 1") {
    const ParallelStrategy s = Load(kPipeline / "strategy_4_npus.ckpt");
    REQUIRE(s.sources().size() == 1);
    CHECK(s.sources()[0].merged);
    CHECK(s.sources()[0].current_stage == 1);
    CHECK(s.sources()[0].layout_items == 148);
    CHECK(s.sources()[0].stages == std::vector<uint32_t>{0, 1});
    CHECK(s.stages() == std::vector<uint32_t>{0, 1});
    CHECK(s.devices_per_stage() == 2);
    REQUIRE(s.operators().size() == 34);
    CHECK(std::count_if(s.operators().begin(), s.operators().end(),
                        [](const OperatorStrategy& op) { return op.stage == 0; }) == 17);
    uint64_t items = 0;
    for (const ParameterStrategy& p : s.parameters()) {
      CAPTURE(p.name);
      CHECK_FALSE((p.name.starts_with("0-") || p.name.starts_with("1-")));
      items += p.stages.size();
      for (const StageLayout& l : p.stages)
        CHECK(l.layout.layout.dev_matrix == std::vector<uint64_t>{2});
    }
    CHECK(items == 148);
    // The tied embedding is in the first and the last stage; the blocks in one each.
    const ParameterStrategy& embedding =
        Get(s, "backbone.embedding.word_embedding.embedding_table");
    REQUIRE(embedding.stages.size() == 2);
    CHECK(embedding.stages[0].stage == 0);
    CHECK(embedding.stages[1].stage == 1);
    CHECK(Get(s, "backbone.embedding.position_embedding.embedding_table").stages[0].stage == 0);
    CHECK(Get(s, "backbone.blocks.0.attention.dense1.weight").stages[0].stage == 0);
    CHECK(Get(s, "backbone.blocks.1.attention.dense1.weight").stages[0].stage == 1);
    CHECK(Get(s, "backbone.layernorm.gamma").stages.size() == 1);
    CHECK(Get(s, "backbone.layernorm.gamma").stages[0].stage == 1);
  }

  TEST_CASE("the merged 8-device strategy has dev [2, 2]: data-parallel replicas 2 apart") {
    const ParallelStrategy s = Load(kPipeline / "strategy_8_npus.ckpt");
    CHECK(s.stages() == std::vector<uint32_t>{0, 1});
    CHECK(s.devices_per_stage() == 4);
    for (const ParameterStrategy& p : s.parameters()) {
      for (const StageLayout& l : p.stages)
        CHECK(l.layout.layout.dev_matrix == std::vector<uint64_t>{2, 2});
    }
    // Local rank r = 2 * dp + mp: a tensor cut by mp has its halves on {0, 2} and {1, 3}.
    const TensorLayout& dense = Get(s, "backbone.blocks.1.attention.dense1.weight").first().saved;
    CHECK(MapText(dense) == "0,-1,");
    CHECK(ReplicaGroups(dense) == Groups{{0, 2}, {1, 3}});
  }

  TEST_CASE("every real layout equals what libprotobuf parses from the same bytes") {
    for (const fs::path& file :
         {kGoldenStick / "ckpt_strategy_rank_0.ckpt", kPipeline / "strategy_4_npus.ckpt",
          kPipeline / "strategy_8_npus.ckpt"}) {
      CAPTURE(file);
      pb::ParallelStrategyMap map;
      REQUIRE(map.ParseFromString(test::ReadFile(file)));
      const ParallelStrategy s = Load(file);
      for (const pb::ParallelLayoutItem& item : map.parallel_layout_item()) {
        std::string name = item.param_name();
        uint32_t stage = 0;
        if (s.sources()[0].merged) {
          const size_t dash = name.find('-');
          REQUIRE(std::from_chars(name.data(), name.data() + dash, stage).ec == std::errc());
          name = name.substr(dash + 1);
        }
        const ParameterStrategy& p = Get(s, name);
        const auto it = std::find_if(p.stages.begin(), p.stages.end(),
                                     [&](const StageLayout& l) { return l.stage == stage; });
        REQUIRE(it != p.stages.end());
        const ParameterLayout& l = it->layout;
        const pb::ParallelLayouts& want = item.parallel_layouts();
        CHECK(l.layout.dev_matrix == std::vector<uint64_t>(want.dev_matrix(0).dim().begin(),
                                                           want.dev_matrix(0).dim().end()));
        REQUIRE(want.tensor_map_size() == 1);
        REQUIRE(l.layout.tensor_map.size() == static_cast<size_t>(want.tensor_map(0).dim_size()));
        for (int i = 0; i < want.tensor_map(0).dim_size(); ++i) {
          const int32_t v = want.tensor_map(0).dim(i);
          CHECK(l.layout.tensor_map[static_cast<size_t>(i)] ==
                (v == -1 ? std::vector<uint32_t>{}
                         : std::vector<uint32_t>{static_cast<uint32_t>(v)}));
        }
        CHECK(l.field == want.field());
        CHECK(l.opt_weight_shard_step == want.opt_weight_shard_step());
        CHECK(l.opt_weight_shard_size == want.opt_weight_shard_size());
      }
    }
  }

  TEST_CASE("a per-rank file of stage 1 keeps its stage") {
    const auto s = Parse(Strategy({{"w"}}, 1));
    REQUIRE(s.ok());
    CHECK(s->stages() == std::vector<uint32_t>{1});
    CHECK(Get(*s, "w").stages[0].stage == 1);
  }

  TEST_CASE("a folder of per-stage files reads as the merged file of the same stages") {
    test::TempDir dir;
    test::WriteFile(dir / "ckpt_strategy_rank_0.ckpt",
                    Strategy({{"embedding", {2}, {{-1, -1}}}, {"w0"}}, 0));
    test::WriteFile(dir / "ckpt_strategy_rank_2.ckpt",
                    Strategy({{"w1", {2}, {{-1, 0}}}, {"embedding", {2}, {{-1, -1}}}}, 1));
    test::WriteFile(dir / "merge_succeed.txt", "");
    const ParallelStrategy folder = Load(dir.path());
    const std::string merged_bytes = Strategy({{"0-embedding", {2}, {{-1, -1}}},
                                               {"0-w0"},
                                               {"1-w1", {2}, {{-1, 0}}},
                                               {"1-embedding", {2}, {{-1, -1}}}});
    const auto merged = Parse(merged_bytes);
    REQUIRE(merged.ok());
    for (const ParallelStrategy* s : {&folder, &*merged}) {
      CHECK(s->stages() == std::vector<uint32_t>{0, 1});
      REQUIRE(s->parameters().size() == 3);
      CHECK(s->parameters()[0].name == "embedding");
      CHECK(s->parameters()[1].name == "w0");
      CHECK(s->parameters()[2].name == "w1");
      CHECK(s->parameters()[0].stages.size() == 2);
      CHECK(s->parameters()[2].stages[0].stage == 1);
      CHECK(s->parameters()[2].first().SameLayout(merged->parameters()[2].first()));
    }
  }

  TEST_CASE("files giving one stage differently are corrupt, at the item of the later file") {
    test::TempDir dir;
    test::WriteFile(dir / "a.ckpt", Strategy({{"w"}}));
    const std::string other = Strategy({{"w", {2}, {{-1, 0}}}});
    test::WriteFile(dir / "b.ckpt", other);
    const auto s = LoadParallelStrategy(dir.path());
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().code() == ErrorCode::kCorrupt);
    CHECK(s.error().where().file == (dir / "b.ckpt").string());
    CHECK(s.error().where().offset == ItemAt(other, "w"));
  }

  TEST_CASE("a strategy missing a pipeline stage below its last is corrupt") {
    const auto merged = Parse(Strategy({{"0-w"}, {"2-v"}}));
    REQUIRE_FALSE(merged.ok());
    CHECK(merged.error().code() == ErrorCode::kCorrupt);
    CHECK(merged.error().where().file == "s.ckpt");
    test::TempDir dir;
    test::WriteFile(dir / "ckpt_strategy_rank_2.ckpt", Strategy({{"w"}}, 1));
    const auto folder = LoadParallelStrategy(dir.path());
    REQUIRE_FALSE(folder.ok());
    CHECK(folder.error().code() == ErrorCode::kCorrupt);
  }

  TEST_CASE("Layout API tensor maps, one entry per axis, read as lists of device axes") {
    const auto s = Parse(Strategy({{"w", {2, 4}, {{1, 0}, {-1}}}, {"b", {2, 4}, {{0}, {}}}}));
    REQUIRE(s.ok());
    CHECK(Get(*s, "w").first().layout.tensor_map == Axes{{1, 0}, {}});
    CHECK(PiecesPerAxis(Get(*s, "w").first().saved) == std::vector<uint64_t>{8, 1});
    CHECK(Get(*s, "b").first().layout.tensor_map == Axes{{0}});  // the empty entry is dropped
  }

  TEST_CASE("an optimizer shard's saved layout cuts axis 0 again") {
    const auto s = Parse(Strategy({{"w", {4, 2}, {{0, -1}}, 0, 2, 4}, {"v", {4, 2}, {{0, -1}}}}));
    REQUIRE(s.ok());
    const ParameterLayout& w = Get(*s, "w").first();
    CHECK(w.opt_weight_shard_step == 2);
    CHECK(w.opt_weight_shard_size == 4);
    CHECK(PiecesPerAxis(w.layout) == std::vector<uint64_t>{2, 1});
    CHECK(PiecesPerAxis(w.saved) == std::vector<uint64_t>{8, 1});
    CHECK(FullShape(w.saved, {2, 3}).value() == Shape{16, 3});
  }

  TEST_CASE("field-sliced embeddings and uneven splits are unsupported, at the layout") {
    const std::string field = Strategy({{"v"}, {"emb", {2}, {{0, -1}}, 39}});
    CheckError(Parse(field), ErrorCode::kUnsupported, LayoutsOffset(field, "emb"));
    const std::string uneven = Strategy({{"w", {2}, {{0, -1}}, 0, 0, 0, {3, 5}}});
    CheckError(Parse(uneven), ErrorCode::kUnsupported, LayoutsOffset(uneven, "w"));
    const std::string negative = Strategy({{"w", {2}, {{0, -1}}, -1}});
    CheckError(Parse(negative), ErrorCode::kCorrupt, LayoutsOffset(negative, "w"));
  }

  TEST_CASE("impossible tensor maps are corrupt, at the layout") {
    for (const std::vector<int32_t>& map : {std::vector<int32_t>{0, -2}, {1, -1}, {0, 0}}) {
      const std::string bytes = Strategy({{"w", {2}, {map}}, {"v"}});
      CAPTURE(bytes.size());
      CheckError(Parse(bytes), ErrorCode::kCorrupt, LayoutsOffset(bytes, "w"));
    }
    const std::string no_map = Strategy({{"w", {2}, {}}});
    CheckError(Parse(no_map), ErrorCode::kCorrupt, LayoutsOffset(no_map, "w"));
  }

  TEST_CASE("a layout with two device matrices is corrupt, at the layout") {
    pb::ParallelStrategyMap map;
    REQUIRE(map.ParseFromString(Strategy({{"w"}})));
    map.mutable_parallel_layout_item(0)->mutable_parallel_layouts()->add_dev_matrix()->add_dim(2);
    std::string bytes;
    REQUIRE(map.SerializeToString(&bytes));
    CheckError(Parse(bytes), ErrorCode::kCorrupt, LayoutsOffset(bytes, "w"));
  }

  TEST_CASE("device counts that differ between parameters are corrupt, at the later item") {
    const std::string bytes = Strategy({{"w"}, {"v", {4}, {{0, -1}}}});
    CheckError(Parse(bytes), ErrorCode::kCorrupt, ItemAt(bytes, "v"));
  }

  TEST_CASE("a parameter listed twice for one stage is corrupt, at its second item") {
    const std::string bytes = Strategy({{"w"}, {"v"}, {"w", {2}, {{-1, 0}}}});
    CheckError(Parse(bytes), ErrorCode::kCorrupt, ItemAt(bytes, "w", true));
  }

  TEST_CASE("stage-prefixed and plain names in one file are corrupt, at the name") {
    const std::string bytes = Strategy({{"0-w"}, {"v"}});
    CheckError(Parse(bytes), ErrorCode::kCorrupt, NameKeyAt(bytes, "v"));
    const std::string other = Strategy({{"w"}, {"0-v"}});
    CheckError(Parse(other), ErrorCode::kCorrupt, NameKeyAt(other, "0-v"));
  }

  TEST_CASE("a name split at its first dash keeps the dashes of the parameter name") {
    const auto s = Parse(Strategy({{"1-a-b"}, {"0-c"}}));
    REQUIRE(s.ok());
    CHECK(Get(*s, "a-b").stages[0].stage == 1);
    const auto plain = Parse(Strategy({{"a-b"}, {"x-1"}}));
    REQUIRE(plain.ok());
    CHECK(plain->Find("a-b") != nullptr);
  }

  TEST_CASE("a checkpoint, an empty file and a strategy without layouts are not strategies") {
    const std::string ckpt = test::ckpt::TensorRecord("w", {{2}, "Float32", "12345678"});
    CheckError(Parse(ckpt), ErrorCode::kCorrupt, 0);
    CheckError(Parse(""), ErrorCode::kCorrupt, 0);
    CheckError(Parse(test::ckpt::VarintField(1, 1)), ErrorCode::kCorrupt, 0);
  }

  TEST_CASE("JSON strategy files are unsupported, alone or as a whole folder") {
    test::TempDir dir;
    test::WriteFile(dir / "strategy.json", "{}");
    CHECK(LoadParallelStrategy(dir / "strategy.json").error().code() == ErrorCode::kUnsupported);
    CHECK(LoadParallelStrategy(dir.path()).error().code() == ErrorCode::kUnsupported);
    test::TempDir empty;
    CHECK(LoadParallelStrategy(empty.path()).error().code() == ErrorCode::kUsage);
  }

  TEST_CASE("a strategy file over the size cap is refused before it is decoded") {
    test::TempDir dir;
    const fs::path big = dir / "big.ckpt";
    test::WriteFile(big, Strategy({{"w"}}));
    fs::resize_file(big, limits::kMaxStrategyFileBytes + 1);  // sparse: no disk used
    const auto s = LoadParallelStrategy(big);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().code() == ErrorCode::kLimitExceeded);
    CHECK(s.error().where().file == big.string());
  }

  TEST_CASE("every truncation of a real merged strategy's first 2 KiB is a located error") {
    const std::string bytes = test::ReadFile(kPipeline / "strategy_4_npus.ckpt");
    for (size_t n = 0; n < 2048; ++n) {
      const auto s = Parse(bytes.substr(0, n));
      if (s.ok())
        continue;  // a cut between items leaves a valid, smaller strategy
      CAPTURE(n);
      CHECK(s.error().where().file == "s.ckpt");
      CHECK(s.error().where().offset.value_or(~0ull) <= n);
    }
  }

  TEST_CASE("every truncation and bit flip of a small merged strategy is ok or a located error") {
    // Two stages, a tied parameter, a Layout API map and an optimizer shard in under 400 bytes.
    const std::string bytes = Strategy({{"0-emb", {2, 2}, {{-1, -1}}},
                                        {"0-w", {2, 2}, {{1, 0}, {-1}}},
                                        {"1-v", {2, 2}, {{0, -1}}, 0, 2, 2},
                                        {"1-emb", {2, 2}, {{-1, -1}}}});
    REQUIRE(Parse(bytes).ok());
    const auto check = [](const Result<ParallelStrategy>& s, size_t size) {
      if (s.ok())
        return;
      CHECK(s.error().where().file == "s.ckpt");
      CHECK(s.error().code() != ErrorCode::kInternal);
      CHECK(s.error().where().offset.value_or(0) <= size);
    };
    for (size_t i = 0; i < bytes.size(); ++i) {
      CAPTURE(i);
      check(Parse(bytes.substr(0, i)), i);
      for (int bit = 0; bit < 8; ++bit) {
        std::string flipped = bytes;
        flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
        check(Parse(flipped), flipped.size());
      }
    }
  }
}

}  // namespace
}  // namespace cw::mindspore
