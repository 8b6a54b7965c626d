// One model folder's export, shared by a plain export (export_model, pipeline.cpp) and a diffusers pipeline's
// components (diffusion_pipeline.cpp). No libtorch in this header.
#pragma once
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "hf2onnx/export.h"
#include "models/registry.h"
#include "models/task.h"
#include "onnx/output_dir.h"

namespace hf2onnx {

struct ComponentSource {
  std::filesystem::path dir;  // config.json and the weights
  std::optional<Task> task;   // set: this task whatever the config says (a pipeline's text encoder); else opt.task
  // The folder (relative to the output, with a trailing slash, or "") of a graph's files.
  std::function<std::string(GraphKind)> folder_of;
};

// What one component's export leaves for the caller's report.
struct ComponentRun {
  std::string architecture, task;
  size_t node_count = 0;
  nlohmann::json graphs = nlohmann::json::array();           // per graph: file, node_count, op_counts, inputs, outputs
  nlohmann::json quantized_files = nlohmann::json::array();  // per INT8 twin: file, per_op, bytes, accuracy
  nlohmann::json verification, checkpoint;
  std::string failure;  // the verify stage's failure ("" when it passed or did not run)
  std::vector<std::pair<std::string, double>> stage_seconds;
};

// Read → build → trace → lower → write (+ quantize) → verify, staging the graphs' files in `out`. The caller copies
// the companion files, writes the report and commits.
ComponentRun export_component(const ExportOptions& opt, const ComponentSource& src, OutputDir& out);

// Stages the report (when asked for) and commits `out`; with a verification failure, throws it instead (after
// committing with --keep-failed).
void finish_export(const ExportOptions& opt, OutputDir& out, const std::string& failure, const nlohmann::json& report);

// A companion file that is a symbolic link is copied only when its target lies inside `model_dir` or a Hugging
// Face cache's blobs/, or with --follow-symlinks (warns otherwise).
bool may_copy(const std::filesystem::path& model_dir, const std::string& name, bool follow_symlinks);

// `hf2onnx export` of a diffusers pipeline folder (model_index.json): diffusion_pipeline.cpp.
ExportResult export_diffusion_pipeline(const ExportOptions& opt);

}  // namespace hf2onnx
