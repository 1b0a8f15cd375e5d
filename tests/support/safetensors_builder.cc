#include "tests/support/safetensors_builder.h"

namespace cw::test {

std::string SafetensorsFile(uint64_t declared_length, std::string_view header,
                            std::string_view data) {
  std::string out;
  for (int i = 0; i < 8; ++i)
    out += static_cast<char>((declared_length >> (8 * i)) & 0xFF);
  out += header;
  out += data;
  return out;
}

std::string SafetensorsFile(std::string_view header, std::string_view data) {
  return SafetensorsFile(header.size(), header, data);
}

SafetensorsBuilder& SafetensorsBuilder::Metadata(const std::string& key, const std::string& value) {
  metadata_ += (metadata_.empty() ? "" : ",") + ("\"" + key + "\":\"" + value + "\"");
  return *this;
}

SafetensorsBuilder& SafetensorsBuilder::Add(const std::string& name, const std::string& dtype,
                                            const std::vector<uint64_t>& shape,
                                            const std::string& data) {
  std::string dims;
  for (const uint64_t d : shape)
    dims += (dims.empty() ? "" : ",") + std::to_string(d);
  const uint64_t begin = data_.size();
  data_ += data;
  entries_ +=
      (entries_.empty() ? "" : ",") +
      ("\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":[" + dims + "],\"data_offsets\":[" +
       std::to_string(begin) + "," + std::to_string(data_.size()) + "]}");
  return *this;
}

std::string SafetensorsBuilder::Header() const {
  std::string json = "{";
  if (!metadata_.empty())
    json += "\"__metadata__\":{" + metadata_ + "}" + (entries_.empty() ? "" : ",");
  return json + entries_ + "}";
}

std::string SafetensorsBuilder::Build() const {
  std::string header = Header();
  header.append((8 - header.size() % 8) % 8, ' ');
  return SafetensorsFile(header, data_);
}

}  // namespace cw::test
