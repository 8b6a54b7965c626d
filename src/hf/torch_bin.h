// pytorch_model.bin: the zip format (torch >= 1.6) and the legacy pickle stream (torch < 1.6),
// read through the restricted unpickler; tensors are views into the memory map.
#pragma once
#include <filesystem>
#include <map>
#include <string>

#include "hf/tensor_data.h"

namespace hf2onnx::hf {

std::map<std::string, TensorData> read_torch_bin(const std::filesystem::path& file);

}  // namespace hf2onnx::hf
