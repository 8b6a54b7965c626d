// The export pipeline as a library call: MODEL_DIR → OUT_DIR/onnx/model.onnx (+ copied config/tokenizer files).
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hf2onnx/quantize.h"

namespace hf2onnx {

// The ONNX opsets the lowering table covers (export --opset).
constexpr int kMinOpset = 14;
constexpr int kMaxOpset = 17;

// Where the .onnx files go in OUT_DIR. Hub: in onnx/, config and tokenizer files at the root, as ONNX
// repositories on the hub are laid out (transformers.js looks there). Optimum: everything at the root
// (Optimum's ORTModel classes).
enum class Layout { Hub, Optimum };

struct ExportOptions {
  std::filesystem::path model_dir, out_dir;
  Layout layout = Layout::Hub;
  std::string task = "auto";
  int opset = 17;
  std::optional<std::filesystem::path> report;  // --report FILE.json
  bool force_external_data = false;             // write model.onnx_data even below 2 GB (tests)
  std::optional<QuantizeOptions> quantize;      // --quantize: also write model_quantized.onnx
  bool follow_symlinks = false;                 // copy companion files linking outside the model folder
};

struct ExportResult {
  std::string architecture, task;
  int opset = 0;
  size_t node_count = 0;
  std::vector<std::pair<std::string, uint64_t>> files;         // final paths and sizes
  std::vector<std::pair<std::string, double>> stage_seconds;   // in pipeline order
};

ExportResult export_model(const ExportOptions& options);

}  // namespace hf2onnx
