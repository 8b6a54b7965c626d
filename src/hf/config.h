// config.json as read from disk: typed, optional look-ups with errors that name the file and key.
// Each model file resolves this once into its own plain struct (BertConfig, ...) with no optional left.
#pragma once
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace hf2onnx::hf {

// Parses JSON from an untrusted file (config.json, a safetensors header, a shard index). Nesting is
// capped at kMaxJsonDepth levels, checked before parsing, so that nothing later recurses out of stack
// (copy, dump, destruction). On failure throws an Error "<invalid> (<why>)", which never quotes the text.
constexpr int kMaxJsonDepth = 64;
nlohmann::json parse_json(const char* begin, const char* end, const std::string& invalid);
// Reads a small text file (config.json, a shard index): a regular file of at most 64 MB, so that a
// symlink to /dev/zero, a FIFO or a huge file is an error rather than a hang or an allocation.
std::string read_json_file(const std::filesystem::path& file);

class Config {
 public:
  static Config load(const std::filesystem::path& file);
  static Config parse(const std::string& json_text, const std::string& source);

  bool has(const std::string& key) const;       // present and not null
  bool contains(const std::string& key) const;  // present, null included (null can differ from absent)
  std::optional<int64_t> get_int(const std::string& key) const;
  std::optional<double> get_double(const std::string& key) const;
  std::optional<bool> get_bool(const std::string& key) const;
  std::optional<std::string> get_string(const std::string& key) const;
  std::vector<std::string> get_strings(const std::string& key) const;  // empty when absent
  std::vector<double> get_doubles(const std::string& key) const;       // empty when absent
  // A diffusers "int or list per block" key: an integer repeated n times, or a list of n integers; `fallback`
  // when absent (an error when absent without one).
  std::vector<int64_t> int_or_list(const std::string& key, size_t n, std::optional<int64_t> fallback) const;
  size_t object_size(const std::string& key) const;                    // e.g. id2label; 0 when absent
  std::optional<Config> get_object(const std::string& key) const;      // a nested object (rope_scaling)

  int64_t require_int(const std::string& key) const;
  // A count that sizes the module tree (layers): an error outside [0, kMaxCount], so that a hostile config cannot
  // make a builder create a billion modules before the checkpoint is compared.
  static constexpr int64_t kMaxCount = 4096;
  std::optional<int64_t> get_count(const std::string& key) const;
  std::string require_string(const std::string& key) const;

  std::string architecture() const;  // architectures[0], else a diffusers config's _class_name; error when absent
  std::string model_type() const;    // "" when absent
  const std::string& source() const { return source_; }
  [[noreturn]] void fail(const std::string& key, const std::string& problem) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
  std::string source_;
};

}  // namespace hf2onnx::hf
