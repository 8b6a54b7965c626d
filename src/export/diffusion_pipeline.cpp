// export_diffusion_pipeline: a diffusers Stable Diffusion folder (model_index.json, one subfolder per component)
// → Optimum's ONNX layout for ORTStableDiffusionPipeline:
//   text_encoder/model.onnx  (CLIPTextModel: input_ids → last_hidden_state, pooler_output, hidden_states.*)
//   unet/model.onnx          (sample, timestep, encoder_hidden_states → out_sample)
//   vae_encoder/model.onnx   (sample → latent_parameters)      } both from vae/, each folder with vae/config.json
//   vae_decoder/model.onnx   (latent_sample → sample)          }
// each with its component's config.json, and model_index.json, scheduler/, tokenizer/ and feature_extractor/
// copied. Components are exported one after the other (memory: the largest one, not their sum). The layout is the
// same under --layout hub and optimum: diffusers ONNX repositories on the hub are laid out this way too.
// No libtorch here: each component goes through export_component (pipeline.cpp).
#include <algorithm>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/log.h"
#include "export/component.h"
#include "hf/config.h"
#include "hf2onnx/error.h"

namespace hf2onnx {
namespace fs = std::filesystem;

namespace {

// What each model_index.json entry may be: [library, class]. Exported components, in export order.
struct Part {
  const char* name;
  const char* library;
  const char* class_name;
};
constexpr Part kExported[] = {{"text_encoder", "transformers", "CLIPTextModel"},
                              {"unet", "diffusers", "UNet2DConditionModel"},
                              {"vae", "diffusers", "AutoencoderKL"}};
// Folders copied as they are (the pipeline's non-neural parts); the safety checker is not exported (Optimum does
// not export it either) and image_encoder (IP-Adapter) must be null.
constexpr const char* kCopiedFolders[] = {"scheduler", "tokenizer", "feature_extractor"};
constexpr const char* kSkipped[] = {"safety_checker"};
constexpr const char* kOutputFolders[] = {"text_encoder", "unet", "vae_encoder", "vae_decoder"};

bool is_null_entry(const nlohmann::json& v) {
  return v.is_null() || (v.is_array() && std::all_of(v.begin(), v.end(), [](const auto& e) { return e.is_null(); }));
}

// model_index.json → its class, checked against what this exporter supports; every key naming a component must be
// one it exports, copies or skips (SDXL's text_encoder_2, a ControlNet, ... are refused by name).
std::string check_model_index(const fs::path& index_path) {
  const std::string text = hf::read_json_file(index_path);
  const nlohmann::json index = hf::parse_json(text.data(), text.data() + text.size(), index_path.string() + ": not valid JSON");
  auto fail = [&](const std::string& key, const std::string& problem) -> void {
    throw Error(index_path.string() + ": '" + key + "' " + problem);
  };
  if (!index.is_object()) throw Error(index_path.string() + ": not a JSON object");
  const auto cls = index.find("_class_name");
  if (cls == index.end() || !cls->is_string()) fail("_class_name", "is missing");
  for (const auto& [key, value] : index.items()) {
    if (key.empty() || key[0] == '_' || !value.is_array()) continue;  // _class_name, _diffusers_version, flags
    if (is_null_entry(value)) continue;
    const auto* part = std::find_if(std::begin(kExported), std::end(kExported), [&](const Part& p) { return key == p.name; });
    if (part != std::end(kExported)) {
      if (value.size() != 2 || !value[1].is_string() || value[1].get<std::string>() != part->class_name)
        fail(key, "must be [\"" + std::string(part->library) + "\", \"" + part->class_name + "\"] (what this exporter supports)");
      continue;
    }
    const bool known = std::count(std::begin(kCopiedFolders), std::end(kCopiedFolders), key) ||
                       std::count(std::begin(kSkipped), std::end(kSkipped), key);
    if (!known)
      fail(key, "is a component this exporter does not support (supported: text_encoder, unet, vae, tokenizer, scheduler, "
                "feature_extractor; safety_checker is left out)");
  }
  for (const Part& p : kExported) {
    auto it = index.find(p.name);
    if (it == index.end() || is_null_entry(*it)) fail(p.name, "is missing: a Stable Diffusion pipeline needs it");
  }
  return cls->get<std::string>();
}

}  // namespace

ExportResult export_diffusion_pipeline(const ExportOptions& opt) {
  ExportResult result;
  Stopwatch total;
  const fs::path index_path = opt.model_dir / "model_index.json";
  result.architecture = check_model_index(index_path);
  result.task = task_name(Task::TextToImage);
  result.opset = opt.opset;
  if (opt.task != "auto" && opt.task != result.task)
    throw Error(index_path.string() + ": a diffusers pipeline exports for task " + result.task + ", not '" + opt.task + "'");
  spdlog::info("{}: {} pipeline: text_encoder, unet, vae (as vae_encoder and vae_decoder)", index_path.string(),
               result.architecture);

  OutputDir out(opt.out_dir, OutputDir::Mode::ReplaceFolder, [](const std::string& name) {
    return name == "model_index.json" || std::count(std::begin(kOutputFolders), std::end(kOutputFolders), name) ||
           std::count(std::begin(kCopiedFolders), std::end(kCopiedFolders), name);
  });
  nlohmann::json report = {{"architecture", result.architecture}, {"task", result.task}, {"opset", opt.opset},
                           {"components", nlohmann::json::object()}};
  std::string failure;
  for (const Part& part : kExported) {
    const std::string name = part.name;
    ComponentSource src;
    src.dir = opt.model_dir / name;
    src.task = Task::TextToImage;
    src.folder_of = [name](GraphKind kind) { return kind == GraphKind::Model ? name + "/" : std::string(); };
    ExportOptions component_opt = opt;
    // The VAE stays float32: the quantizer turns MatMuls into MatMulInteger and leaves convolutions in float, and
    // the VAE is convolutions but for one attention block (docs/benchmarks.md has the figures).
    if (name == "vae") component_opt.quantize.reset();
    spdlog::info("{}:", src.dir.string());
    ComponentRun run = with_context(name, [&] { return export_component(component_opt, src, out); });
    // Each component's config beside its graphs (vae_encoder and vae_decoder both get vae/config.json).
    std::vector<std::string> folders;
    for (const auto& g : run.graphs) folders.push_back(fs::path(g["file"].get<std::string>()).parent_path().string());
    if (may_copy(src.dir, "config.json", opt.follow_symlinks))
      for (const auto& folder : folders) out.copy_in(src.dir / "config.json", folder + "/config.json");
    result.node_count += run.node_count;
    for (const auto& [stage, s] : run.stage_seconds) result.stage_seconds.emplace_back(name + "." + stage, s);
    nlohmann::json& r = report["components"][name];
    r = {{"architecture", run.architecture}, {"node_count", run.node_count}, {"graphs", run.graphs},
         {"verification", run.verification}, {"checkpoint", run.checkpoint}};
    if (!run.quantized_files.empty()) r["quantized_files"] = run.quantized_files;
    for (const auto& [stage, s] : run.stage_seconds) r["seconds"][stage] = s;
    if (!run.failure.empty()) {
      failure = name + ": " + run.failure;
      break;
    }
  }
  // The pipeline's other parts: model_index.json as it is (Optimum saves the original pipeline config), and the
  // regular files of the scheduler, tokenizer and feature extractor folders.
  if (may_copy(opt.model_dir, "model_index.json", opt.follow_symlinks)) out.copy_in(index_path, "model_index.json");
  for (const char* folder : kCopiedFolders) {
    const fs::path dir = opt.model_dir / folder;
    if (!fs::is_directory(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string file = std::string(folder) + "/" + entry.path().filename().string();
      if (!fs::is_regular_file(entry.status()) || !may_copy(opt.model_dir, file, opt.follow_symlinks)) continue;
      out.copy_in(entry.path(), file);
    }
  }
  for (const auto& [path, size] : out.staged_files()) result.files.emplace_back(path.string(), size);
  result.stage_seconds.emplace_back("total", total.seconds());
  for (const auto& [path, size] : result.files) report["files"].push_back({{"path", path}, {"bytes", size}});
  report["node_count"] = result.node_count;
  report["seconds"]["total"] = total.seconds();
  finish_export(opt, out, failure, report);
  spdlog::info("exported {} in {:.2f} s", out.final_dir().string(), total.seconds());
  return result;
}

}  // namespace hf2onnx
