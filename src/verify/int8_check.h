// How close a quantized model's outputs are to its FP32 model's, measured in ONNX Runtime on this
// machine (the integer kernels, and so the figures, depend on the CPU).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hf2onnx {

struct OutputAgreement {
  std::string output;
  double cosine = 0, argmax_agreement = 0;
};

struct Int8Check {
  bool measured = false;
  std::string why_not;                  // when not measured (ONNX Runtime missing)
  std::string cpu, ort_version, input;  // where and on what it was measured
  std::vector<OutputAgreement> outputs;
  nlohmann::json to_json() const;
  std::string summary() const;          // one log line's worth (caches left out)
};

// Runs FP32 and INT8 on the .npy files in `inputs_dir` (one per model input). Not measured when ONNX
// Runtime is not installed; throws an Error when it cannot run either model.
Int8Check compare_int8(const std::filesystem::path& fp32, const std::filesystem::path& int8,
                       const std::filesystem::path& inputs_dir, const std::string& input_description);

}  // namespace hf2onnx
