#include "hf/config.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "hf2onnx/error.h"

namespace hf2onnx::hf {

struct Config::Impl {
  nlohmann::json json;
};

nlohmann::json parse_json(const char* begin, const char* end, const std::string& invalid) {
  int depth = 0;
  bool in_string = false;
  for (const char* p = begin; p < end; ++p) {
    if (in_string) {
      if (*p == '\\' && p + 1 < end) ++p;  // (an escaped quote does not end the string)
      else if (*p == '"') in_string = false;
    } else if (*p == '"') {
      in_string = true;
    } else if (*p == '[' || *p == '{') {
      if (++depth > kMaxJsonDepth)
        throw Error(invalid + " (nested deeper than " + std::to_string(kMaxJsonDepth) + " levels at byte " +
                    std::to_string(p - begin) + ")");
    } else if (*p == ']' || *p == '}') {
      --depth;
    }
  }
  try {
    return nlohmann::json::parse(begin, end);
  } catch (const nlohmann::json::parse_error& e) {  // (its what() quotes the text: not used)
    throw Error(invalid + " (syntax error at byte " + std::to_string(e.byte) + ")");
  } catch (const nlohmann::json::exception& e) {
    throw Error(invalid + " (error " + std::to_string(e.id) + ")");
  }
}

namespace {
// What a JSON value is, for messages: never the value itself (the file may not be what it claims).
std::string describe(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::string: return "a string";
    case nlohmann::json::value_t::number_float: return "a non-integer number";
    case nlohmann::json::value_t::number_integer: case nlohmann::json::value_t::number_unsigned: return "an integer";
    case nlohmann::json::value_t::boolean: return "a boolean";
    case nlohmann::json::value_t::array: return "a list";
    case nlohmann::json::value_t::object: return "an object";
    case nlohmann::json::value_t::null: return "null";
    default: return "another type";
  }
}
}  // namespace

std::string read_json_file(const std::filesystem::path& file) {
  constexpr uint64_t kMaxBytes = 64ull << 20;
  std::error_code ec;
  const auto status = std::filesystem::status(file, ec);
  if (ec || !std::filesystem::exists(status)) throw Error(file.string() + ": cannot open");
  if (!std::filesystem::is_regular_file(status)) throw Error(file.string() + ": not a regular file");
  const uint64_t size = std::filesystem::file_size(file, ec);
  if (ec) throw Error(file.string() + ": cannot open");
  if (size > kMaxBytes) throw Error(file.string() + ": too large for a JSON file (" + std::to_string(size) + " bytes; at most 64 MB)");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(file.string() + ": cannot open");
  std::string text(size, '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  text.resize(static_cast<size_t>(in.gcount()));
  return text;
}

Config Config::load(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec))
    throw Error(file.string() + ": cannot open (a model folder needs a config.json)");
  return parse(read_json_file(file), file.string());
}

Config Config::parse(const std::string& json_text, const std::string& source) {
  auto impl = std::make_shared<Impl>();
  impl->json = parse_json(json_text.data(), json_text.data() + json_text.size(), source + ": invalid JSON");
  if (!impl->json.is_object()) throw Error(source + ": expected a JSON object at the top level");
  Config c;
  c.impl_ = impl;
  c.source_ = source;
  return c;
}

void Config::fail(const std::string& key, const std::string& problem) const {
  throw Error(source_ + ": '" + key + "' " + problem);
}

bool Config::has(const std::string& key) const {
  auto it = impl_->json.find(key);
  return it != impl_->json.end() && !it->is_null();
}

bool Config::contains(const std::string& key) const { return impl_->json.contains(key); }

std::optional<int64_t> Config::get_int(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  const auto& v = impl_->json.at(key);
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)) fail(key, "is too large");
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (d >= -9.2e18 && d <= 9.2e18 && d == static_cast<double>(static_cast<int64_t>(d))) return static_cast<int64_t>(d);
  }
  fail(key, "must be an integer, got " + describe(v));
}

std::optional<double> Config::get_double(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  const auto& v = impl_->json.at(key);
  if (v.is_number()) return v.get<double>();
  fail(key, "must be a number, got " + describe(v));
}

std::optional<bool> Config::get_bool(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  const auto& v = impl_->json.at(key);
  if (v.is_boolean()) return v.get<bool>();
  fail(key, "must be true or false, got " + describe(v));
}

std::optional<std::string> Config::get_string(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  const auto& v = impl_->json.at(key);
  if (v.is_string()) return v.get<std::string>();
  fail(key, "must be a string, got " + describe(v));
}

std::vector<std::string> Config::get_strings(const std::string& key) const {
  std::vector<std::string> out;
  if (!has(key)) return out;
  const auto& v = impl_->json.at(key);
  if (!v.is_array()) fail(key, "must be a list of strings, got " + describe(v));
  for (const auto& e : v) {
    if (!e.is_string()) fail(key, "must be a list of strings, got a list holding " + describe(e));
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::vector<double> Config::get_doubles(const std::string& key) const {
  std::vector<double> out;
  if (!has(key)) return out;
  const auto& v = impl_->json.at(key);
  if (!v.is_array()) fail(key, "must be a list of numbers, got " + describe(v));
  for (const auto& e : v) {
    if (!e.is_number()) fail(key, "must be a list of numbers, got a list holding " + describe(e));
    out.push_back(e.get<double>());
  }
  return out;
}

std::optional<int64_t> Config::get_count(const std::string& key) const {
  auto v = get_int(key);
  if (v && (*v < 0 || *v > kMaxCount)) fail(key, "must be between 0 and " + std::to_string(kMaxCount));
  return v;
}

std::vector<int64_t> Config::int_or_list(const std::string& key, size_t n, std::optional<int64_t> fallback) const {
  if (!has(key)) {
    if (!fallback) fail(key, "is missing");
    return std::vector<int64_t>(n, *fallback);
  }
  if (!impl_->json.at(key).is_array()) return std::vector<int64_t>(n, *get_int(key));
  std::vector<int64_t> out;
  for (double d : get_doubles(key)) {
    if (!(d >= -9.2e18 && d <= 9.2e18) || d != static_cast<double>(static_cast<int64_t>(d))) fail(key, "must hold integers");
    out.push_back(static_cast<int64_t>(d));
  }
  if (out.size() != n) fail(key, "must have one entry per block (" + std::to_string(n) + "), got " + std::to_string(out.size()));
  return out;
}

size_t Config::object_size(const std::string& key) const {
  if (!has(key)) return 0;
  const auto& v = impl_->json.at(key);
  if (!v.is_object()) fail(key, "must be an object, got " + describe(v));
  return v.size();
}

std::optional<Config> Config::get_object(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  const auto& v = impl_->json.at(key);
  if (!v.is_object()) fail(key, "must be an object, got " + describe(v));
  Config c;  // (a copy, not dump + parse: the depth was checked when the file was parsed)
  c.impl_ = std::make_shared<Impl>(Impl{v});
  c.source_ = source_ + " (" + key + ")";
  return c;
}

int64_t Config::require_int(const std::string& key) const {
  auto v = get_int(key);
  if (!v) fail(key, "is required but missing");
  return *v;
}

std::string Config::require_string(const std::string& key) const {
  auto v = get_string(key);
  if (!v) fail(key, "is required but missing");
  return *v;
}

std::string Config::architecture() const {
  auto archs = get_strings("architectures");
  if (archs.empty())  // a diffusers model's config names its class instead (UNet2DConditionModel, AutoencoderKL)
    if (auto cls = get_string("_class_name")) return *cls;
  if (archs.empty()) fail("architectures", "is missing or empty; pass --task and a known architecture");
  return archs[0];
}

std::string Config::model_type() const { return get_string("model_type").value_or(""); }

}  // namespace hf2onnx::hf
