// A rule file, loaded: plain data describing how tensor names and tensors map between the two
// sides of a conversion. docs/rules.md is the reference of the language; this header is its
// in-memory form.
//
// The two sides are `hf` (HuggingFace / PyTorch names) and `ms` (MindSpore names). Forward is
// hf -> ms. Every rule is written in the forward direction; the reverse direction uses the same
// rule with the sides swapped and the op chain inverted and reversed (`reverse_ops`, computed when
// the file is loaded). Nothing here depends on a checkpoint: sizes are expressions evaluated by
// the planner against parameters.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "cw/error.h"
#include "engine/ruleset/expression.h"
#include "engine/ruleset/pattern.h"
#include "engine/tensor/dtype.h"

namespace cw {

enum class Side { kHf, kMs };
enum class Direction { kForward, kReverse };  // forward = hf -> ms

const char* SideName(Side side);                 // "hf", "ms"
const char* DirectionName(Direction direction);  // "forward", "reverse"
inline Side SourceSide(Direction d) { return d == Direction::kForward ? Side::kHf : Side::kMs; }
inline Side TargetSide(Direction d) { return d == Direction::kForward ? Side::kMs : Side::kHf; }

// `params:` entry. A value comes from --set (or the named seed flag), else from the first
// `config_keys` entry present in config.json (top level, then under text_config), else (forward,
// `detect`) from the input names, else from `default_value`. Resolved lazily: only parameters
// something needs are looked up.
struct ParamDecl {
  std::string name;
  ValueType type = ValueType::kInt;
  ValueType item_type = ValueType::kInt;  // lists: the type of every item
  std::vector<std::string> config_keys;
  std::optional<Expr> default_value;  // a constant or an expression over other parameters
  std::string flag;                   // seed CLI flag that sets it ("layers"); empty if none
  std::vector<Value> allowed;         // allowed values; empty = any value of the type
  // Forward, when neither --set nor config.json gives a value: the planner tries `allowed` in
  // order and keeps the first value under which the input names plan (docs/rules.md §3).
  bool detect = false;
  // `count_of: {hf: P, ms: P}`: when neither --set nor config.json gives a value, the number of
  // distinct values the one int placeholder of the source side's pattern takes in the input
  // names that pattern matches (docs/rules.md §3). Absent for a side: not counted there.
  std::optional<NamePattern> count_of_hf;
  std::optional<NamePattern> count_of_ms;
  std::string description;
  Location where;

  const std::optional<NamePattern>& count_of(Side source) const {
    return source == Side::kHf ? count_of_hf : count_of_ms;
  }
  // "int", "list of int", ...
  std::string TypeName() const;
};

// The most value combinations the detected parameters of one rule set may have.
inline constexpr size_t kMaxDetectCandidates = 64;

// `conditions:` entry: a named boolean expression over parameters and placeholders, used by name
// in `when:` (and `optional:`, `tied.when`, op `when`). Linked into its uses when the file is
// loaded (Expr::WithConditions), after the conditions it uses.
struct ConditionDecl {
  std::string name;
  Expr expr;
  Location where;
};

// `placeholders:` entry.
struct PlaceholderDecl {
  std::string name;
  PlaceholderType type;
  // Integers only: when set, every value 0..count-1 must be present for each non-optional rule
  // using the placeholder, and values outside that range do not match.
  std::optional<Expr> count;
  // Idents only, from `values: {hf spelling: ms spelling, ...}`: how ms patterns spell each value
  // (bindings and conditions use the hf spelling). Empty when both sides spell values alike.
  std::vector<std::pair<std::string, std::string>> ms_spelling;
  std::string description;
  Location where;
};

enum class OpKind {
  kTranspose,         // swap two axes (per tensor)
  kPermute,           // permute axes (per tensor)
  kReshape,           // from shape -> to shape (per tensor)
  kConcat,            // N tensors -> 1 along an axis
  kSplit,             // 1 tensor -> N along an axis
  kStack,             // the values of a placeholder -> 1 tensor with a new axis
  kUnstack,           // inverse of stack
  kInterleave,        // N tensors -> 1, chunk by chunk in `groups` groups along an axis
  kDeinterleave,      // inverse of interleave
  kRopeInterleave,    // per head: [half0; half1] rows -> pairs (llama.cpp permute)
  kRopeDeinterleave,  // per head: pairs -> halves (glm3 rearrange: evens, then odds)
  kPad,               // grow an axis with zeros (per tensor)
  kTruncate,          // keep the first rows of an axis (per tensor; drops data)
  // (FP8 weight, float32 block scale) pairs -> bf16 weights; first in a chain only. The scales
  // are consumed: the reverse (kDequantized) writes the weights in bf16 and no scale.
  kDequantize,
  kDequantized,  // the reverse of kDequantize: the weights as they are; not a YAML op
};

const char* OpKindName(OpKind kind);  // the YAML key: "transpose", "rope_interleave", ...
// True for ops applied to each selected tensor of the list independently.
bool IsPerTensor(OpKind kind);

// One op of a rule's chain, with sizes as expressions. Which fields are used depends on `kind`.
struct OpSpec {
  OpKind kind = OpKind::kTranspose;
  Location where;
  int axis = 0;                   // negative counts from the end
  std::vector<int> perm;          // permute; transpose: the two axes
  std::vector<Expr> sizes;        // concat/split sizes; (de)interleave per-group chunk sizes
  std::optional<int> parts;       // split/deinterleave: number of equal parts
  bool equal = false;             // concat/interleave: inputs declared equal in size
  std::optional<Expr> groups;     // (de)interleave
  std::vector<Expr> from_shape;   // reshape (one entry may evaluate to -1)
  std::vector<Expr> to_shape;     // reshape
  std::string over;               // stack/unstack: the placeholder
  std::vector<Expr> heads;        // rope: one for all tensors, or one per selected tensor
  std::optional<Expr> from_size;  // pad/truncate: axis length before
  std::optional<Expr> to_size;    // pad/truncate: axis length after
  std::vector<int> tensors;       // per-tensor ops: indices into the list (empty = all)
  std::vector<Expr> block;        // dequantize: rows and columns one scale covers
  std::optional<Expr> when;       // the op runs only when this holds (parameters only)
};

// The exact inverse of `op`. `inputs` is the number of tensors in the list before `op` runs
// forward (it sizes the inverse of an equal concat or interleave).
OpSpec InverseOp(const OpSpec& op, int inputs);

// A declared tensor shape: one size expression per dimension, over parameters and the rule's
// placeholders (`[vocab, hidden_size]`, `[heads * head_dim, hidden_size]`).
using ShapeDecl = std::vector<Expr>;

// A dtype choice for the tensors a rule writes on one side.
struct DTypeOverride {
  bool keep = true;           // keep the source dtype even when a cast is requested
  DType dtype = DType::kF32;  // when !keep: write this dtype (floating tensors only)
};

// `tied:` — the rule's hf tensor may be absent because it equals another tensor (`to`, an hf
// name converted by a one-to-one rule; it may contain `${param}` segments, no placeholders).
// Forward, an absent tensor is emitted as a copy of the converted `to`; reverse, the tensor is
// checked equal to it and omitted. With no target side the tensor is only checked equal and
// dropped.
struct TiedSpec {
  NamePattern to;
  std::optional<Expr> when;  // parameters only; absent = always
  Location where;
};

// `copy_of:` — the rule's one hf tensor is a byte-for-byte copy of another hf tensor (`to`,
// converted by a one-to-one rule; `${param}` segments allowed, no placeholders), of which the
// ms side keeps one. Forward, the tensor is checked equal to `to` and not written; reverse, it
// is written again as a copy of the tensor `to` is written from (docs/rules.md §5).
struct CopyOfSpec {
  NamePattern to;
  Location where;
};

struct Rule {
  Location where;                   // the rule's "- " in the file
  std::vector<NamePattern> hf;      // inputs forward, in list order
  std::vector<NamePattern> ms;      // outputs forward, in list order
  std::vector<OpSpec> ops;          // forward chain
  std::vector<OpSpec> reverse_ops;  // filled at load: inverted and reversed
  // The hf patterns the reverse writes, by index: all of them but the scales a dequantize
  // consumes (filled at load).
  std::vector<size_t> hf_written;
  std::optional<Expr> when;      // parameters and placeholders
  std::optional<Expr> optional;  // parameters only; true = may match nothing
  bool drop = false;             // one-sided rule: matched tensors are dropped
  std::optional<TiedSpec> tied;
  std::optional<CopyOfSpec> copy_of;
  std::optional<DTypeOverride> dtype_hf;  // dtype of tensors written on the hf side (reverse)
  std::optional<DTypeOverride> dtype_ms;  // dtype of tensors written on the ms side (forward)
  // `shape:`: the declared shape of each pattern of a side (a tensor gathered by a stack: each
  // one's shape), in pattern order; empty when that side declares none.
  std::vector<ShapeDecl> shape_hf;
  std::vector<ShapeDecl> shape_ms;
  std::string description;

  const std::vector<NamePattern>& side(Side s) const { return s == Side::kHf ? hf : ms; }
  const std::vector<OpSpec>& chain(Direction d) const {
    return d == Direction::kForward ? ops : reverse_ops;
  }
  const std::optional<DTypeOverride>& dtype_for(Side written) const {
    return written == Side::kHf ? dtype_hf : dtype_ms;
  }
  const std::vector<ShapeDecl>& shapes(Side s) const {
    return s == Side::kHf ? shape_hf : shape_ms;
  }
  // The pattern of side `written` that names the `output`-th tensor a chain writes there (the hf
  // scales a dequantize consumes are not written back).
  size_t WrittenPattern(Side written, size_t output) const {
    return written == Side::kHf && !hf_written.empty() ? hf_written[output] : output;
  }
  // "rules/llama.yaml:12:5"
  std::string Label() const;
  // "12:5" when the rule is in `file`, else Label(): for messages located in `file`.
  std::string LabelIn(const std::string& file) const;
};

struct RuleSet {
  std::string file;                  // the file loaded (first of `sources`)
  std::vector<std::string> sources;  // that file and every file it extends
  std::string name;
  std::string description;
  std::vector<std::string> models;  // model keys and aliases served
  std::string hf_container;         // hf_layout.container: top-level key nesting the tensors
  // hf_layout.fp8_scales: forward, an F8_E4M3 tensor X with a float32 X<suffix> beside it is
  // dequantised to bfloat16 with that block scale before its rule's ops, and X<suffix> is
  // consumed (DeepSeek-V3's and other block-quantised FP8 checkpoints).
  struct Fp8Scales {
    std::string suffix;
    uint64_t block_rows = 0;
    uint64_t block_cols = 0;
  };
  std::optional<Fp8Scales> hf_fp8_scales;
  // ms_layout.folder: how a forward conversion to a folder writes the MindSpore side.
  enum class MsFolder {
    kHfIndex,      // "hf": safetensors shards + model.safetensors.index.json (the default)
    kMindFormers,  // "mindformers": MindSpore safetensors + a flat param_name_map.json
  };
  MsFolder ms_folder = MsFolder::kHfIndex;
  std::vector<ParamDecl> params;
  std::vector<PlaceholderDecl> placeholders;
  std::vector<ConditionDecl> conditions;
  std::vector<Rule> rules;

  const ParamDecl* FindParam(const std::string& name) const;
  const ParamDecl* FindParamByFlag(const std::string& flag) const;
  const PlaceholderDecl* FindPlaceholder(const std::string& name) const;
  const ConditionDecl* FindCondition(const std::string& name) const;
  // Placeholder types by name, as PatternMatcher::Compile wants them.
  std::map<std::string, PlaceholderType> PlaceholderTypes() const;
};

}  // namespace cw
