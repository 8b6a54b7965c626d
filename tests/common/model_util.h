// Helpers for the tests that build models in-process (they link the libtorch stages).
#pragma once
#include <filesystem>
#include <memory>
#include <optional>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "export/verify_graphs.h"  // to_npy
#include "hf/checkpoint.h"
#include "hf/config.h"
#include "models/model.h"
#include "models/registry.h"

namespace hf2onnx::test {

// The ExportModel of the folder's config.json, for `task` (default: its architecture's), asking `ck` which
// optional tensors exist.
inline std::shared_ptr<ExportModel> build_model(const std::filesystem::path& dir, const hf::Checkpoint& ck,
                                                std::optional<Task> task = std::nullopt) {
  auto config = hf::Config::load(dir / "config.json");
  const auto& arch = find_architecture(config.architecture(), "test");
  BuildContext ctx{config, task.value_or(arch.task), [&ck](const std::string& key) { return ck.has_tensor(key); }};
  return arch.build(ctx);
}

// Every graph of `eager` (weights loaded) run in ONNX Runtime from `onnx_dir`/<file stem>.onnx and in libtorch at
// `sizes`, expecting each output within 1e-4 + rtol · max |eager|. Returns each graph's inputs and eager outputs.
using GraphRuns = std::map<GraphKind, std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>>>;
inline GraphRuns expect_graphs_match_eager(const ExportModel& eager, const std::filesystem::path& onnx_dir,
                                           const std::filesystem::path& work, const DimSizes& sizes, double rtol = 0) {
  torch::NoGradGuard no_grad;
  GraphRuns runs;
  for (const ExportGraph& g : eager.graphs) {
    const std::string stem = graph_file_stem(g.kind);
    const std::filesystem::path in = work / ("in_" + stem), out = work / ("out_" + stem);
    std::filesystem::create_directories(in);
    auto inputs = g.example_inputs(sizes);
    for (size_t i = 0; i < inputs.size(); ++i) write_npy(in / (g.inputs[i].name + ".npy"), to_npy(inputs[i]));
    run_ort(onnx_dir / (stem + ".onnx"), in, out);
    auto outputs = g.forward(inputs);
    EXPECT_EQ(outputs.size(), g.outputs.size()) << stem;
    for (size_t i = 0; i < outputs.size() && i < g.outputs.size(); ++i) {
      Array got = read_npy(out / (g.outputs[i].name + ".npy")), want = to_npy(outputs[i]);
      EXPECT_EQ(got.shape, want.shape) << stem << " " << g.outputs[i].name;
      const double scale = outputs[i].abs().max().item<double>();
      EXPECT_LE(max_abs_diff(got, want), 1e-4 + rtol * scale) << stem << " " << g.outputs[i].name << " (max |eager| " << scale << ")";
    }
    runs[g.kind] = {inputs, outputs};
  }
  return runs;
}

}  // namespace hf2onnx::test
