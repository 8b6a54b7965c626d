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

namespace {

// One model's graphs: config.json in `config_dir`, each graph at `files_root` / graph_file_stem + ".onnx" (a pipeline's
// VAE: both folders from the root), the task from the files' metadata unless `forced`.
VerifyFolderResult verify_model(const fs::path& config_dir, const fs::path& files_root, const std::vector<fs::path>& onnx_files,
                                const std::optional<fs::path>& model_dir, std::optional<Task> forced, const VerifyOptions& opt) {
  const fs::path config_path = config_dir / "config.json";
  if (!fs::exists(config_path))
    throw Error(config_dir.string() + ": no config.json beside the models (the export copies it; verify builds the graphs' "
                                      "inputs from it)");
  const hf::Config config = hf::Config::load(config_path);
  const ArchEntry& arch = find_architecture(config.architecture(), config_path.string());

  // The task the files were exported for (their metadata), and which weights the export holds: a builder asks
  // about optional tensors (a pooler, an untied head), which the initializers' names (the checkpoint's keys) answer.
  std::optional<Task> task = forced;
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
    const fs::path f = files_root / (std::string(graph_file_stem(g.kind)) + ".onnx");
    if (!fs::exists(f)) throw Error(f.string() + ": missing (the " + std::string(task_name(ctx.task)) + " export of " +
                                    arch.architecture + " has it)");
    files[g.kind] = f;
  }
  const fs::path merged = files_root / (std::string(graph_file_stem(GraphKind::DecoderMerged)) + ".onnx");
  if (fs::exists(merged)) files[GraphKind::DecoderMerged] = merged;

  const fs::path tmp = fs::temp_directory_path() / ("hf2onnx-verify-" + std::to_string(::getpid()));
  RemovedOnExit cleanup{tmp};
  Verification v = with_context("verify", [&] { return verify_graphs(*model, files, tmp / "graphs", opt, eager); });
  if (!v.ran) throw Error("not verified: " + v.not_done + " (tools/setup.sh installs ONNX Runtime)");
  VerifyFolderResult result;
  result.eager = eager;
  result.summary = v.summary();
  spdlog::info("{}: {} at two shapes{}: {}", config_dir.string(), eager ? "ONNX Runtime against libtorch" : "ONNX Runtime",
               eager ? "" : " and cached steps", v.summary());
  if (!v.failure_message().empty()) throw Error("verification failed: " + v.failure_message());

  for (const ExportGraph& g : model->graphs) {  // the INT8 twins against their FP32 files
    const fs::path fp32 = files.at(g.kind), int8 = files_root / (std::string(graph_file_stem(g.kind)) + "_quantized.onnx");
    if (!fs::exists(int8)) continue;
    Int8Check check = check_int8(g, fp32, int8, tmp / "int8");
    spdlog::info("{} vs {}: {}", int8.filename().string(), fp32.filename().string(), check.summary());
    result.summary += "; " + int8.filename().string() + ": " + check.summary();
    const std::string failure = int8_floor_failure(int8.filename().string(), fp32.filename().string(), check, opt.min_cosine);
    if (!failure.empty()) throw Error("verification failed: " + failure);
  }
  return result;
}

}  // namespace

VerifyFolderResult verify_folder(const fs::path& out_dir, const std::optional<fs::path>& model_dir, const VerifyOptions& opt) {
  Stopwatch sw;
  VerifyFolderResult result;
  if (fs::exists(out_dir / "model_index.json")) {
    // A diffusers pipeline (Optimum's layout): each component from its folder, against MODEL_DIR's component.
    const std::pair<const char*, const char*> parts[] = {{"text_encoder", "text_encoder"}, {"unet", "unet"}, {"vae_encoder", "vae"}};
    for (const auto& [folder, component] : parts) {
      const fs::path dir = out_dir / folder;
      std::vector<fs::path> files;
      const std::optional<fs::path> source = model_dir ? std::optional<fs::path>(*model_dir / component) : std::nullopt;
      const bool vae = std::string(component) == "vae";
      VerifyFolderResult r = with_context(component, [&] {
        return verify_model(dir, vae ? out_dir : dir, files, source, Task::TextToImage, opt);
      });
      result.eager = r.eager;
      result.summary += (result.summary.empty() ? "" : "; ") + std::string(component) + ": " + r.summary;
    }
  } else {
    const auto onnx_files = export_onnx_files(out_dir, [](const std::string&) { return true; });
    if (onnx_files.empty()) throw Error(out_dir.string() + ": no .onnx file (neither in onnx/ nor at the root)");
    result = verify_model(out_dir, onnx_files.front().parent_path(), onnx_files, model_dir, std::nullopt, opt);
  }
  spdlog::info("verified {} in {:.2f} s", out_dir.string(), sw.seconds());
  return result;
}

}  // namespace hf2onnx
