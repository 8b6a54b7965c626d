// The export plugin's entry point (built into libhf2onnx_export.so with the libtorch stages).
#include "cli/plugin.h"

extern "C" __attribute__((visibility("default"))) const hf2onnx::ExportPlugin* hf2onnx_export_plugin() {
  static const hf2onnx::ExportPlugin plugin{&hf2onnx::export_model, &hf2onnx::architecture_table,
                                            &hf2onnx::family_tasks, &hf2onnx::verify_folder};
  return &plugin;
}
