// hf2onnx command line: export, list, inspect (DESIGN.md §3). Errors are caught here, once.
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/batch.h"
#include "cli/inspect.h"
#include "cli/plugin.h"
#include "common/log.h"
#include "hf/hub_cache.h"
#include "hf2onnx/error.h"
#include "hf2onnx/export.h"
#include "hf2onnx/quantize.h"

using namespace hf2onnx;
namespace fs = std::filesystem;

namespace {

std::string task_help() {
  std::string s = "auto (from config.json architectures), or one of:";
  for (Task t : all_tasks()) s += std::string(" ") + task_name(t);
  return s;
}

std::string target_help() {
  std::string s = "the CPUs the INT8 model must be exact on:";
  for (const auto& t : quantize_targets()) s += std::string("\n  ") + t.name + ": " + t.help;
  return s + "\n--per-channel works with every target; --reduce-range (7-bit weights) and --weight-type uint8 are exact on every target";
}

void print_list(bool json) {
  const ExportPlugin& plugin = export_plugin();
  if (json) {  // one object per architecture, for scripts
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : plugin.architecture_table()) {
      nlohmann::json tasks = nlohmann::json::array();
      for (Task t : plugin.family_tasks(e.family)) tasks.push_back(task_name(t));
      out.push_back({{"architecture", e.architecture}, {"family", e.family}, {"default_task", task_name(e.task)},
                     {"tasks", tasks}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }
  std::printf("%-40s %-12s %s\n", "architecture", "family", "default task (other tasks of the family)");
  for (const auto& e : plugin.architecture_table()) {
    std::string others;
    for (Task t : plugin.family_tasks(e.family))
      if (t != e.task) others += (others.empty() ? "" : ", ") + std::string(task_name(t));
    std::printf("%-40s %-12s %s%s\n", e.architecture, e.family, task_name(e.task),
                others.empty() ? "" : (" (" + others + ")").c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hf2onnx " HF2ONNX_VERSION
               ": export Hugging Face PyTorch checkpoints to ONNX (and dynamic INT8 ONNX)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "hf2onnx " HF2ONNX_VERSION);
  bool verbose = false, quiet = false;
  app.add_flag("-v,--verbose", verbose, "more log output (debug)");
  app.add_flag("-q,--quiet", quiet, "only warnings and errors");

  ExportOptions ex;
  std::string report;
  auto* export_cmd = app.add_subcommand("export", "export MODEL (a folder, or org/name in the Hugging Face cache) to OUT_DIR (onnx/model.onnx; encoder-decoder models: onnx/encoder_model.onnx and the decoders; a diffusers pipeline folder: text_encoder/, unet/, vae_encoder/, vae_decoder/)");
  std::string model_arg, revision;
  export_cmd->add_option("model", model_arg,
                         "Hugging Face model folder (config.json + weights, or a diffusers pipeline's model_index.json), or a model id (org/name) in the local "
                         "Hugging Face cache ($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub); a path that "
                         "exists wins")
      ->required();
  export_cmd->add_option("--revision", revision, "with a model id: the branch, tag or commit in the cache (default main)");
  export_cmd->add_option("out_dir", ex.out_dir, "output folder")->required();
  const std::map<std::string, Layout> layouts = {{"hub", Layout::Hub}, {"optimum", Layout::Optimum}};
  export_cmd->add_option("--layout", ex.layout,
                         "hub (default): the .onnx files in OUT_DIR/onnx/, config and tokenizer files at the root, as "
                         "ONNX repositories on the hub and transformers.js have them; optimum: everything at the root, "
                         "as Optimum's ORTModel classes load it (a diffusers pipeline: its component folders either way)")
      ->transform(CLI::CheckedTransformer(layouts, CLI::ignore_case))
      ->default_str("hub");
  export_cmd->add_option("--task", ex.task, task_help())->default_val("auto");
  export_cmd->add_option("--opset", ex.opset, "ONNX opset")->default_val(17)->check(CLI::Range(kMinOpset, kMaxOpset));
  export_cmd->add_option("--report", report, "write a JSON report of what was done");
  export_cmd->add_flag("--external-data", ex.force_external_data, "store weights in model.onnx_data even below 2 GB");
  export_cmd->add_flag("--keep-weight-dtype", ex.keep_weight_dtype,
                       "write bfloat16 / float16 weights as the checkpoint stores them (half the file of float32; the "
                       "graph casts each to float32 where it is used and still computes in float32, and ONNX Runtime "
                       "folds the casts when it loads the model)");
  export_cmd->add_flag("--follow-symlinks", ex.follow_symlinks,
                       "copy tokenizer/config files that are links to files outside the model folder (by default "
                       "only links into the folder or into a Hugging Face cache are followed)");

  // Quantization options, shared by `quantize` and `export --quantize`.
  QuantizeOptions q;
  std::string op_types = "MatMul,Gemm,Gather", q_report;
  bool export_quantize = false;
  auto add_quantize_options = [&](CLI::App* cmd) {
    cmd->add_option("--weight-type", q.weight_type, "auto (the target's, default), int8 (symmetric) or uint8 (asymmetric)")
        ->check(CLI::IsMember({"auto", "int8", "uint8"}));
    cmd->add_flag("--per-channel", q.per_channel, "one scale / zero point per output column");
    cmd->add_flag("--reduce-range", q.reduce_range, "7-bit weights");
    std::vector<std::string> targets;
    for (const auto& t : quantize_targets()) targets.push_back(t.name);
    cmd->add_option("--target", q.target, target_help())->check(CLI::IsMember(targets))->default_val("portable");
    cmd->add_option("--op-types", op_types, "comma-separated op types to quantize (MatMul,Gemm,Gather)");
    cmd->add_option("--exclude-nodes", q.exclude_nodes, "regex: nodes whose name or output matches stay float");
  };
  export_cmd->add_flag("--quantize", export_quantize, "also write model_quantized.onnx (dynamic INT8)");
  // The verify stage (export) and the verify command share their tolerances.
  VerifyOptions& vo = ex.verify;
  bool no_verify = false;
  export_cmd->add_flag("--no-verify", no_verify, "skip the verify stage (ONNX Runtime against libtorch at two shapes)");
  export_cmd->add_flag("--keep-failed", vo.keep_failed, "write the files even when verification fails (exit code 1 all the same)");
  std::string verify_dir, verify_model;
  auto* verify_cmd = app.add_subcommand("verify", "check an export folder in ONNX Runtime: against libtorch eager when MODEL_DIR "
                                                  "is given, else each graph against itself; INT8 twins against FP32");
  verify_cmd->add_option("out_dir", verify_dir, "export folder (either layout)")->required();
  verify_cmd->add_option("model_dir", verify_model, "the checkpoint folder it was exported from");
  for (CLI::App* cmd : {export_cmd, verify_cmd}) {
    cmd->add_option("--atol", vo.atol, "absolute tolerance: max |ONNX Runtime - reference| <= atol + rtol * max |reference|")
        ->default_val(vo.atol);
    cmd->add_option("--rtol", vo.rtol, "relative tolerance, of the output's largest magnitude")->default_val(vo.rtol);
    cmd->add_option("--min-cosine", vo.min_cosine, "INT8 twins: the lowest cosine with FP32 an output may have")
        ->default_val(vo.min_cosine);
  }
  add_quantize_options(export_cmd);

  std::string q_in, q_out;
  auto* quantize_cmd = app.add_subcommand("quantize", "dynamic INT8 quantization of any ONNX model, or of every model of an export folder");
  quantize_cmd->add_option("in", q_in, "input .onnx, or an export folder (either layout): every model in it gets a "
                                       "_quantized twin")->required();
  quantize_cmd->add_option("out", q_out, "output .onnx (not with a folder)");
  add_quantize_options(quantize_cmd);
  quantize_cmd->add_option("--report", q_report, "write a JSON report of each quantized node");
  quantize_cmd->add_flag("--external-data", q.force_external_data, "store weights in OUT.onnx_data even below 2 GB");

  std::string inspect_target;
  auto* inspect_cmd = app.add_subcommand("inspect", "summarise a checkpoint folder, an export folder or an .onnx file");
  inspect_cmd->add_option("path", inspect_target, "checkpoint folder, export folder (either layout) or .onnx file")->required();

  BatchOptions batch;
  std::string shard = "1/1", batch_results, batch_junit;
  auto* batch_cmd = app.add_subcommand("batch", "export every model of a JSON manifest (for CI): {\"models\": [{\"model\": "
                                                "PATH_OR_ID, \"out\": DIR, \"task\": ..., \"quantize\": true|false|{...}}, ...]}");
  batch_cmd->add_option("manifest", batch.manifest, "the manifest; relative paths in it are relative to its folder")->required();
  batch_cmd->add_option("--jobs,-j", batch.jobs, "exports at once (each its own process)")->check(CLI::Range(1, 64));
  batch_cmd->add_option("--shard", shard, "K/N: this run exports the models whose index i has i % N == K - 1");
  batch_cmd->add_flag("--keep-going", batch.keep_going, "start the remaining models after a failure");
  batch_cmd->add_option("--results", batch_results, "folder for per-model reports, logs and summary.json "
                                                    "(default: MANIFEST.results/ beside the manifest)");
  batch_cmd->add_option("--junit", batch_junit, "JUnit XML file (default: MANIFEST.junit.xml beside the manifest)");

  auto* list_cmd = app.add_subcommand("list", "architectures and tasks hf2onnx supports");
  bool list_json = false;
  list_cmd->add_flag("--json", list_json, "as a JSON array");

  for (auto* sub : {export_cmd, quantize_cmd, inspect_cmd, list_cmd, batch_cmd, verify_cmd}) {
    sub->add_flag("-v,--verbose", verbose, "more log output (debug)");
    sub->add_flag("-q,--quiet", quiet, "only warnings and errors");
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  if (*export_cmd && !export_quantize)
    for (const char* opt : {"--weight-type", "--per-channel", "--reduce-range", "--target", "--op-types", "--exclude-nodes"})
      if (export_cmd->count(opt) > 0) {
        std::fprintf(stderr, "%s applies to quantization: add --quantize\n", opt);
        return 2;
      }

  if (*quantize_cmd && fs::is_directory(q_in) != q_out.empty()) {  // usage: a folder alone, or IN.onnx OUT.onnx
    std::fprintf(stderr, fs::is_directory(q_in) ? "%s is a folder: its models get _quantized twins beside them (no OUT)\n"
                                                : "quantize %s: OUT.onnx is missing\n", q_in.c_str());
    return 2;
  }

  auto logger = spdlog::stderr_color_mt("hf2onnx");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%^[%l]%$ %v");
  spdlog::set_level(quiet ? spdlog::level::warn : verbose ? spdlog::level::debug : spdlog::level::info);

  try {
    q.op_types.clear();
    std::stringstream ops(op_types);
    for (std::string op; std::getline(ops, op, ',');)
      if (!op.empty()) q.op_types.push_back(op);
    if (*export_cmd) {
      if (!revision.empty() && fs::exists(model_arg))
        throw Error("--revision applies to model ids in the Hugging Face cache; " + model_arg + " is a folder");
      ex.model_dir = hf::resolve_model(model_arg, revision.empty() ? "main" : revision);
      if (ex.model_dir != model_arg) spdlog::info("{}: {} in the Hugging Face cache", model_arg, ex.model_dir.string());
      if (!report.empty()) ex.report = report;
      if (export_quantize) ex.quantize = q;
      ex.verify.enabled = !no_verify;
      export_plugin().export_model(ex);
    } else if (*verify_cmd) {
      std::optional<fs::path> model_dir;
      if (!verify_model.empty()) model_dir = hf::resolve_model(verify_model, "main");
      export_plugin().verify_folder(verify_dir, model_dir, ex.verify);
    } else if (*quantize_cmd) {
      if (!q_report.empty()) q.report = q_report;
      if (fs::is_directory(q_in)) quantize_folder(q_in, q);
      else quantize_file(q_in, q_out, q);
    } else if (*inspect_cmd) {
      inspect_path(inspect_target, [] () -> const std::vector<ArchEntry>& { return export_plugin().architecture_table(); });
    } else if (*batch_cmd) {
      parse_shard(shard, batch);
      batch.results = batch_results;
      batch.junit = batch_junit;
      return run_batch(batch);
    } else if (*list_cmd) {
      print_list(list_json);
    }
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  return 0;
}
