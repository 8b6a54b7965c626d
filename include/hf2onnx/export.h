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
constexpr int kMaxOpset = 21;  // the newest opset of the ONNX Runtime in the tests (1.20)
// onnx's checker and shape inference (libonnx-dev 1.12) know opsets up to this one; a graph at a newer opset is
// checked by ONNX Runtime in the verify stage instead (onnx/check.h).
constexpr int kMaxCheckedOpset = 17;
// The IR version ONNX released with an opset (IR 8: opsets ≤ 18, IR 9: 19-20, IR 10: 21).
constexpr int ir_version_for_opset(int opset) { return opset >= 21 ? 10 : opset >= 19 ? 9 : 8; }

// Where the .onnx files go in OUT_DIR. Hub: in onnx/, config and tokenizer files at the root, as ONNX
// repositories on the hub are laid out (transformers.js looks there). Optimum: everything at the root
// (Optimum's ORTModel classes).
enum class Layout { Hub, Optimum };

// The verify stage (after every export, and `hf2onnx verify`): ONNX Runtime against libtorch eager at two
// shapes, decoders' cached steps against one call, INT8 twins against their FP32 model.
struct VerifyOptions {
  bool enabled = true;       // export --no-verify: false
  double atol = 1e-4;        // an output passes when max |ORT - reference| <= atol + rtol * max |reference|
  double rtol = 1e-4;        // (float32 summation order moves large outputs, e.g. logits of 20, by ~1e-5 relative)
  double min_cosine = 0.99;  // INT8 twins: every output but the caches at least this close to FP32
  bool keep_failed = false;  // export --keep-failed: a model that fails verification is still written
};

struct ExportOptions {
  std::filesystem::path model_dir, out_dir;
  Layout layout = Layout::Hub;
  std::string task = "auto";
  int opset = 17;
  std::optional<std::filesystem::path> report;  // --report FILE.json
  bool force_external_data = false;             // write model.onnx_data even below 2 GB (tests)
  std::optional<QuantizeOptions> quantize;      // --quantize: also write model_quantized.onnx
  bool follow_symlinks = false;                 // copy companion files linking outside the model folder
  bool keep_weight_dtype = false;               // bfloat16 / float16 weights written as stored, cast where used
  VerifyOptions verify;
};

struct ExportResult {
  std::string architecture, task;
  int opset = 0;
  size_t node_count = 0;
  std::vector<std::pair<std::string, uint64_t>> files;         // final paths and sizes
  std::vector<std::pair<std::string, double>> stage_seconds;   // in pipeline order
};

ExportResult export_model(const ExportOptions& options);

// `hf2onnx verify OUT_DIR [MODEL_DIR]`: the verify stage on an existing export folder (either layout). With
// the checkpoint folder, against libtorch eager of its weights; without, each graph against itself (two shapes
// run, cached steps against one call) and the INT8 twins against the FP32 files. Throws an Error naming the
// failing file and output.
struct VerifyFolderResult {
  std::string summary;       // one line per checked file
  bool eager = false;
};
VerifyFolderResult verify_folder(const std::filesystem::path& out_dir, const std::optional<std::filesystem::path>& model_dir,
                                 const VerifyOptions& options);

}  // namespace hf2onnx
