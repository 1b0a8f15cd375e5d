// Protobuf wire format of MindSpore .ckpt records, parsed and encoded by hand.
//
// A .ckpt file is a run of records, each the serialisation of a `Checkpoint` holding one `Value`
// (schemas/checkpoint.proto, docs/formats/mindspore.md):
//
//   record := 0x0A varint(len V) V                        Checkpoint.value (field 1, LEN)
//   V      := 0x0A varint(len tag) tag                    Value.tag (UTF-8)
//             0x12 varint(len T) T                        Value.tensor (field 2, LEN)
//   T      := (0x08 varint(dim))*                         TensorProto.dims, one per axis
//             0x12 varint(len type) type                  TensorProto.tensor_type ("Float32")
//             0x1A varint(len data) data                  TensorProto.tensor_content (raw bytes)
//
// MindSpore writes fields in number order with minimal varints and unpacked dims; the parser also
// accepts any field order, packed dims (0x0A) and unknown fields with a valid wire type (skipped,
// for forward compatibility). It is stricter than libprotobuf where protobuf's leniency would hide
// a damaged file: a singular field given twice, a known field with the wrong wire type, groups
// (wire types 3/4), wire types 6/7, and varints over 10 bytes or 64 bits are all errors.
//
// libprotobuf cannot be used for this: it parses from an `int` size (no files over 2 GiB) and
// copies every `bytes` field. Here tensor_content stays a view into the input, never copied.
// The field-level primitives (varints, keys, length-delimited fields) also read MindSpore's
// parallel-strategy files (strategy_wire.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cw/error.h"
#include "engine/base/byte_reader.h"
#include "engine/base/bytes.h"
#include "engine/tensor/tensor.h"

namespace cw::mindspore {

// Protobuf wire types. 3 and 4 (groups) and 6, 7 do not exist in .ckpt files.
enum class WireType : uint8_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

struct FieldKey {
  uint64_t field = 0;
  WireType wire_type = WireType::kVarint;
  uint64_t key_offset = 0;  // file offset of the key's first byte
};

// One top-level record. Views point into the bytes the ByteReader walks and are valid while they
// live (for a reader: while its MappedFile lives).
struct CkptRecord {
  uint64_t record_offset = 0;    // file offset of the record's 0x0A key
  std::string_view tag;          // non-empty, valid UTF-8, at most limits::kMaxNameBytes
  Shape dims;                    // as stored ([] or [0] for a scalar); none negative
  std::string_view tensor_type;  // as stored, not yet looked up
  ByteSpan content;              // tensor_content, never copied
  uint64_t content_offset = 0;   // file offset of content
};

// A varint of at most 10 bytes whose value fits in 64 bits. Errors at the varint's first byte.
Result<uint64_t> ReadVarint(ByteReader& in);
// A field key; rejects field number 0, numbers over 2^29 - 1 and wire types 3, 4, 6, 7.
Result<FieldKey> ReadKey(ByteReader& in);
// Skips the value of a field whose key was just read.
Status SkipField(ByteReader& in, const FieldKey& key);
// The payload of a length-delimited field whose key was just read, as a reader over exactly its
// bytes (advancing `in` past them). A length past the end of `in` is kCorrupt at the length,
// naming the field as `what`, before anything is read.
Result<ByteReader> ReadLenField(ByteReader& in, std::string_view what);

// Reads one record at the reader's position (rows V4-V12, V17, V18, V21 of the reader table in
// docs/formats/mindspore.md): the 0x0A key, the length (checked against the bytes left before
// anything is read), then the Value with its TensorProto. A Value holding a MapTensor (field 3) is
// kUnsupported, naming the tag. Errors name the tag once it is known (the tag is read before the
// tensor, whatever the field order).
// `first`: the file's first record. There, bytes that are not a Value with a tag (another key, a
// field of the wrong type, no tag) mean another protobuf message saved as .ckpt, such as a
// parallel-strategy file: the error says "not a MindSpore checkpoint" (V4).
Result<CkptRecord> ReadRecord(ByteReader& in, bool first);

// Encoding, for the writer: minimal varints, fields in number order, exactly as MindSpore.
uint64_t VarintSize(uint64_t value);
void AppendVarint(std::string& out, uint64_t value);
// The bytes of a record before its tensor_content: every key and length, the tag, the dims (none
// for a 0-d tensor) and the type. The record is this header followed by `content_bytes` bytes.
// REQUIRES: every dim <= INT64_MAX.
std::string EncodeRecordHeader(std::string_view tag, const Shape& dims,
                               std::string_view tensor_type, uint64_t content_bytes);

// "tag \"<tag>\": ", the prefix of every message about one value.
std::string TagPrefix(std::string_view tag);
// "0x" and `digits` lower-case hex digits.
std::string Hex(uint64_t value, int digits);

}  // namespace cw::mindspore
