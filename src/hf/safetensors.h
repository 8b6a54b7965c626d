// safetensors reader: header validated, tensors returned as views into the memory map.
#pragma once
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "hf/tensor_data.h"

namespace hf2onnx::hf {

// Every tensor of the file, by name. Offsets, sizes and dtypes are checked against the file.
std::map<std::string, TensorData> read_safetensors(const std::filesystem::path& file);

// Writes tensors (contiguous) as a safetensors file; used by tools and tests to make checkpoints.
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;  // numel * dtype_size bytes
};
void write_safetensors(const std::filesystem::path& file, const std::vector<TensorToWrite>& tensors);

std::optional<DType> dtype_from_safetensors_name(const std::string& name);

}  // namespace hf2onnx::hf
