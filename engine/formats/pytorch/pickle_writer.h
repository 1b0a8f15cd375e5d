// The data.pkl record of a torch.save archive: a pickled state dict whose tensors point at
// storage records by persistent id (docs/formats/torch-writer.md, 'data.pkl').
//
// The stream uses only what torch 1.13's weights_only unpickler accepts, so every torch from 1.13
// on loads it with or without weights_only: protocol 2, no memo, no BINFLOAT. For tensors
// {name_0: t_0, ...} it is
//
//   PROTO 2
//   [EMPTY_DICT MARK BINUNICODE root_key]              only with a root key: {root_key: {...}}
//   EMPTY_DICT
//   MARK                                                one batch per 1000 items, even for one item
//     BINUNICODE name_i
//     GLOBAL 'torch._utils _rebuild_tensor_v2'
//     MARK
//       MARK BINUNICODE 'storage' GLOBAL 'torch <Name>Storage' BINUNICODE key_i BINUNICODE 'cpu'
//            int numel TUPLE BINPERSID                  numel counts elements
//       int 0                                           storage offset
//       size tuple, stride tuple                        C-contiguous strides, as torch computes
//       them NEWFALSE                                        requires_grad GLOBAL 'collections
//       OrderedDict' EMPTY_TUPLE REDUCE   backward hooks
//     TUPLE REDUCE
//   SETITEMS
//   [SETITEMS]
//   STOP
//
// Ints use BININT1 / BININT2 / BININT / LONG1 by range; tuples of 0-3 items EMPTY_TUPLE / TUPLE1-3,
// longer ones MARK ... TUPLE. For {"w": float32 [2, 3]} this is the 139-byte stream given in hex in
// docs/formats/torch-writer.md ('data.pkl').
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "cw/error.h"
#include "engine/tensor/tensor.h"

namespace cw::pytorch {

// Storage key of tensors[index]: its record is "<prefix>/data/<key>".
std::string StorageKey(size_t index);

// data.pkl for `tensors` (in that order, tensors[i] in storage StorageKey(i)), nested under
// `root_key` when it is not empty.
// Errors (the tensor named in the message):
//   kUnsupported  a dtype without a legacy storage class (U16, U32, U64, F8_*): loading it needs
//                 _rebuild_tensor_v3 and an UntypedStorage, which torch 1.13 cannot read; a name
//                 or root key that is not valid UTF-8; a dim, stride or element count over
//                 INT64_MAX (torch sizes are int64)
//   kUsage        two tensors with the same name (a dict would silently keep one)
//   kLimitExceeded  a name over limits::kMaxNameBytes (what our reader accepts back)
Result<std::string> StateDictPickle(std::span<const TensorInfo> tensors, std::string_view root_key);

}  // namespace cw::pytorch
