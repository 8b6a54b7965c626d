// A model folder's weights: finds the files (safetensors preferred, shards via *.index.json),
// reads them all and returns name → TensorData views.
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "hf/tensor_data.h"

namespace hf2onnx::hf {

struct Checkpoint {
  std::map<std::string, TensorData> tensors;
  std::vector<std::filesystem::path> files;
  std::string format;  // "safetensors", "pytorch zip", "pytorch legacy"; "+ sharded" when indexed
  uint64_t total_bytes() const;
  // True when `key` is a tensor, directly or under a module prefix ("bert." + key).
  bool has_tensor(const std::string& key) const;
};

Checkpoint load_checkpoint(const std::filesystem::path& model_dir);

// Which weight files a folder has, in order of preference, without reading them (for inspect / errors).
std::vector<std::filesystem::path> find_weight_files(const std::filesystem::path& model_dir);

}  // namespace hf2onnx::hf
