// Builds MindSpore .ckpt bytes in memory, field by field, for reader and writer tests.
//
// Deliberately independent of the engine's encoder (engine/formats/mindspore/ckpt_wire.h), so
// that each checks the other. Besides the records MindSpore writes, it makes the ones it never
// writes: packed dims, fields out of order, unknown fields, missing or repeated fields.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace cw::test::ckpt {

// Wire-level pieces.
std::string Varint(uint64_t value);
std::string Key(uint64_t field, int wire_type);
std::string VarintField(uint64_t field, uint64_t value);         // key + varint
std::string LenField(uint64_t field, std::string_view payload);  // key + length + payload

struct TensorSpec {
  std::vector<int64_t> dims = {};
  std::string type = "Float32";
  std::string content = {};
  bool packed_dims = false;
};

// TensorProto: dims (unpacked unless packed_dims), tensor_type, tensor_content.
std::string TensorProto(const TensorSpec& tensor);
// Value: tag (field 1) then tensor (field 2), from an already encoded TensorProto.
std::string Value(std::string_view tag, std::string_view tensor_proto);
// A top-level record: 0x0A, the length, the Value bytes.
std::string Record(std::string_view value);
// The usual record: Record(Value(tag, TensorProto(tensor))).
std::string TensorRecord(std::string_view tag, const TensorSpec& tensor);
// MindSpore's CRC trailer: "crc_num" + `crc` as a 10-byte big-endian integer.
std::string CrcTrailer(uint32_t crc);

// Little-endian element bytes.
std::string F32(std::initializer_list<float> values);
std::string I32(std::initializer_list<int32_t> values);
// numpy's <U{n}: UTF-32LE code points, no terminator.
std::string Utf32(std::u32string_view text);
// "0a2c0a01..." -> bytes, and back.
std::string FromHex(std::string_view hex);
std::string ToHex(std::string_view bytes);

}  // namespace cw::test::ckpt
