#include "engine/plan/plan_text.h"

#include <cstdio>

namespace cw {
namespace {

std::string Where(const Location& l) {
  std::string s = l.file;
  if (l.line > 0)
    s += ":" + std::to_string(l.line) + ":" + std::to_string(l.column);
  return s;
}

std::string Ints(const std::vector<int>& v) {
  std::string s;
  for (int x : v)
    s += (s.empty() ? "" : ", ") + std::to_string(x);
  return "(" + s + ")";
}

std::string OpText(const PrimitiveOp& op) {
  const std::string v = "#" + std::to_string(op.first);
  const std::string axis = " axis " + std::to_string(op.axis);
  switch (op.kind) {
    case PrimitiveOp::Kind::kReshape:
      return "reshape " + v + " to " + ShapeToString(op.dims);
    case PrimitiveOp::Kind::kPermute:
      return "permute " + v + " axes " + Ints(op.perm);
    case PrimitiveOp::Kind::kSplit:
      return "split " + v + axis + " into " + ShapeToString(op.dims);
    case PrimitiveOp::Kind::kConcat:
      return "concat " + v + "..#" + std::to_string(op.first + op.count - 1) + axis;
    case PrimitiveOp::Kind::kPad:
      return "pad " + v + axis + " to " + std::to_string(op.dims.at(0)) + " with zeros";
    case PrimitiveOp::Kind::kSlice:
      return "slice " + v + axis + " to its first " + std::to_string(op.dims.at(0));
    case PrimitiveOp::Kind::kDequantize:
      return "dequantize " + v + " (float8_e4m3fn) with block scale #" +
             std::to_string(op.dims.at(2)) + " of " + std::to_string(op.dims.at(0)) + " x " +
             std::to_string(op.dims.at(1)) + " to bfloat16";
  }
  return "?";
}

std::string TensorLine(const char* tag, const TensorInfo& t) {
  return std::string("  ") + tag + "  " + t.name + "  " + std::string(Name(t.dtype)) + " " +
         ShapeToString(t.shape) + "  " + FormatBytes(t.byte_size) + "\n";
}

std::string StepText(const Plan& plan, const PlanStep& s, size_t number) {
  std::string out = "step " + std::to_string(number) + "  " + Where(s.rule);
  if (s.kind == PlanStep::Kind::kVerifyEqual)
    out += "  (check only)";
  else if (s.is_rename())
    out += "  (rename, no copy)";
  out += "\n";
  for (uint64_t i : s.inputs)
    out += TensorLine("in ", plan.inventory[i]);
  for (const PrimitiveOp& op : s.ops)
    out += "  op   " + OpText(op) + "\n";
  for (const TensorInfo& t : s.outputs) {
    out += TensorLine("out", t);
    if (t.dtype != s.value_dtype)
      out += "       cast " + std::string(Name(s.value_dtype)) + " -> " +
             std::string(Name(t.dtype)) + "\n";
  }
  if (s.slices) {
    out += "  runs in " + std::to_string(s.slices->count) + " slices of " +
           std::to_string(s.slices->inputs[0].size()) + " input(s), " +
           FormatBytes(s.working_bytes) + " held at once\n";
  }
  if (!s.note.empty())
    out += "  note " + s.note + "\n";
  if (s.lossy)
    out += "  LOSSY " + s.lossy_reason + "\n";
  return out;
}

std::string Escape(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c > 0x7e) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

template <typename T>
std::string JsonList(const std::vector<T>& v) {
  std::string s;
  for (const T& x : v)
    s += (s.empty() ? "" : ", ") + std::to_string(x);
  return "[" + s + "]";
}

std::string TensorJson(const TensorInfo& t, std::optional<uint64_t> index) {
  std::string s = "{";
  if (index)
    s += "\"index\": " + std::to_string(*index) + ", ";
  s += "\"name\": " + Escape(t.name) + ", \"dtype\": " + Escape(std::string(Name(t.dtype))) +
       ", \"shape\": " + JsonList(t.shape) + ", \"bytes\": " + std::to_string(t.byte_size) + "}";
  return s;
}

std::string OpJson(const PrimitiveOp& op) {
  return std::string("{\"op\": \"") + PrimitiveKindName(op.kind) +
         "\", \"first\": " + std::to_string(op.first) + ", \"count\": " + std::to_string(op.count) +
         ", \"axis\": " + std::to_string(op.axis) + ", \"dims\": " + JsonList(op.dims) +
         ", \"perm\": " + JsonList(op.perm) + "}";
}

std::string StepJson(const Plan& plan, const PlanStep& s) {
  std::string in, ops, out;
  for (uint64_t i : s.inputs)
    in += (in.empty() ? "" : ", ") + TensorJson(plan.inventory[i], i);
  for (const PrimitiveOp& op : s.ops)
    ops += (ops.empty() ? "" : ", ") + OpJson(op);
  for (const TensorInfo& t : s.outputs)
    out += (out.empty() ? "" : ", ") + TensorJson(t, std::nullopt);
  return std::string("{\"kind\": \"") +
         (s.kind == PlanStep::Kind::kConvert ? "convert" : "verify_equal") +
         "\", \"rule\": " + Escape(Where(s.rule)) + ", \"inputs\": [" + in + "], \"ops\": [" + ops +
         "], \"value_dtype\": " + Escape(std::string(Name(s.value_dtype))) + ", \"outputs\": [" +
         out + "], \"note\": " + Escape(s.note) + ", \"lossy\": " + (s.lossy ? "true" : "false") +
         ", \"lossy_reason\": " + Escape(s.lossy_reason) +
         ", \"slices\": " + std::to_string(s.slices ? s.slices->count : 0) +
         ", \"working_bytes\": " + std::to_string(s.working_bytes) + "}";
}

}  // namespace

std::string FormatBytes(uint64_t bytes) {
  if (bytes < 1024)
    return std::to_string(bytes) + " B";
  const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes) / 1024.0;
  size_t u = 0;
  while (v >= 1024.0 && u + 1 < std::size(units)) {
    v /= 1024.0;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f %s (%llu bytes)", v, units[u],
                static_cast<unsigned long long>(bytes));
  return buf;
}

std::string PlanToText(const Plan& plan) {
  std::string out = "plan " + std::string(DirectionName(plan.direction)) +
                    (plan.direction == Direction::kForward ? " (hf -> ms)" : " (ms -> hf)") +
                    " from " + plan.rule_file + ": " + std::to_string(plan.steps.size()) +
                    " steps, " + std::to_string(plan.dropped.size()) + " inputs not written";
  if (plan.cast)
    out += ", floating tensors cast to " + std::string(Name(*plan.cast));
  out += "\n";
  for (size_t i = 0; i < plan.steps.size(); ++i)
    out += StepText(plan, plan.steps[i], i + 1);
  if (!plan.dropped.empty()) {
    out += "not written\n";
    for (const DroppedInput& d : plan.dropped)
      out += "  " + plan.inventory[d.input].name + "  (" + Where(d.rule) + ": " + d.reason + ")\n";
  }
  if (!plan.notes.empty()) {
    out += "notes\n";
    for (const std::string& n : plan.notes)
      out += "  " + n + "\n";
  }
  size_t outputs = 0;
  for (const PlanStep& s : plan.steps)
    outputs += s.outputs.size();
  out += "totals\n  read " + std::to_string(plan.inventory.size()) + " tensors, " +
         FormatBytes(plan.input_bytes) + "; write " + std::to_string(outputs) + " tensors, " +
         FormatBytes(plan.output_bytes) + "\n";
  out += "  peak memory " + FormatBytes(plan.peak_bytes) + " with mapped inputs, " +
         FormatBytes(plan.peak_bytes_with_inputs) + " when inputs are read into memory\n";
  if (plan.lossy)
    out += "  this plan loses information: see the LOSSY steps and the inputs not written\n";
  return out;
}

std::string PlanToJson(const Plan& plan) {
  std::string steps, dropped, notes, parameters;
  for (const PlanStep& s : plan.steps)
    steps += (steps.empty() ? "\n    " : ",\n    ") + StepJson(plan, s);
  for (const DroppedInput& d : plan.dropped) {
    dropped += (dropped.empty() ? "" : ", ") + std::string("{\"name\": ") +
               Escape(plan.inventory[d.input].name) + ", \"rule\": " + Escape(Where(d.rule)) +
               ", \"reason\": " + Escape(d.reason) +
               ", \"checked_equal\": " + (d.checked_equal ? "true" : "false") +
               ", \"restored\": " + (d.restored ? "true" : "false") + "}";
  }
  for (const std::string& n : plan.notes)
    notes += (notes.empty() ? "" : ", ") + Escape(n);
  for (const PlanParameter& p : plan.parameters) {
    parameters += (parameters.empty() ? "" : ", ") + std::string("{\"name\": ") + Escape(p.name) +
                  ", \"value\": " + Escape(p.value) + ", \"source\": " + Escape(p.source) + "}";
  }
  return std::string("{\n  \"direction\": \"") + DirectionName(plan.direction) +
         "\",\n  \"rule_file\": " + Escape(plan.rule_file) +
         ",\n  \"cast\": " + (plan.cast ? Escape(std::string(Name(*plan.cast))) : "null") +
         ",\n  \"lossy\": " + (plan.lossy ? "true" : "false") + ",\n  \"steps\": [" + steps +
         (steps.empty() ? "" : "\n  ") + "],\n  \"dropped\": [" + dropped +
         "],\n  \"parameters\": [" + parameters + "],\n  \"notes\": [" + notes +
         "],\n  \"totals\": {\"input_bytes\": " + std::to_string(plan.input_bytes) +
         ", \"output_bytes\": " + std::to_string(plan.output_bytes) +
         ", \"peak_bytes\": " + std::to_string(plan.peak_bytes) +
         ", \"peak_bytes_with_inputs\": " + std::to_string(plan.peak_bytes_with_inputs) + "}\n}\n";
}

}  // namespace cw
