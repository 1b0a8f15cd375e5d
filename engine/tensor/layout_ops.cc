#include "engine/tensor/layout_ops.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "engine/base/checked_math.h"

namespace cw {
namespace {

Error Bug(const std::string& what) { return Error(ErrorCode::kInternal, "layout op: " + what); }

// Checks that `bytes` holds exactly the elements of `shape`.
Status CheckBuffer(const TensorView& t, uint32_t element_bytes) {
  const auto n = ElementCount(t.shape);
  const auto bytes = n ? CheckedMul(*n, element_bytes) : std::nullopt;
  if (!bytes || *bytes != t.bytes.size()) {
    return Bug("buffer of " + std::to_string(t.bytes.size()) + " bytes does not hold shape " +
               ShapeToString(t.shape) + " of " + std::to_string(element_bytes) + "-byte elements");
  }
  return OkStatus();
}

Result<size_t> CheckAxis(const Shape& shape, int axis) {
  if (axis < 0 || static_cast<size_t>(axis) >= shape.size())
    return Bug("axis " + std::to_string(axis) + " is outside shape " + ShapeToString(shape));
  return static_cast<size_t>(axis);
}

uint64_t Product(const Shape& shape, size_t begin, size_t end) {
  uint64_t p = 1;
  for (size_t i = begin; i < end; ++i)
    p *= shape[i];  // the whole shape's product was checked, so no partial product overflows
  return p;
}

// The tensor seen as [outer, axis, inner_bytes] around `axis`.
struct AxisView {
  uint64_t outer;
  uint64_t length;
  uint64_t inner_bytes;
};

AxisView ViewAround(const Shape& shape, size_t axis, uint32_t element_bytes) {
  return {Product(shape, 0, axis), shape[axis],
          Product(shape, axis + 1, shape.size()) * element_bytes};
}

// ---- permutation ----------------------------------------------------------------------------

// A permutation problem after size-1 axes are dropped and axes that stay adjacent are merged.
struct Simplified {
  Shape shape;               // input shape
  std::vector<int> perm;     // output axis i = input axis perm[i]
  uint64_t block_bytes = 0;  // contiguous bytes moved as one element
};

Simplified Simplify(const Shape& shape, std::span<const int> perm, uint32_t element_bytes) {
  // Keep input axes longer than 1, renumbered.
  std::vector<int> new_index(shape.size(), -1);
  Shape kept;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] != 1) {
      new_index[i] = static_cast<int>(kept.size());
      kept.push_back(shape[i]);
    }
  }
  std::vector<int> p;
  for (int axis : perm) {
    if (new_index[static_cast<size_t>(axis)] >= 0)
      p.push_back(new_index[static_cast<size_t>(axis)]);
  }
  // Merge runs of output axes that are consecutive input axes.
  std::vector<std::vector<int>> runs;
  for (int axis : p) {
    if (!runs.empty() && runs.back().back() + 1 == axis)
      runs.back().push_back(axis);
    else
      runs.push_back({axis});
  }
  std::vector<int> run_order(runs.size());
  std::iota(run_order.begin(), run_order.end(), 0);
  std::sort(run_order.begin(), run_order.end(), [&](int a, int b) {
    return runs[static_cast<size_t>(a)][0] < runs[static_cast<size_t>(b)][0];
  });
  Simplified s;
  std::vector<int> run_to_input(runs.size());
  for (size_t k = 0; k < run_order.size(); ++k) {
    const auto& run = runs[static_cast<size_t>(run_order[k])];
    uint64_t len = 1;
    for (int axis : run)
      len *= kept[static_cast<size_t>(axis)];
    run_to_input[static_cast<size_t>(run_order[k])] = static_cast<int>(k);
    s.shape.push_back(len);
  }
  for (size_t r = 0; r < runs.size(); ++r)
    s.perm.push_back(run_to_input[r]);
  s.block_bytes = element_bytes;
  // A last axis that stays last is one contiguous block.
  if (!s.perm.empty() && s.perm.back() == static_cast<int>(s.shape.size()) - 1) {
    s.block_bytes *= s.shape.back();
    s.shape.pop_back();
    s.perm.pop_back();
  }
  return s;
}

// out[c][r] = in[r][c] for a [rows, cols] matrix of `Block`-sized elements, in cache tiles.
template <size_t Block>
void TransposeTiled(const std::byte* in, std::byte* out, uint64_t rows, uint64_t cols,
                    uint64_t block_bytes) {
  constexpr uint64_t kTile = 32;
  const uint64_t bb = Block ? Block : block_bytes;
  for (uint64_t r0 = 0; r0 < rows; r0 += kTile) {
    const uint64_t r1 = std::min(rows, r0 + kTile);
    for (uint64_t c0 = 0; c0 < cols; c0 += kTile) {
      const uint64_t c1 = std::min(cols, c0 + kTile);
      for (uint64_t r = r0; r < r1; ++r) {
        for (uint64_t c = c0; c < c1; ++c)
          std::memcpy(out + (c * rows + r) * bb, in + (r * cols + c) * bb, Block ? Block : bb);
      }
    }
  }
}

#if defined(__SSE2__)
// An 8 x 8 block of 16-bit values in registers: rows `in` (stride in_stride bytes) become rows
// of `out` (stride out_stride) as columns, in three rounds of interleaving.
inline void Transpose8x8Of16(const std::byte* in, uint64_t in_stride, std::byte* out,
                             uint64_t out_stride) {
  __m128i r[8], a[8], b[8];
  for (int i = 0; i < 8; ++i)
    r[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i * in_stride));
  for (int i = 0; i < 4; ++i) {
    a[2 * i] = _mm_unpacklo_epi16(r[2 * i], r[2 * i + 1]);
    a[2 * i + 1] = _mm_unpackhi_epi16(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {  // rows 0-3, then rows 4-7
    const __m128i* q = a + 4 * h;
    b[4 * h] = _mm_unpacklo_epi32(q[0], q[2]);      // columns 0, 1
    b[4 * h + 1] = _mm_unpackhi_epi32(q[0], q[2]);  // columns 2, 3
    b[4 * h + 2] = _mm_unpacklo_epi32(q[1], q[3]);  // columns 4, 5
    b[4 * h + 3] = _mm_unpackhi_epi32(q[1], q[3]);  // columns 6, 7
  }
  for (int j = 0; j < 4; ++j) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * j * out_stride),
                     _mm_unpacklo_epi64(b[j], b[4 + j]));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + (2 * j + 1) * out_stride),
                     _mm_unpackhi_epi64(b[j], b[4 + j]));
  }
}

// 16-bit elements (bf16, fp16: most weights) through the register kernel: a 2-byte copy per
// element made the expert transposes of a DeepSeek-V3 conversion 43% of its CPU time.
template <>
void TransposeTiled<2>(const std::byte* in, std::byte* out, uint64_t rows, uint64_t cols,
                       uint64_t) {
  constexpr uint64_t kTile = 64;
  const uint64_t rows8 = rows / 8 * 8, cols8 = cols / 8 * 8;
  for (uint64_t r0 = 0; r0 < rows8; r0 += kTile) {
    const uint64_t r1 = std::min(rows8, r0 + kTile);
    for (uint64_t c0 = 0; c0 < cols8; c0 += kTile) {
      const uint64_t c1 = std::min(cols8, c0 + kTile);
      for (uint64_t r = r0; r < r1; r += 8) {
        for (uint64_t c = c0; c < c1; c += 8)
          Transpose8x8Of16(in + (r * cols + c) * 2, cols * 2, out + (c * rows + r) * 2, rows * 2);
      }
    }
  }
  // The edges: columns past cols8 of every row, then rows past rows8.
  for (uint64_t r = 0; r < rows8; ++r) {
    for (uint64_t c = cols8; c < cols; ++c)
      std::memcpy(out + (c * rows + r) * 2, in + (r * cols + c) * 2, 2);
  }
  for (uint64_t r = rows8; r < rows; ++r) {
    for (uint64_t c = 0; c < cols; ++c)
      std::memcpy(out + (c * rows + r) * 2, in + (r * cols + c) * 2, 2);
  }
}
#endif

void Transpose2D(const std::byte* in, std::byte* out, uint64_t rows, uint64_t cols,
                 uint64_t block_bytes) {
  switch (block_bytes) {
    case 1:
      return TransposeTiled<1>(in, out, rows, cols, 1);
    case 2:
      return TransposeTiled<2>(in, out, rows, cols, 2);
    case 4:
      return TransposeTiled<4>(in, out, rows, cols, 4);
    case 8:
      return TransposeTiled<8>(in, out, rows, cols, 8);
    default:
      return TransposeTiled<0>(in, out, rows, cols, block_bytes);
  }
}

// Any permutation: walks the output in order, copying one block per step.
void PermuteGeneral(const Simplified& s, const std::byte* in, std::byte* out) {
  const size_t rank = s.shape.size();
  std::vector<uint64_t> in_stride(rank, s.block_bytes);
  for (size_t i = rank - 1; i > 0; --i)
    in_stride[i - 1] = in_stride[i] * s.shape[i];
  std::vector<uint64_t> out_len(rank), stride(rank);
  for (size_t k = 0; k < rank; ++k) {
    out_len[k] = s.shape[static_cast<size_t>(s.perm[k])];
    stride[k] = in_stride[static_cast<size_t>(s.perm[k])];
  }
  std::vector<uint64_t> index(rank, 0);
  const uint64_t total = Product(s.shape, 0, rank);
  uint64_t in_offset = 0;
  for (uint64_t n = 0; n < total; ++n) {
    std::memcpy(out + n * s.block_bytes, in + in_offset, s.block_bytes);
    for (size_t k = rank; k-- > 0;) {
      if (++index[k] < out_len[k]) {
        in_offset += stride[k];
        break;
      }
      in_offset -= stride[k] * (out_len[k] - 1);
      index[k] = 0;
    }
  }
}

}  // namespace

Shape PermutedShape(const Shape& shape, std::span<const int> perm) {
  Shape out;
  for (int axis : perm)
    out.push_back(shape[static_cast<size_t>(axis)]);
  return out;
}

Result<TensorData> PermuteAxes(const TensorView& in, std::span<const int> perm,
                               uint32_t element_bytes) {
  CW_RETURN_IF_ERROR(CheckBuffer(in, element_bytes));
  std::vector<bool> seen(in.shape.size(), false);
  bool valid = perm.size() == in.shape.size();
  for (int axis : perm) {
    valid = valid && axis >= 0 && static_cast<size_t>(axis) < seen.size() &&
            !seen[static_cast<size_t>(axis)];
    if (valid)
      seen[static_cast<size_t>(axis)] = true;
  }
  if (!valid)
    return Bug("permutation does not fit shape " + ShapeToString(in.shape));
  TensorData out = TensorData::Allocate(in.bytes.size());
  if (in.bytes.empty())
    return out;
  const Simplified s = Simplify(in.shape, perm, element_bytes);
  std::byte* dst = out.mutable_bytes().data();
  const std::byte* src = in.bytes.data();
  const size_t rank = s.shape.size();
  if (rank == 0) {
    std::memcpy(dst, src, in.bytes.size());
  } else if (rank >= 2 && s.perm[rank - 1] == static_cast<int>(rank) - 2 &&
             s.perm[rank - 2] == static_cast<int>(rank) - 1 &&
             std::is_sorted(s.perm.begin(), s.perm.end() - 2)) {
    // A batch of 2-D transposes: the dominant case (weights, rotary halves).
    const uint64_t rows = s.shape[rank - 2], cols = s.shape[rank - 1];
    const uint64_t matrix_bytes = rows * cols * s.block_bytes;
    const uint64_t batch = Product(s.shape, 0, rank - 2);
    for (uint64_t b = 0; b < batch; ++b)
      Transpose2D(src + b * matrix_bytes, dst + b * matrix_bytes, rows, cols, s.block_bytes);
  } else {
    PermuteGeneral(s, src, dst);
  }
  return out;
}

Result<std::vector<TensorData>> SplitAxis(const TensorView& in, int axis,
                                          std::span<const uint64_t> sizes, uint32_t element_bytes) {
  CW_RETURN_IF_ERROR(CheckBuffer(in, element_bytes));
  CW_ASSIGN_OR_RETURN(const size_t a, CheckAxis(in.shape, axis));
  const AxisView v = ViewAround(in.shape, a, element_bytes);
  uint64_t sum = 0;
  for (uint64_t s : sizes)
    sum += std::min<uint64_t>(s, v.length + 1);  // capped so a bad list cannot wrap
  if (sum != v.length)
    return Bug("split sizes do not add up to axis " + std::to_string(axis) + " of " +
               ShapeToString(in.shape));
  std::vector<TensorData> parts;
  uint64_t start = 0;
  for (uint64_t size : sizes) {
    TensorData part = TensorData::Allocate(v.outer * size * v.inner_bytes);
    const uint64_t run = size * v.inner_bytes;
    for (uint64_t o = 0; o < v.outer && run > 0; ++o) {
      std::memcpy(part.mutable_bytes().data() + o * run,
                  in.bytes.data() + (o * v.length + start) * v.inner_bytes, run);
    }
    start += size;
    parts.push_back(std::move(part));
  }
  return parts;
}

Result<TensorData> ConcatAxis(std::span<const TensorView> inputs, int axis,
                              uint32_t element_bytes) {
  if (inputs.empty())
    return Bug("concat of no tensors");
  CW_ASSIGN_OR_RETURN(const size_t a, CheckAxis(inputs[0].shape, axis));
  uint64_t length = 0;
  for (const TensorView& t : inputs) {
    CW_RETURN_IF_ERROR(CheckBuffer(t, element_bytes));
    Shape expect = inputs[0].shape;
    expect[a] = t.shape.size() == expect.size() ? t.shape[a] : 0;
    if (t.shape != expect)
      return Bug("concat of " + ShapeToString(t.shape) + " with " + ShapeToString(inputs[0].shape));
    length += t.shape[a];
  }
  const AxisView v = ViewAround(inputs[0].shape, a, element_bytes);
  TensorData out = TensorData::Allocate(v.outer * length * v.inner_bytes);
  uint64_t start = 0;
  for (const TensorView& t : inputs) {
    const uint64_t run = t.shape[a] * v.inner_bytes;
    for (uint64_t o = 0; o < v.outer && run > 0; ++o) {
      std::memcpy(out.mutable_bytes().data() + (o * length + start) * v.inner_bytes,
                  t.bytes.data() + o * run, run);
    }
    start += t.shape[a];
  }
  return out;
}

Result<TensorData> PadAxis(const TensorView& in, int axis, uint64_t new_size,
                           uint32_t element_bytes) {
  CW_RETURN_IF_ERROR(CheckBuffer(in, element_bytes));
  CW_ASSIGN_OR_RETURN(const size_t a, CheckAxis(in.shape, axis));
  const AxisView v = ViewAround(in.shape, a, element_bytes);
  const auto out_bytes = CheckedMul(v.outer * v.inner_bytes, new_size);
  if (new_size < v.length || !out_bytes)
    return Bug("cannot pad axis of " + std::to_string(v.length) + " to " +
               std::to_string(new_size));
  TensorData out = TensorData::Allocate(*out_bytes);
  std::memset(out.mutable_bytes().data(), 0, *out_bytes);
  const uint64_t run = v.length * v.inner_bytes;
  for (uint64_t o = 0; o < v.outer && run > 0; ++o) {
    std::memcpy(out.mutable_bytes().data() + o * new_size * v.inner_bytes,
                in.bytes.data() + o * run, run);
  }
  return out;
}

Result<TensorData> SliceAxis(const TensorView& in, int axis, uint64_t new_size,
                             uint32_t element_bytes) {
  CW_RETURN_IF_ERROR(CheckBuffer(in, element_bytes));
  CW_ASSIGN_OR_RETURN(const size_t a, CheckAxis(in.shape, axis));
  const AxisView v = ViewAround(in.shape, a, element_bytes);
  if (new_size > v.length)
    return Bug("cannot slice axis of " + std::to_string(v.length) + " to " +
               std::to_string(new_size));
  const uint64_t run = new_size * v.inner_bytes;
  TensorData out = TensorData::Allocate(v.outer * run);
  for (uint64_t o = 0; o < v.outer && run > 0; ++o) {
    std::memcpy(out.mutable_bytes().data() + o * run,
                in.bytes.data() + o * v.length * v.inner_bytes, run);
  }
  return out;
}

}  // namespace cw
