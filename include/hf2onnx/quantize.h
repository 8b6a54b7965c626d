// Dynamic INT8 quantization of an ONNX model (DESIGN.md §5), the pattern of ONNX Runtime's quantize_dynamic.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hf2onnx {

struct QuantizeOptions {
  std::string weight_type = "auto";              // auto (the target's) | int8 (symmetric) | uint8 (asymmetric)
  bool per_channel = false;                      // one scale / zero point per output column
  bool reduce_range = false;                     // 7-bit weights (any target)
  // The CPUs the model must be exact on (see quantize_targets()). portable (default): uint8 weights, exact
  // everywhere; avx2: int8 weights whose neighbours along K keep |q1| + |q2| <= 128, which x86 CPUs
  // without VNNI (AVX2, AVX-512 before VNNI) sum in int16 without saturating; avx512-vnni and arm64: the
  // full ±127 int8 range.
  std::string target = "portable";
  std::vector<std::string> op_types = {"MatMul", "Gemm", "Gather"};
  std::string exclude_nodes;                     // regex on node names and output names
  std::optional<std::filesystem::path> report;   // --report FILE.json
  bool force_external_data = false;              // quantize --external-data: weights in OUT.onnx_data below 2 GB
};

struct QuantizeResult {
  std::map<std::string, int> quantized_per_op;   // "MatMul" → count
  uint64_t bytes_before = 0, bytes_after = 0;
  double seconds = 0;
  std::string report;  // the JSON report when options.report is set (written by the caller, atomically)
};

struct QuantizeTarget {
  const char* name;
  const char* weight_type;  // with --weight-type auto
  int pair_sum_limit;       // for symmetric int8 weights; 0 = none
  const char* help;
};
const std::vector<QuantizeTarget>& quantize_targets();
// The weight type options resolve to: the target's for "auto". Throws on an unknown target or type.
std::string effective_weight_type(const QuantizeOptions& options);

// Quantizes IN into OUT (written atomically; OUT must differ from IN).
QuantizeResult quantize_file(const std::filesystem::path& in, const std::filesystem::path& out,
                             const QuantizeOptions& options);

// Every FP32 model of an export folder (its onnx/ subfolder, or the folder itself in Optimum's layout)
// gets a `<name>_quantized.onnx` twin beside it; encoder-decoder sets get decoder_model_merged_quantized.onnx
// merged from the two quantized decoders, as `export --quantize` writes them. All files appear together.
std::vector<std::pair<std::filesystem::path, QuantizeResult>> quantize_folder(const std::filesystem::path& dir,
                                                                             const QuantizeOptions& options);

// The pass itself, writing OUT directly (callers stage the file and write result.report). Used by
// `export --quantize`.
QuantizeResult quantize_onnx(const std::filesystem::path& in, const std::filesystem::path& out,
                             const QuantizeOptions& options);

}  // namespace hf2onnx
