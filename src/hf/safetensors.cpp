#include "hf/safetensors.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/mapped_file.h"
#include "hf/config.h"
#include "hf2onnx/error.h"

namespace hf2onnx::hf {

std::optional<DType> dtype_from_safetensors_name(const std::string& name) {
  static const std::pair<const char*, DType> kNames[] = {
      {"F64", DType::F64}, {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16},
      {"I64", DType::I64}, {"I32", DType::I32}, {"I16", DType::I16}, {"I8", DType::I8},
      {"U8", DType::U8},   {"BOOL", DType::Bool}};
  for (const auto& [n, t] : kNames)
    if (name == n) return t;
  return std::nullopt;
}

std::map<std::string, TensorData> read_safetensors(const std::filesystem::path& path) {
  auto file = MappedFile::open(path);
  const std::string where = path.string();
  uint64_t header_len;
  std::memcpy(&header_len, file->range(0, 8, "safetensors header length"), 8);
  constexpr uint64_t kMaxHeader = 100ull << 20;
  if (header_len > kMaxHeader)
    throw Error(where + ": corrupt safetensors: header length is implausible (over 100 MB; not a safetensors file?)");
  const char* header = reinterpret_cast<const char*>(file->range(8, header_len, "safetensors header"));
  nlohmann::json j = parse_json(header, header + header_len, where + ": corrupt safetensors: header is not valid JSON");
  if (!j.is_object()) throw Error(where + ": corrupt safetensors: header is not a JSON object");
  const uint64_t data_begin = 8 + header_len;
  const uint64_t data_size = file->size() - data_begin;

  std::map<std::string, TensorData> out;
  for (const auto& item : j.items()) {
    const std::string& name = item.key();  // (not a structured binding: lambdas below capture it)
    const auto& info = item.value();
    if (name == "__metadata__") continue;
    auto bad = [&](const std::string& why) {
      return Error(where + ": corrupt safetensors: tensor " + quote_name(name) + ": " + why);
    };
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") || !info.contains("data_offsets"))
      throw bad("entry needs dtype, shape and data_offsets");
    if (!info["dtype"].is_string()) throw bad("dtype is not a string");
    auto dtype = dtype_from_safetensors_name(info["dtype"].get<std::string>());
    if (!dtype) {  // named only when it looks like a dtype name (a message never quotes arbitrary bytes)
      const std::string& n = info["dtype"].get_ref<const std::string&>();
      bool word = n.size() <= 8 && std::all_of(n.begin(), n.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); });
      throw bad(word ? "unsupported dtype " + n : std::string("unsupported dtype"));
    }
    TensorData t;
    t.dtype = *dtype;
    t.source = where;
    t.owner = file;
    if (!info["shape"].is_array()) throw bad("shape is not a list");
    // Sizes are checked in bytes: an element count that fits can still overflow once multiplied by
    // the dtype size (a 0-byte [2^31, 2^31] F32 tensor).
    // Zero dims count as 1 in that check, so that strides (and a later element count) cannot wrap either.
    uint64_t nbytes = dtype_size(*dtype);
    bool empty = false;
    for (const auto& d : info["shape"]) {
      if (!d.is_number_unsigned()) throw bad("shape has a negative or non-integer dimension");
      uint64_t v = d.get<uint64_t>();
      if (__builtin_mul_overflow(nbytes, v ? v : 1, &nbytes) || nbytes > uint64_t(INT64_MAX))
        throw bad("shape is too large");
      empty = empty || v == 0;
      t.shape.push_back(static_cast<int64_t>(v));
    }
    if (empty) nbytes = 0;
    t.strides = contiguous_strides(t.shape);
    const auto& offs = info["data_offsets"];
    if (!offs.is_array() || offs.size() != 2 || !offs[0].is_number_unsigned() || !offs[1].is_number_unsigned())
      throw bad("data_offsets must be two non-negative integers");
    uint64_t b = offs[0].get<uint64_t>(), e = offs[1].get<uint64_t>();
    if (b > e || e > data_size)
      throw bad("data_offsets [" + std::to_string(b) + ", " + std::to_string(e) + "] outside the data section (" +
                std::to_string(data_size) + " bytes; truncated file?)");
    if (e - b != nbytes)
      throw bad("data_offsets span " + std::to_string(e - b) + " bytes but shape " + shape_str(t.shape) + " of " +
                dtype_name(*dtype) + " needs " + std::to_string(nbytes));
    t.data = file->data() + data_begin + b;
    out.emplace(name, std::move(t));
  }
  return out;
}

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    uint64_t n = dtype_size(t.dtype);
    for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8) h += ' ';  // align the data section like the reference writer
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error(path.string() + ": cannot create");
  uint64_t len = h.size();
  out.write(reinterpret_cast<const char*>(&len), 8);
  out.write(h.data(), static_cast<std::streamsize>(h.size()));
  for (const auto& t : tensors) {
    uint64_t n = dtype_size(t.dtype);
    for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
    out.write(static_cast<const char*>(t.data), static_cast<std::streamsize>(n));
  }
  if (!out) throw Error(path.string() + ": write failed");
}

}  // namespace hf2onnx::hf
