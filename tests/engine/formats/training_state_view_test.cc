#include "engine/formats/training_state_view.h"

#include <doctest/doctest.h>

#include "engine/formats/checkpoint_io.h"
#include "engine/formats/mindspore/training_state.h"
#include "tests/support/ckpt_builder.h"
#include "tests/support/test_files.h"

namespace cw {
namespace {

TEST_SUITE("formats.training_state") {
  TEST_CASE("optimizer moments and accumulators and loop scalars are training state") {
    using mindspore::TrainingStateKind;
    CHECK(TrainingStateKind("adam_m.model.layers.0.attention.wq.weight") == "adam_m");
    CHECK(TrainingStateKind("adam_v.lm_head.weight") == "adam_v");
    CHECK(TrainingStateKind("accu_grads.model.norm_out.weight") == "accu_grads");
    CHECK(TrainingStateKind("moments.w") == "moments");
    CHECK(TrainingStateKind("global_step") == "training scalars");
    CHECK(TrainingStateKind("learning_rate") == "training scalars");
    CHECK(TrainingStateKind("model.layers.0.attention.wq.weight").empty());
    CHECK(TrainingStateKind("adam_m").empty());  // no parameter after the kind
    CHECK(TrainingStateKind("adam_mx.w").empty());
    CHECK(TrainingStateKind("global_step.w").empty());
  }

  TEST_CASE("the view leaves out whole kinds and keeps the rest in order") {
    test::TempDir dir;
    std::string bytes;
    for (const char* name : {"w", "adam_m.w", "v", "adam_m.v", "global_step"}) {
      test::ckpt::TensorSpec spec;
      spec.dims = {1};
      spec.content = test::ckpt::F32({1.0f});
      bytes += test::ckpt::TensorRecord(name, spec);
    }
    test::WriteFile(dir / "t.ckpt", bytes);
    auto reader = OpenCheckpoint(dir / "t.ckpt");
    REQUIRE(reader.ok());
    std::vector<DroppedKind> dropped;
    auto view = WithoutTrainingState(std::move(*reader), &dropped);
    REQUIRE(view->tensors().size() == 2);
    CHECK(view->tensors()[1].name == "v");
    CHECK(view->Read(1).ok());
    CHECK(view->Extents(1).size() == 1);
    REQUIRE(dropped.size() == 2);
    CHECK(dropped[0].kind == "adam_m");
    CHECK(dropped[0].tensors == 2);
    CHECK(dropped[0].bytes == 8);
    CHECK(dropped[1].kind == "training scalars");
  }
}

}  // namespace
}  // namespace cw
