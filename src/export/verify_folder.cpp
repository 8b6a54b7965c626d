// hf2onnx verify OUT_DIR [MODEL_DIR]: the export's verify stage on a folder that is already written.
#include <unistd.h>

#include <set>

#include <spdlog/spdlog.h>

#include "common/log.h"
#include "common/temp_dir.h"
#include "export/verify_graphs.h"
#include "hf/checkpoint.h"
#include "hf/config.h"
#include "hf2onnx/error.h"
#include "hf2onnx/export.h"
#include "models/loader.h"
#include "models/registry.h"
#include "onnx/reader.h"

namespace hf2onnx {
namespace fs = std::filesystem;

VerifyFolderResult verify_folder(const fs::path& out_dir, const std::optional<fs::path>& model_dir, const VerifyOptions& opt) {
  Stopwatch sw;
  const auto onnx_files = export_onnx_files(out_dir, [](const std::string&) { return true; });
  if (onnx_files.empty()) throw Error(out_dir.string() + ": no .onnx file (neither in onnx/ nor at the root)");
  const fs::path folder = onnx_files.front().parent_path();
  const fs::path config_path = out_dir / "config.json";
  if (!fs::exists(config_path))
    throw Error(out_dir.string() + ": no config.json beside the models (the export copies it; verify builds the graphs' "
                                   "inputs from it)");
  const hf::Config config = hf::Config::load(config_path);
  const ArchEntry& arch = find_architecture(config.architecture(), config_path.string());

  // The task the files were exported for (their metadata), and which weights the export holds: a builder asks
  // about optional tensors (a pooler, an untied head), which the initializers' names (the checkpoint's keys) answer.
  std::optional<Task> task;
  std::set<std::string> initializers;
  for (const auto& f : onnx_files) {
    const std::string name = f.filename().string();
    if (name.find("_quantized") != std::string::npos || name.rfind("decoder_model_merged", 0) == 0) continue;
    LazyModel lazy = with_context(f.string(), [&] { return read_onnx_lazy(f); });
    for (const auto& p : lazy.model.metadata_props())
      if (p.key() == "task" && !task) task = task_from_name(p.value());
    for (const auto& t : lazy.initializers) initializers.insert(t.name());
  }
  std::optional<hf::Checkpoint> checkpoint;
  if (model_dir) checkpoint = hf::load_checkpoint(*model_dir);
  BuildContext ctx{config, task.value_or(arch.task), [&](const std::string& key) {
                     return checkpoint ? checkpoint->has_tensor(key) : initializers.count(key) > 0;
                   }};
  std::shared_ptr<ExportModel> model = with_context(config_path.string(), [&] { return arch.build(ctx); });
  const bool eager = checkpoint.has_value();
  if (eager) {  // bf16 / fp16 weights converted only once the memory plan says the float32 model fits
    LoadSummary loaded = load_weights(*model->module, *checkpoint, model->load_rules, false, model_dir->string(),
                                      /*defer_conversion=*/true);
    const uint64_t need = loaded.bytes + loaded.bytes / 2 + (512ull << 20), available = memory_available();
    if (available > 0 && need > available)
      throw Error("the float32 model (" + format_bytes(loaded.bytes) + ") needs about " + format_bytes(need) +
                  " to run in libtorch and then ONNX Runtime; this machine has " + format_bytes(available) + " available");
    for (auto& item : model->module->named_parameters(true)) {
      auto it = loaded.deferred.find(loaded.checkpoint_keys.at(item.key()));
      if (it != loaded.deferred.end()) item.value().set_data(to_float_tensor(*it->second));
    }
  }

  std::map<GraphKind, fs::path> files;
  for (const ExportGraph& g : model->graphs) {
    const fs::path f = folder / (std::string(graph_file_stem(g.kind)) + ".onnx");
    if (!fs::exists(f)) throw Error(f.string() + ": missing (the " + std::string(task_name(ctx.task)) + " export of " +
                                    arch.architecture + " has it)");
    files[g.kind] = f;
  }
  const fs::path merged = folder / (std::string(graph_file_stem(GraphKind::DecoderMerged)) + ".onnx");
  if (fs::exists(merged)) files[GraphKind::DecoderMerged] = merged;

  const fs::path tmp = fs::temp_directory_path() / ("hf2onnx-verify-" + std::to_string(::getpid()));
  RemovedOnExit cleanup{tmp};
  Verification v = with_context("verify", [&] { return verify_graphs(*model, files, tmp / "graphs", opt, eager); });
  if (!v.ran) throw Error("not verified: " + v.not_done + " (tools/setup.sh installs ONNX Runtime)");
  VerifyFolderResult result;
  result.eager = eager;
  result.summary = v.summary();
  spdlog::info("{}: {} at two shapes{}: {}", out_dir.string(), eager ? "ONNX Runtime against libtorch" : "ONNX Runtime",
               eager ? "" : " and cached steps", v.summary());
  if (!v.failure_message().empty()) throw Error("verification failed: " + v.failure_message());

  for (const ExportGraph& g : model->graphs) {  // the INT8 twins against their FP32 files
    const fs::path fp32 = files.at(g.kind), int8 = folder / (std::string(graph_file_stem(g.kind)) + "_quantized.onnx");
    if (!fs::exists(int8)) continue;
    Int8Check check = check_int8(g, fp32, int8, tmp / "int8");
    spdlog::info("{} vs {}: {}", int8.filename().string(), fp32.filename().string(), check.summary());
    result.summary += "; " + int8.filename().string() + ": " + check.summary();
    const std::string failure = int8_floor_failure(int8.filename().string(), fp32.filename().string(), check, opt.min_cosine);
    if (!failure.empty()) throw Error("verification failed: " + failure);
  }
  spdlog::info("verified {} in {:.2f} s", out_dir.string(), sw.seconds());
  return result;
}

}  // namespace hf2onnx
