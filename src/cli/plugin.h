// The export stages (model builders, libtorch tracer, lowering) live in a plugin, libhf2onnx_export.so,
// loaded only by the commands that need them: libtorch costs ~0.5 s of start-up (its operator registry),
// which `quantize`, `inspect MODEL.onnx` and `--help` do not pay.
#pragma once
#include <string>
#include <vector>

#include "hf2onnx/export.h"
#include "models/registry.h"

namespace hf2onnx {

struct ExportPlugin {
  ExportResult (*export_model)(const ExportOptions& options);
  const std::vector<ArchEntry>& (*architecture_table)();
  std::vector<Task> (*family_tasks)(const std::string& family);
  VerifyFolderResult (*verify_folder)(const std::filesystem::path& out_dir, const std::optional<std::filesystem::path>& model_dir,
                                      const VerifyOptions& options);
};

// Loads the plugin installed beside the executable (once); throws an Error naming what is missing.
const ExportPlugin& export_plugin();

}  // namespace hf2onnx

// The plugin's one exported symbol.
extern "C" const hf2onnx::ExportPlugin* hf2onnx_export_plugin();
