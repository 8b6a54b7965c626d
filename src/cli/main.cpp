// hf2onnx command line: export, list, inspect (DESIGN.md §3). Errors are caught here, once.
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/inspect.h"
#include "common/log.h"
#include "export/lowering/table.h"
#include "hf2onnx/error.h"
#include "hf2onnx/export.h"
#include "models/registry.h"

using namespace hf2onnx;

namespace {

std::string task_help() {
  std::string s = "auto (from config.json architectures), or one of:";
  for (Task t : all_tasks()) s += std::string(" ") + task_name(t);
  return s;
}

void print_list() {
  std::printf("%-40s %-12s %s\n", "architecture", "family", "default task (other tasks of the family)");
  for (const auto& e : architecture_table()) {
    std::string others;
    for (Task t : family_tasks(e.family))
      if (t != e.task) others += (others.empty() ? "" : ", ") + std::string(task_name(t));
    std::printf("%-40s %-12s %s (%s)\n", e.architecture, e.family, task_name(e.task), others.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hf2onnx " HF2ONNX_VERSION
               ": export Hugging Face PyTorch checkpoints to ONNX (and dynamic INT8 ONNX)"};
  app.require_subcommand(1);
  bool verbose = false, quiet = false;
  app.add_flag("-v,--verbose", verbose, "more log output (debug)");
  app.add_flag("-q,--quiet", quiet, "only warnings and errors");

  ExportOptions ex;
  std::string report;
  auto* export_cmd = app.add_subcommand("export", "export MODEL_DIR to OUT_DIR/model.onnx");
  export_cmd->add_option("model_dir", ex.model_dir, "Hugging Face model folder (config.json + weights)")->required();
  export_cmd->add_option("out_dir", ex.out_dir, "output folder")->required();
  export_cmd->add_option("--task", ex.task, task_help())->default_val("auto");
  export_cmd->add_option("--opset", ex.opset, "ONNX opset")->default_val(17)->check(CLI::Range(kMinOpset, kMaxOpset));
  export_cmd->add_option("--report", report, "write a JSON report of what was done");
  export_cmd->add_flag("--external-data", ex.force_external_data, "store weights in model.onnx_data even below 2 GB");

  std::string inspect_target;
  auto* inspect_cmd = app.add_subcommand("inspect", "summarise a checkpoint folder or an .onnx file");
  inspect_cmd->add_option("path", inspect_target, "checkpoint folder or .onnx file")->required();

  auto* list_cmd = app.add_subcommand("list", "architectures and tasks hf2onnx supports");

  for (auto* sub : {export_cmd, inspect_cmd, list_cmd}) {
    sub->add_flag("-v,--verbose", verbose, "more log output (debug)");
    sub->add_flag("-q,--quiet", quiet, "only warnings and errors");
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  auto logger = spdlog::stderr_color_mt("hf2onnx");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%^[%l]%$ %v");
  spdlog::set_level(quiet ? spdlog::level::warn : verbose ? spdlog::level::debug : spdlog::level::info);

  try {
    if (*export_cmd) {
      if (!report.empty()) ex.report = report;
      export_model(ex);
    } else if (*inspect_cmd) {
      inspect_path(inspect_target);
    } else if (*list_cmd) {
      print_list();
    }
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  return 0;
}
