// Tiny safetensors files built in memory for tests, independently of the engine's writer, so that
// a writer bug cannot hide a reader bug.
#pragma once

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace cw::test {

// "<u64 LE declared_length><header><data>": any bytes, to build damaged files.
std::string SafetensorsFile(uint64_t declared_length, std::string_view header,
                            std::string_view data = {});
// The same with the header's own length.
std::string SafetensorsFile(std::string_view header, std::string_view data = {});

// A valid file described tensor by tensor: data packed in the order of Add() calls.
class SafetensorsBuilder {
 public:
  SafetensorsBuilder& Metadata(const std::string& key, const std::string& value);
  // `name` and `dtype` are written between quotes as given (no escaping).
  SafetensorsBuilder& Add(const std::string& name, const std::string& dtype,
                          const std::vector<uint64_t>& shape, const std::string& data);
  // Compact JSON, unpadded.
  std::string Header() const;
  // The whole file, the header padded with spaces to a multiple of 8 bytes.
  std::string Build() const;

 private:
  std::string metadata_;
  std::string entries_;
  std::string data_;
};

// The little-endian bytes of `values`.
template <typename T>
std::string LittleEndian(std::initializer_list<T> values) {
  std::string out(values.size() * sizeof(T), '\0');
  if (values.size() > 0)
    std::memcpy(out.data(), values.begin(), out.size());
  return out;
}

}  // namespace cw::test
