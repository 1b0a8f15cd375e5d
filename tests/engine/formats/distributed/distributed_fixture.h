// Building blocks of the distributed tests: parallel-strategy bytes written with libprotobuf
// (schemas/parallel_strategy.proto) and .ckpt rank files written with tests/support/ckpt_builder.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "engine/formats/mindspore/parallel_strategy.h"
#include "parallel_strategy.pb.h"
#include "tests/support/ckpt_builder.h"
#include "tests/support/test_files.h"

namespace cw::distributed::test {

struct Param {
  std::string name;
  std::vector<uint32_t> dev = {2};
  std::vector<int32_t> map = {0, -1};
  std::vector<uint32_t> stages = {0};
  int32_t step = 0;
  int32_t size = 0;
};

// A merged strategy ("<stage>-name") when any parameter has a stage other than 0, else a
// per-rank file of stage 0.
inline std::string StrategyBytes(const std::vector<Param>& params) {
  bool merged = false;
  for (const Param& p : params)
    merged = merged || p.stages != std::vector<uint32_t>{0};
  ::mindspore::straspb::ParallelStrategyMap map;
  map.set_current_stage(1);
  auto* op = map.add_parallel_strategy_item();
  op->set_node_name("MatMul_x");
  op->mutable_parallel_strategys()->set_stage(0);
  op->mutable_parallel_strategys()->add_parallel_strategy()->add_dim(1);
  for (const Param& p : params) {
    for (const uint32_t stage : p.stages) {
      auto* item = map.add_parallel_layout_item();
      item->set_param_name(merged ? std::to_string(stage) + "-" + p.name : p.name);
      auto* layouts = item->mutable_parallel_layouts();
      auto* dev = layouts->add_dev_matrix();
      for (const uint32_t d : p.dev)
        dev->add_dim(d);
      auto* tensor_map = layouts->add_tensor_map();
      for (const int32_t v : p.map)
        tensor_map->add_dim(v);
      layouts->add_param_split_shape();
      layouts->add_indices_offset();
      layouts->set_field(0);
      layouts->set_opt_weight_shard_step(p.step);
      layouts->set_opt_weight_shard_size(p.size);
    }
  }
  std::string out;
  REQUIRE(map.SerializeToString(&out));
  return out;
}

inline mindspore::ParallelStrategy Strategy(const std::vector<Param>& params) {
  const std::string bytes = StrategyBytes(params);
  auto strategy = mindspore::ParseParallelStrategy(AsBytes(bytes), "s.ckpt");
  if (!strategy.ok())
    FAIL(strategy.error().ToString());
  return std::move(strategy).value();
}

struct Record {
  std::string name;
  std::vector<int64_t> dims;
  std::string content;  // float32 bytes
};

inline std::string Ckpt(const std::vector<Record>& records) {
  std::string out;
  for (const Record& r : records) {
    cw::test::ckpt::TensorSpec spec;
    spec.dims = r.dims;
    spec.content = r.content;
    out += cw::test::ckpt::TensorRecord(r.name, spec);
  }
  return out;
}

// n float32 values start, start + 1, ...
inline std::string Floats(size_t n, float start) {
  std::string s(n * 4, '\0');
  for (size_t i = 0; i < n; ++i) {
    const float v = start + static_cast<float>(i);
    std::memcpy(&s[i * 4], &v, 4);
  }
  return s;
}

inline void WriteRank(const std::filesystem::path& folder, uint64_t rank,
                      const std::vector<Record>& records, const std::string& file = "") {
  const std::filesystem::path dir = folder / ("rank_" + std::to_string(rank));
  std::filesystem::create_directories(dir);
  cw::test::WriteFile(dir / (file.empty() ? "checkpoint_" + std::to_string(rank) + ".ckpt" : file),
                      Ckpt(records));
}

}  // namespace cw::distributed::test
