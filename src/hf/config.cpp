#include "hf/config.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "hf2onnx/error.h"

namespace hf2onnx::hf {

struct Config::Impl {
  nlohmann::json json;
};

Config Config::load(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(file.string() + ": cannot open (a model folder needs a config.json)");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), file.string());
}

Config Config::parse(const std::string& json_text, const std::string& source) {
  auto impl = std::make_shared<Impl>();
  try {
    impl->json = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": invalid JSON: " + e.what());
  }
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

std::optional<int64_t> Config::get_int(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  const auto& v = impl_->json.at(key);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float() && v.get<double>() == static_cast<double>(static_cast<int64_t>(v.get<double>())))
    return static_cast<int64_t>(v.get<double>());
  fail(key, "must be an integer, got " + v.dump());
}

std::optional<double> Config::get_double(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  const auto& v = impl_->json.at(key);
  if (v.is_number()) return v.get<double>();
  fail(key, "must be a number, got " + v.dump());
}

std::optional<bool> Config::get_bool(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  const auto& v = impl_->json.at(key);
  if (v.is_boolean()) return v.get<bool>();
  fail(key, "must be true or false, got " + v.dump());
}

std::optional<std::string> Config::get_string(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  const auto& v = impl_->json.at(key);
  if (v.is_string()) return v.get<std::string>();
  fail(key, "must be a string, got " + v.dump());
}

std::vector<std::string> Config::get_strings(const std::string& key) const {
  std::vector<std::string> out;
  if (!has(key)) return out;
  const auto& v = impl_->json.at(key);
  if (!v.is_array()) fail(key, "must be a list of strings, got " + v.dump());
  for (const auto& e : v) {
    if (!e.is_string()) fail(key, "must be a list of strings, got " + v.dump());
    out.push_back(e.get<std::string>());
  }
  return out;
}

size_t Config::object_size(const std::string& key) const {
  if (!has(key)) return 0;
  const auto& v = impl_->json.at(key);
  if (!v.is_object()) fail(key, "must be an object, got " + v.dump());
  return v.size();
}

std::optional<Config> Config::get_object(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  const auto& v = impl_->json.at(key);
  if (!v.is_object()) fail(key, "must be an object, got " + v.dump());
  return parse(v.dump(), source_ + " (" + key + ")");
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
  if (archs.empty()) fail("architectures", "is missing or empty; pass --task and a known architecture");
  return archs[0];
}

std::string Config::model_type() const { return get_string("model_type").value_or(""); }

}  // namespace hf2onnx::hf
