// A plan: what a conversion will do, as plain data, computed from a rule set, parameters and the
// input inventory (names, dtypes, shapes; no tensor bytes) before anything is read.
//
// Each step reads some inputs (indices into `inventory`), runs a chain of primitive layout ops
// on the list of their values, and writes the resulting list as its outputs (cast to each
// output's dtype afterwards when it differs from `value_dtype`). A step with no ops and no cast
// is a rename: its bytes pass through untouched. Steps are ordered by their first input, so an
// executor reading them in order reads the input files front to back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cw/error.h"
#include "engine/ruleset/rule_set.h"
#include "engine/tensor/tensor.h"

namespace cw {

// One primitive op on the step's value list (a list of tensors, each a shape plus C-order bytes).
struct PrimitiveOp {
  enum class Kind {
    kReshape,  // value[first] gets shape `dims` (same element count); metadata only
    kPermute,  // value[first] axes permuted by `perm` (PermuteAxes)
    kSplit,    // value[first] cut along `axis` into parts of `dims` sizes, which replace it
    kConcat,   // values[first .. first+count) joined along `axis`, replaced by the result
    kPad,      // value[first] axis `axis` grown to dims[0] with zeros
    kSlice,    // value[first] axis `axis` cut to its first dims[0] entries
    // value[first] (float8_e4m3fn, 2-D) times value[dims[2]] (its float32 block scale, one per
    // dims[0] x dims[1] block) rounded to bfloat16 replaces value[first]; the scale is removed.
    kDequantize,
  };
  Kind kind = Kind::kReshape;
  uint32_t first = 0;
  uint32_t count = 1;
  int axis = 0;                // non-negative
  std::vector<uint64_t> dims;  // see above
  std::vector<int> perm;

  bool operator==(const PrimitiveOp&) const = default;
};

const char* PrimitiveKindName(PrimitiveOp::Kind kind);  // "reshape", "permute", ...

// A step that runs slice by slice (engine/plan/step_slices.h): DeepSeek-V3's 256 experts fused into
// one weight1 of 14 GiB, made one expert at a time.
struct StepSlices {
  // Slices: every output of the step is `count` equal contiguous parts, part k made from the
  // inputs of slice k alone.
  uint32_t count = 0;
  std::vector<std::vector<uint32_t>> inputs;  // per slice: positions in PlanStep::inputs, ascending
  std::vector<PrimitiveOp> ops;      // one slice's ops on its inputs (alike for every slice)
  std::vector<Shape> output_shapes;  // one slice's part of each output
  bool operator==(const StepSlices&) const = default;
};

struct PlanStep {
  enum class Kind {
    kConvert,      // inputs -> ops -> outputs
    kVerifyEqual,  // inputs[0] must equal inputs[1] byte for byte; nothing is written
  };
  Kind kind = Kind::kConvert;
  std::vector<uint64_t> inputs;  // indices into Plan::inventory, in list order
  std::vector<PrimitiveOp> ops;
  DType value_dtype = DType::kF32;  // dtype of the inputs and of the values the ops produce
  std::vector<TensorInfo> outputs;  // in list order; dtype is the dtype written
  Location rule;                    // file:line:column of the rule that made the step
  std::string note;                 // e.g. "copy of model.embed_tokens.weight (tied)"
  bool lossy = false;               // the step loses information (narrowing cast, truncate)
  std::string lossy_reason;

  bool is_rename() const {
    return kind == Kind::kConvert && ops.empty() && inputs.size() == 1 && outputs.size() == 1 &&
           outputs[0].dtype == value_dtype;
  }
  // Set when the step runs slice by slice; working_bytes is then that of one slice.
  std::optional<StepSlices> slices;
  // Owned bytes this step holds at its busiest, with its inputs borrowed from a mapping.
  uint64_t working_bytes = 0;
};

struct DroppedInput {
  uint64_t input = 0;  // index into Plan::inventory
  Location rule;
  std::string reason;          // "dropped by its rule", "tied to ...: checked equal"
  bool checked_equal = false;  // a verify step checks it equals a tensor that is written
  bool restored = false;       // copy_of: the reverse writes it again, so a round trip keeps it
};

// A parameter the plan used, with its value and where the value came from.
struct PlanParameter {
  std::string name;
  std::string value;   // as Value::ToString shows it
  std::string source;  // "config num_hidden_layers", "--set", "solved from X dim 0", "default"
};

struct Plan {
  Direction direction = Direction::kForward;
  std::string rule_file;
  std::vector<TensorInfo> inventory;  // the inputs, as given to MakePlan
  std::vector<PlanStep> steps;
  std::vector<DroppedInput> dropped;
  std::vector<PlanParameter> parameters;  // by name
  std::vector<std::string> notes;         // parameters used, assumptions, lossy steps
  // Forward: the values the planner chose for `detect` parameters (name, text). The reverse
  // gives the names back only with the same values (ParamInputs::detected or --set).
  std::vector<std::pair<std::string, std::string>> detected;
  std::optional<DType> cast;  // the requested cast of floating tensors, if any
  bool lossy = false;         // some step is lossy or some input is dropped

  uint64_t input_bytes = 0;   // all inputs read by steps
  uint64_t output_bytes = 0;  // all outputs written
  // Largest working_bytes of any step: the memory an executor needs when inputs are mapped.
  uint64_t peak_bytes = 0;
  // Largest working_bytes + input bytes of any step: when inputs must be read into memory.
  uint64_t peak_bytes_with_inputs = 0;

  // The outputs of all steps, in step order: the inventory of the converted checkpoint.
  std::vector<TensorInfo> Outputs() const;
};

}  // namespace cw
