// Layout kernels: the primitive tensor ops every rule op is lowered to.
//
// Each kernel works on a C-order (row-major), contiguous buffer of elements `element_bytes` wide
// and knows nothing about dtypes beyond that width, nor about rules or plans. Values are moved
// bit for bit, so every kernel is exact for every dtype. Reshape is not here: it changes only
// the shape a caller keeps next to the bytes.
//
// Every function checks that the buffer sizes agree with the shapes it is given and that axes and
// permutations are valid, and returns kInternal otherwise: the planner has already checked shapes
// against the rules, so a mismatch here is a bug, never bad input.
//
// Results are freshly allocated, owned TensorData. Inputs are only read and may be borrowed views
// into a mapped file; they must stay valid for the duration of the call.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "cw/error.h"
#include "engine/tensor/tensor.h"

namespace cw {

// A view of one tensor's bytes together with its shape.
struct TensorView {
  ByteSpan bytes;
  Shape shape;
};

// Output axis i is input axis perm[i]: out.shape[i] == in.shape[perm[i]]. A 2-D transpose is
// perm {1, 0}. Adjacent axes that stay adjacent are merged first, so the common cases (2-D
// transpose, batched transpose of blocks) run as a cache-blocked copy of contiguous runs.
// REQUIRES: perm is a permutation of 0..rank-1.
Result<TensorData> PermuteAxes(const TensorView& in, std::span<const int> perm,
                               uint32_t element_bytes);

// The shape PermuteAxes produces: out[i] = shape[perm[i]]. REQUIRES: perm valid for shape.
Shape PermutedShape(const Shape& shape, std::span<const int> perm);

// Cuts `in` along `axis` into consecutive parts of the given sizes (which must sum to the axis
// length). Part i has the input's shape with shape[axis] = sizes[i].
Result<std::vector<TensorData>> SplitAxis(const TensorView& in, int axis,
                                          std::span<const uint64_t> sizes, uint32_t element_bytes);

// Joins tensors along `axis`: all inputs have the same rank and agree on every other axis.
Result<TensorData> ConcatAxis(std::span<const TensorView> inputs, int axis, uint32_t element_bytes);

// Grows `axis` to `new_size` by appending zero bytes. REQUIRES: new_size >= shape[axis].
Result<TensorData> PadAxis(const TensorView& in, int axis, uint64_t new_size,
                           uint32_t element_bytes);

// Keeps the first `new_size` entries along `axis`. REQUIRES: new_size <= shape[axis].
Result<TensorData> SliceAxis(const TensorView& in, int axis, uint64_t new_size,
                             uint32_t element_bytes);

}  // namespace cw
