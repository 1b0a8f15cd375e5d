#include "engine/formats/distributed/assembly.h"

#include <doctest/doctest.h>

#include "tests/engine/formats/distributed/distributed_fixture.h"

namespace cw::distributed {
namespace {

using test::Param;
using test::Strategy;

TensorInfo T(std::string name, Shape shape, DType dtype = DType::kF32) {
  return {std::move(name), dtype, shape, ByteSize(dtype, shape).value()};
}

std::vector<RankInventory> Ranks(const std::vector<std::vector<TensorInfo>>& per_rank) {
  std::vector<RankInventory> ranks;
  for (size_t r = 0; r < per_rank.size(); ++r)
    ranks.push_back({r, "dir/rank_" + std::to_string(r) + "/c.ckpt", per_rank[r]});
  return ranks;
}

Result<Assembly> Run(const std::vector<std::vector<TensorInfo>>& per_rank,
                     const std::vector<Param>& params, bool allow_unused = false) {
  const mindspore::ParallelStrategy strategy = Strategy(params);
  AssemblyOptions options;
  options.allow_unused_layouts = allow_unused;
  return Assemble("dir", Ranks(per_rank), strategy, options);
}

void CheckError(const Result<Assembly>& a, ErrorCode code, const std::string& file,
                const std::string& needle) {
  REQUIRE_FALSE(a.ok());
  CAPTURE(a.error().ToString());
  CHECK(a.error().code() == code);
  CHECK(a.error().where().file == file);
  CHECK(a.error().message().find(needle) != std::string::npos);
}

TEST_SUITE("formats.distributed.assembly") {
  TEST_CASE("tensor parallel slices make the full shape with one block per rank") {
    auto a = Run({{T("w", {2, 4}), T("b", {4})}, {T("w", {2, 4}), T("b", {4})}},
                 {{"w", {2}, {0, -1}}, {"b", {2}, {-1}}});
    REQUIRE(a.ok());
    REQUIRE(a->tensors.size() == 2);
    const AssembledTensor& w = a->tensors[0];
    CHECK(w.info.shape == Shape{4, 4});
    CHECK(w.info.byte_size == 64);
    REQUIRE(w.blocks.size() == 2);
    CHECK(w.blocks[1].slice == mindspore::TensorSlice{{2, 2}, {0, 4}});
    CHECK(w.blocks[1].source == TensorSource{1, 0});
    CHECK(w.blocks[1].copies.empty());
    const AssembledTensor& b = a->tensors[1];
    CHECK(b.info.shape == Shape{4});
    REQUIRE(b.blocks.size() == 1);
    CHECK(b.blocks[0].copies == std::vector<TensorSource>{{1, 1}});
  }

  TEST_CASE("data-parallel replicas are copies of the first holder") {
    std::vector<std::vector<TensorInfo>> ranks(4, {T("w", {2, 4})});
    auto a = Run(ranks, {{"w", {2, 2}, {0, -1}}});
    REQUIRE(a.ok());
    const AssembledTensor& w = a->tensors[0];
    REQUIRE(w.blocks.size() == 2);
    CHECK(w.blocks[0].source.rank == 0);
    CHECK(w.blocks[0].copies == std::vector<TensorSource>{{2, 0}});
    CHECK(w.blocks[1].source.rank == 1);
    CHECK(w.blocks[1].copies == std::vector<TensorSource>{{3, 0}});
  }

  TEST_CASE("a block saved by one rank of its group only (remove_redundancy) is taken there") {
    auto a = Run({{T("s", {})}, {T("s", {})}, {T("w", {2, 4}), T("s", {})}, {T("w", {2, 4})}},
                 {{"w", {2, 2}, {0, -1}}});
    REQUIRE(a.ok());
    const AssembledTensor& w = a->tensors[1];
    CHECK(w.info.name == "w");
    CHECK(w.blocks[0].source.rank == 2);
    CHECK(w.blocks[1].source.rank == 3);
  }

  TEST_CASE("a block no rank of its group holds is named with the ranks that should") {
    auto a = Run({{T("w", {2, 4})}, {T("s", {})}, {T("w", {2, 4})}, {T("s", {})}},
                 {{"w", {2, 2}, {0, -1}}});
    CheckError(a, ErrorCode::kCorrupt, "dir/rank_1", "rank_1, rank_3 should hold");
  }

  TEST_CASE("a missing rank and a rank beyond the strategy are refused") {
    CheckError(Run({{T("w", {2, 4})}}, {{"w", {2}, {0, -1}}}), ErrorCode::kCorrupt, "dir/rank_1",
               "rank 1 is missing: the strategy describes 2 ranks");
    CheckError(Run({{T("w", {2, 4})}, {T("w", {2, 4})}, {T("w", {2, 4})}}, {{"w", {2}, {0, -1}}}),
               ErrorCode::kCorrupt, "dir/rank_2/c.ckpt", "beyond the 2 ranks");
  }

  TEST_CASE("slices of different shapes or dtypes name both ranks") {
    CheckError(Run({{T("w", {2, 4})}, {T("w", {3, 4})}}, {{"w", {2}, {0, -1}}}),
               ErrorCode::kCorrupt, "dir/rank_1/c.ckpt", "is [3, 4] F32 in rank_1 but [2, 4] F32");
    CheckError(Run({{T("w", {2, 4})}, {T("w", {2, 4}, DType::kF16)}}, {{"w", {2}, {0, -1}}}),
               ErrorCode::kCorrupt, "dir/rank_1/c.ckpt", "F16 in rank_1");
  }

  TEST_CASE("a slice whose axes do not fit the layout is refused at its rank file") {
    CheckError(Run({{T("w", {4})}, {T("w", {4})}}, {{"w", {2}, {0, -1}}}), ErrorCode::kCorrupt,
               "dir/rank_0/c.ckpt", "does not fit its layout");
  }

  TEST_CASE("a value without layout is one whole block and cut copies of one are refused") {
    auto a = Run({{T("w", {2, 4}), T("global_step", {1})}, {T("w", {2, 4}), T("global_step", {1})}},
                 {{"w", {2}, {0, -1}}});
    REQUIRE(a.ok());
    CHECK_FALSE(a->tensors[1].has_layout);
    CHECK(a->tensors[1].blocks[0].copies.size() == 1);
    CheckError(Run({{T("w", {2, 4}), T("x", {2, 4})}, {T("w", {2, 4}), T("x", {3, 4})}},
                   {{"w", {2}, {0, -1}}}),
               ErrorCode::kCorrupt, "dir/rank_1/c.ckpt", "the strategy does not lay it out");
  }

  TEST_CASE("layouts of parameters no rank holds are refused at the layout or noted on request") {
    const std::vector<std::vector<TensorInfo>> ranks = {{T("w", {2, 4})}, {T("w", {2, 4})}};
    const std::vector<Param> params = {{"w", {2}, {0, -1}}, {"other.weight", {2}, {0, -1}}};
    auto a = Run(ranks, params);
    REQUIRE_FALSE(a.ok());
    CHECK(a.error().where().file == "s.ckpt");
    CHECK(a.error().where().offset.has_value());
    CHECK(a.error().message().find("other.weight") != std::string::npos);
    auto allowed = Run(ranks, params, true);
    REQUIRE(allowed.ok());
    REQUIRE(allowed->notes.size() == 1);
    CHECK(allowed->notes[0].find("--allow-unused-layouts") != std::string::npos);
  }

  TEST_CASE(
      "a kind of training state absent from every rank is a note but half a kind is refused") {
    const std::vector<Param> params = {{"w", {2}, {0, -1}},
                                       {"v", {2}, {0, -1}},
                                       {"adam_m.w", {2}, {0, -1}},
                                       {"adam_m.v", {2}, {0, -1}}};
    auto none = Run({{T("w", {2, 4}), T("v", {2, 4})}, {T("w", {2, 4}), T("v", {2, 4})}}, params);
    REQUIRE(none.ok());
    REQUIRE(none->notes.size() == 1);
    CHECK(none->notes[0].find("2 adam_m tensors no rank file holds") != std::string::npos);
    auto half = Run({{T("w", {2, 4}), T("v", {2, 4}), T("adam_m.w", {2, 4})},
                     {T("w", {2, 4}), T("v", {2, 4}), T("adam_m.w", {2, 4})}},
                    params);
    REQUIRE_FALSE(half.ok());
    CHECK(half.error().message().find("adam_m.v") != std::string::npos);
  }

  TEST_CASE("pipeline stages: global rank g is device g mod N of stage g div N") {
    auto a = Run({{T("e", {2, 4}), T("a", {2, 4})},
                  {T("e", {2, 4}), T("a", {2, 4})},
                  {T("e", {2, 4}), T("b", {2, 4})},
                  {T("e", {2, 4}), T("b", {2, 4})}},
                 {{"e", {2}, {0, -1}, {0, 1}}, {"a", {2}, {0, -1}, {0}}, {"b", {2}, {0, -1}, {1}}});
    REQUIRE(a.ok());
    REQUIRE(a->tensors.size() == 3);
    CHECK(a->tensors[2].info.name == "b");
    CHECK(a->tensors[2].stage == 1);
    CHECK(a->tensors[2].blocks[0].source.rank == 2);
    // The embedding of both stages: stage 0's blocks, stage 1's copies compared with them.
    const AssembledTensor& e = a->tensors[0];
    CHECK(e.stage == 0);
    CHECK(e.blocks[0].copies == std::vector<TensorSource>{{2, 0}});
    CHECK(e.blocks[1].copies == std::vector<TensorSource>{{3, 0}});
  }

  TEST_CASE("a rank holding a tensor its stage does not lay out is refused") {
    CheckError(Run({{T("a", {2, 4})},
                    {T("a", {2, 4})},
                    {T("a", {2, 4}), T("b", {2, 4})},
                    {T("b", {2, 4})}},
                   {{"a", {2}, {0, -1}, {0}}, {"b", {2}, {0, -1}, {1}}}),
               ErrorCode::kCorrupt, "dir/rank_2/c.ckpt", "lays out on stage 0 only");
  }

  TEST_CASE("the optimizer shard multiplies axis 0 by its size") {
    std::vector<std::vector<TensorInfo>> ranks(4, {T("w", {1, 4})});
    auto a = Run(ranks, {{"w", {2, 2}, {0, -1}, {0}, 2, 2}});
    REQUIRE(a.ok());
    CHECK(a->tensors[0].info.shape == Shape{4, 4});
    REQUIRE(a->tensors[0].blocks.size() == 4);
    // Rank 1: tensor-parallel half 1, optimizer piece 0: row 2.
    CHECK(a->tensors[0].blocks[1].source.rank == 1);
    CHECK(a->tensors[0].blocks[1].slice[0].offset == 2);
  }
}

}  // namespace
}  // namespace cw::distributed
