// export_model: config → checkpoint → module tree → trace → lowering → check → write, one log line
// per stage with its time.
#include <algorithm>
#include <fstream>
#include <future>
#include <map>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/log.h"
#include "common/temp_dir.h"
#include "common/mapped_file.h"
#include "common/scratch.h"
#include "common/npy.h"
#include "export/component.h"
#include "export/lower_graph.h"
#include "export/verify_graphs.h"
#include "export/weight_storage.h"
#include "onnx/check.h"
#include "onnx/merge_decoders.h"
#include "onnx/writer.h"
#include "onnx/output_dir.h"
#include "export/trace.h"
#include "hf/checkpoint.h"
#include "hf/config.h"
#include "hf2onnx/error.h"
#include "hf2onnx/export.h"
#include "models/loader.h"
#include "models/model.h"
#include "models/registry.h"
#include "verify/int8_check.h"

namespace hf2onnx {
namespace fs = std::filesystem;

namespace {

// Files that travel with the model (Optimum / transformers.js layout).
const char* const kCompanionFiles[] = {
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt", "tokenizer.model", "spiece.model",
    "sentencepiece.bpe.model", "source.spm", "target.spm", "preprocessor_config.json"};

// The folder of the .onnx files in the hub layout.
constexpr const char* kOnnxFolder = "onnx";

// transformers.js fetches a model's external data only when config.json says the file has some
// (`transformers.js_config.use_external_data_format`, keyed by file name): say it for every staged .onnx
// file, keeping the rest of the config (and of an existing transformers.js_config) as it was.
void declare_external_data(OutputDir& out) {
  nlohmann::json formats = nlohmann::json::object();
  bool any = false;
  for (const auto& [path, size] : out.staged_files()) {
    if (path.extension() != ".onnx") continue;
    const bool has_data = fs::exists(out.stage(path.lexically_relative(out.final_dir()).string() + "_data"));
    formats[path.filename().string()] = has_data;
    any = any || has_data;
  }
  const fs::path config = out.stage("config.json");
  if (!any || !fs::exists(config)) return;
  nlohmann::json j;
  try {
    std::ifstream in(config, std::ios::binary);
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(config.filename().string() + ": cannot add transformers.js_config: " + e.what());
  }
  if (!j.is_object()) return;
  nlohmann::json& tjs = j["transformers.js_config"];
  if (!tjs.is_object()) tjs = nlohmann::json::object();
  tjs["use_external_data_format"] = formats;
  std::ofstream f(config, std::ios::binary | std::ios::trunc);
  f << j.dump(2) << "\n";
  if (!f) throw Error(config.string() + ": cannot write");
}

Task resolve_task(const std::string& requested, const ArchEntry& arch, const std::string& where) {
  if (requested == "auto") return arch.task;
  auto task = task_from_name(requested);
  std::string supported;
  for (Task t : family_tasks(arch.family)) supported += (supported.empty() ? "" : ", ") + std::string(task_name(t));
  if (!task) throw Error("unknown task '" + requested + "' (tasks of " + arch.family + " models: " + supported + ")");
  for (Task t : family_tasks(arch.family))
    if (t == *task) return t;
  throw Error(where + ": task '" + requested + "' is not supported by " + arch.family + " models (supported: " +
              supported + ")");
}

std::vector<GraphIO> graph_io(const std::vector<TensorSpec>& specs) {
  std::vector<GraphIO> out;
  for (const auto& s : specs) out.push_back({s.name, s.dims});
  return out;
}

}  // namespace

// A companion file that is a symbolic link is copied only when its target lies inside the model folder
// or in a Hugging Face cache's blobs/ (cache snapshots are links into it), or with --follow-symlinks:
// otherwise a link to any file on the machine would be published with the model.
bool may_copy(const fs::path& model_dir, const std::string& name, bool follow_symlinks) {
  const fs::path link = model_dir / name;
  std::error_code ec;
  if (!fs::is_symlink(link, ec) || follow_symlinks) return true;
  const fs::path target = fs::weakly_canonical(link, ec);
  const fs::path root = fs::weakly_canonical(model_dir, ec);
  const auto [r, t] = std::mismatch(root.begin(), root.end(), target.begin(), target.end());
  if (r == root.end()) return true;  // inside the model folder
  const fs::path parent = target.parent_path();
  const std::string repo = parent.parent_path().filename().string();
  if (parent.filename() == "blobs" && (repo.rfind("models--", 0) == 0 || repo.rfind("datasets--", 0) == 0)) return true;
  spdlog::warn("{}: a symbolic link to a file outside the model folder; not copied (--follow-symlinks copies it)",
               link.string());
  return false;
}

namespace {

// Weights that are NaN or infinite export without error but make the model compute NaN: warn, naming
// the tensor and its file, as the bytes stream into the ONNX file (counted here unless the producer did).
void warn_on_non_finite(std::vector<Initializer>& initializers, const hf::Checkpoint& checkpoint) {
  for (auto& init : initializers) {
    FloatFormat format;
    switch (init.data_type) {
      case onnx::TensorProto::FLOAT: format = FloatFormat::Float32; break;
      case onnx::TensorProto::FLOAT16: format = FloatFormat::Float16; break;
      case onnx::TensorProto::BFLOAT16: format = FloatFormat::BFloat16; break;
      default: continue;
    }
    auto it = checkpoint.tensors.find(init.name);
    const std::string source = it == checkpoint.tensors.end() ? "" : it->second.source;
    init.bytes = [inner = init.bytes, name = init.name, source, format, size = onnx_type_size(init.data_type)]() {
      TensorBytes b = inner();
      const uint64_t bad = b.non_finite ? *b.non_finite : count_non_finite(b.data, b.size / size, format);
      if (bad)
        spdlog::warn("{}{}weight '{}' has {} NaN or infinite value{} of {}", source, source.empty() ? "" : ": ", name,
                     bad, bad == 1 ? "" : "s", b.size / size);
      return b;
    };
  }
}

}  // namespace

// One model folder's export into `out`: read → build → trace → lower → write → quantize → verify. The caller
// copies the companion files, writes the report and commits. `folder_of` says where each graph's files go.
ComponentRun export_component(const ExportOptions& opt, const ComponentSource& src, OutputDir& out) {
  ComponentRun run;
  auto stage = [&](const std::string& name, Stopwatch& sw) {
    run.stage_seconds.emplace_back(name, sw.seconds());
    spdlog::debug("{}: peak RSS so far {}, {} minor page faults so far", name, format_bytes(peak_rss_bytes()),
                  minor_faults());
    return sw.seconds();
  };

  Stopwatch sw;
  const fs::path config_path = src.dir / "config.json";
  if (!fs::is_directory(src.dir)) throw Error(src.dir.string() + ": not a directory");
  hf::Config config = hf::Config::load(config_path);
  const ArchEntry& arch = find_architecture(config.architecture(), config_path.string());
  const Task task = src.task ? *src.task : resolve_task(opt.task, arch, config_path.string());
  run.architecture = arch.architecture;
  run.task = task_name(task);
  hf::Checkpoint checkpoint = hf::load_checkpoint(src.dir);
  spdlog::info("read {}: {} tensors, {} ({}) in {:.2f} s", src.dir.string(), checkpoint.tensors.size(),
               format_bytes(checkpoint.total_bytes()), checkpoint.format, stage("read", sw));
  run.checkpoint = {{"format", checkpoint.format}, {"tensors", checkpoint.tensors.size()}, {"bytes", checkpoint.total_bytes()}};

  sw = Stopwatch();
  BuildContext build{config, task, [&](const std::string& key) { return checkpoint.has_tensor(key); }};
  std::shared_ptr<ExportModel> model = with_context(config_path.string(), [&] { return arch.build(build); });
  const bool strict = task == arch.task;
  LoadSummary loaded =
      load_weights(*model->module, checkpoint, model->load_rules, strict, src.dir.string(), /*defer_conversion=*/true);
  for (const auto& k : loaded.unused) spdlog::debug("not used by the {} export: {}", run.task, k);
  if (!loaded.unused.empty())
    spdlog::info("{} checkpoint tensors are not part of the {} export", loaded.unused.size(), run.task);
  spdlog::info("built {} for {}: {} parameters in {:.2f} s", arch.architecture, run.task, loaded.parameters,
               stage("build", sw));

  sw = Stopwatch();
  // The tracer needs the parameters' shapes, not their values: trace with stride-0 zero views in their
  // place (same tensors, so the graph still names them) and keep the checkpoint's pages untouched
  // until they are written.
  // All views share one read-only zero mapping the size of the largest weight (no memory: the kernel's zero
  // page): a stride-0 view would be copied into a fresh full-size tensor by every matmul that reads it,
  // faulting in and zeroing the model's size in pages at every trace.
  std::vector<std::pair<std::string, torch::Tensor>> params;
  std::vector<torch::Tensor> weights;
  int64_t largest = 1;
  for (auto& item : model->module->named_parameters(true)) largest = std::max(largest, item.value().numel());
  std::shared_ptr<const float> zero_pages = zero_floats(static_cast<size_t>(largest));
  const torch::Tensor zeros = torch::from_blob(const_cast<float*>(zero_pages.get()), {largest}, [zero_pages](void*) {},
                                               torch::TensorOptions().dtype(torch::kFloat));
  for (auto& item : model->module->named_parameters(true)) {
    params.emplace_back(loaded.checkpoint_keys.at(item.key()), item.value());
    weights.push_back(item.value().data());
    item.value().set_data(zeros.narrow(0, 0, item.value().numel()).view(item.value().sizes()));
  }
  std::vector<TracedGraph> traced;
  size_t aten_nodes = 0;
  for (const ExportGraph& g : model->graphs) {
    traced.push_back(with_context(graph_file_stem(g.kind), [&] {
      return trace_twice(g.forward, g.example_inputs(trace_shapes()[0]), g.example_inputs(trace_shapes()[1]), params);
    }));
    aten_nodes += std::distance(traced.back().graph->nodes().begin(), traced.back().graph->nodes().end());
  }
  for (size_t i = 0; i < params.size(); ++i) params[i].second.set_data(weights[i]);
  spdlog::info("traced {} graph{}: {} aten nodes in {:.2f} s", traced.size(), traced.size() == 1 ? "" : "s",
               aten_nodes, stage("trace", sw));

  sw = Stopwatch();
  std::vector<LoweredModel> lowered;
  size_t kept_16bit = 0;  // weights written in bfloat16 / float16 (--keep-weight-dtype)
  for (size_t i = 0; i < traced.size(); ++i) {
    const ExportGraph& g = model->graphs[i];
    LowerOptions lower;
    lower.opset = opt.opset;
    lower.inputs = graph_io(g.inputs);
    lower.outputs = graph_io(g.outputs);
    lower.doc_string = std::string("Exported by hf2onnx " HF2ONNX_VERSION " from ") + arch.architecture + " (" +
                       run.task + ")";
    lower.metadata = {{"source_architecture", arch.architecture}, {"task", run.task}};
    lowered.push_back(with_context(graph_file_stem(g.kind), [&] { return lower_to_onnx(traced[i], lower); }));
    LoweredModel& l = lowered.back();
    kept_16bit += store_weights(*l.model.mutable_graph(), l.initializers, l.transposed, loaded.deferred,
                                opt.keep_weight_dtype ? WeightDtype::Stored : WeightDtype::Float32);
    check_model(l.model, l.initializers);
    run.node_count += static_cast<size_t>(l.model.graph().node_size());
  }
  traced.clear();
  run.checkpoint["weights_kept_16bit"] = kept_16bit;  // --keep-weight-dtype: written as stored
  if (kept_16bit) spdlog::info("{} weights stay 16-bit as stored, each read through a Cast to float32", kept_16bit);
  else if (opt.keep_weight_dtype) spdlog::info("--keep-weight-dtype: no weight is stored in bfloat16 or float16 here");
  if (opt.opset <= kMaxCheckedOpset)
    spdlog::info("lowered to {} ONNX nodes at opset {}, checked in {:.2f} s", run.node_count, opt.opset, stage("lower", sw));
  else if (opt.verify.enabled)
    spdlog::info("lowered to {} ONNX nodes at opset {} in {:.2f} s (onnx's checker here knows opsets up to {}: ONNX "
                 "Runtime checks the graph in the verify stage)", run.node_count, opt.opset, stage("lower", sw), kMaxCheckedOpset);
  else
    spdlog::warn("lowered to {} ONNX nodes at opset {} in {:.2f} s, not checked: onnx's checker here knows opsets up to "
                 "{}, and --no-verify skips ONNX Runtime's check", run.node_count, opt.opset, stage("lower", sw), kMaxCheckedOpset);

  sw = Stopwatch();
  const ExternalData external = opt.force_external_data ? ExternalData::Always : ExternalData::Auto;
  auto file_of = [&](GraphKind kind, const char* suffix = "") {
    return src.folder_of(kind) + graph_file_stem(kind) + suffix + ".onnx";
  };
  const bool merge = std::any_of(model->graphs.begin(), model->graphs.end(),
                                 [](const ExportGraph& g) { return g.kind == GraphKind::DecoderWithPast; });
  // Several graphs: the first (the encoder) is written on a second thread while this one writes the others
  // (each file streams its own weights; the time goes into copying them into the page cache).
  auto write_graph = [&](size_t i) {
    warn_on_non_finite(lowered[i].initializers, checkpoint);
    write_onnx(lowered[i].model, lowered[i].initializers, out.stage(file_of(model->graphs[i].kind)), external);
  };
  std::future<void> first = std::async(lowered.size() > 1 ? std::launch::async : std::launch::deferred, write_graph, 0);
  std::exception_ptr failed;
  for (size_t i = 1; i < lowered.size(); ++i) {
    try {
      write_graph(i);
    } catch (...) {
      failed = std::current_exception();
      break;
    }
  }
  first.get();  // waits (and rethrows its error) before this thread's error, so no write outlives the stage
  if (failed) std::rethrow_exception(failed);
  // transformers.js loads one decoder: both decoders as the branches of an If on use_cache_branch.
  auto merge_decoders_into = [&](const char* suffix) {
    Stopwatch merge_sw;
    const std::string merged = file_of(GraphKind::DecoderMerged, suffix);
    merge_decoders(out.stage(file_of(GraphKind::Decoder, suffix)), out.stage(file_of(GraphKind::DecoderWithPast, suffix)),
                   out.stage(merged), external);
    spdlog::info("merged {} and {} into {} in {:.2f} s", file_of(GraphKind::Decoder, suffix),
                 file_of(GraphKind::DecoderWithPast, suffix), merged, merge_sw.seconds());
  };
  if (merge) merge_decoders_into("");
  std::vector<std::pair<std::string, QuantizeResult>> quantized;
  std::vector<std::pair<std::string, Int8Check>> int8_checks;
  if (opt.quantize) {  // every exported graph gets a _quantized twin, checked against it in ONNX Runtime
    for (const ExportGraph& g : model->graphs) {
      const std::string fp32 = file_of(g.kind), int8 = file_of(g.kind, "_quantized");
      quantized.emplace_back(int8, quantize_onnx(out.stage(fp32), out.stage(int8), *opt.quantize));
      Stopwatch check_sw;
      Int8Check check = check_int8(g, out.stage(fp32), out.stage(int8), out.stage(".int8-check"));
      if (check.measured)
        spdlog::info("{} vs {} in ONNX Runtime {} on this machine ({}; other CPUs give other figures), {}: {} in "
                     "{:.2f} s", int8, fp32, check.ort_version, check.cpu, check.input, check.summary(), check_sw.seconds());
      else
        spdlog::warn("{} was not compared with {}: {} (tools/setup.sh installs ONNX Runtime)", int8, fp32, check.why_not);
      int8_checks.emplace_back(int8, std::move(check));
    }
    if (merge) merge_decoders_into("_quantized");
  }
  spdlog::info("wrote {} graph{} in {:.2f} s", lowered.size(), lowered.size() == 1 ? "" : "s", stage("write", sw));

  // What the report says of each graph, taken before the exporter's buffers are released for the verify stage.
  auto io = [](const google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>& vis) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& vi : vis) {
      nlohmann::json dims = nlohmann::json::array();
      for (const auto& d : vi.type().tensor_type().shape().dim())
        dims.push_back(d.has_dim_param() ? nlohmann::json(d.dim_param()) : nlohmann::json(d.dim_value()));
      a.push_back({{"name", vi.name()}, {"elem_type", onnx::TensorProto_DataType_Name(vi.type().tensor_type().elem_type())}, {"dims", dims}});
    }
    return a;
  };
  for (size_t i = 0; i < lowered.size(); ++i) {
    const onnx::GraphProto& g = lowered[i].model.graph();
    std::map<std::string, int> op_counts;
    for (const auto& n : g.node()) op_counts[n.op_type()]++;
    run.graphs.push_back({{"file", file_of(model->graphs[i].kind)}, {"node_count", g.node_size()},
                          {"op_counts", op_counts}, {"inputs", io(g.input())}, {"outputs", io(g.output())}});
  }
  lowered.clear();
  for (size_t i = 0; i < quantized.size(); ++i) {
    const auto& [file, q] = quantized[i];
    run.quantized_files.push_back({{"file", file}, {"per_op", q.quantized_per_op}, {"bytes_before", q.bytes_before},
                                   {"bytes_after", q.bytes_after}, {"seconds", q.seconds}, {"target", opt.quantize->target},
                                   {"accuracy", int8_checks[i].second.to_json()}});
  }

  // The verify stage: the written files in ONNX Runtime against libtorch eager with the real weights.
  std::optional<Verification> verification;
  if (opt.verify.enabled) {
    sw = Stopwatch();
    for (size_t i = 0; i < int8_checks.size() && run.failure.empty(); ++i)
      run.failure = int8_floor_failure(int8_checks[i].first, file_of(model->graphs[i].kind), int8_checks[i].second,
                                       opt.verify.min_cosine);
    // Memory: libtorch's forward reads every weight (bf16 / fp16 ones converted to float32 for it, then freed),
    // then ONNX Runtime loads the float32 files; one after the other, so the peak is about one float32 copy.
    const uint64_t need = loaded.bytes + loaded.bytes / 2 + (512ull << 20), available = memory_available();
    if (run.failure.empty() && available > 0 && need > available) {
      spdlog::warn("not verified: the float32 model ({}) needs about {} to run in libtorch and then in ONNX Runtime, "
                   "and this machine has {} available (hf2onnx verify OUT_DIR MODEL_DIR runs it on a larger machine)",
                   format_bytes(loaded.bytes), format_bytes(need), format_bytes(available));
      verification = Verification{};
      verification->not_done = "the float32 model (" + format_bytes(loaded.bytes) + ") needs about " + format_bytes(need) +
                               ", " + format_bytes(available) + " available";
    } else if (run.failure.empty()) {
      std::map<GraphKind, fs::path> files;
      for (const ExportGraph& g : model->graphs) files[g.kind] = out.stage(file_of(g.kind));
      if (merge) files[GraphKind::DecoderMerged] = out.stage(file_of(GraphKind::DecoderMerged));
      std::map<std::string, torch::Tensor> converted;  // bf16 / fp16 weights as float32, for libtorch's forward
      for (auto& item : model->module->named_parameters(true)) {
        auto it = loaded.deferred.find(loaded.checkpoint_keys.at(item.key()));
        if (it == loaded.deferred.end()) continue;
        converted[item.key()] = item.value().data();
        item.value().set_data(to_float_tensor(*it->second));
      }
      const fs::path tmp = out.stage(".verify");
      RemovedOnExit cleanup{tmp};
      // Once libtorch is done: the converted weights freed, the mapped ones' pages handed back, before ONNX Runtime
      // loads its own copy.
      auto release = [&] {
        for (auto& item : model->module->named_parameters(true)) {
          if (converted.count(item.key())) item.value().set_data(converted[item.key()]);
          else MappedFile::release_pages(item.value().data_ptr(), item.value().nbytes());
        }
        converted.clear();
      };
      verification = with_context("verify", [&] { return verify_graphs(*model, files, tmp, opt.verify, /*eager=*/true, release); });
      if (!verification->ran)
        spdlog::warn("not verified: {} (tools/setup.sh installs ONNX Runtime)", verification->not_done);
      else
        spdlog::info("checked in ONNX Runtime against libtorch at two shapes: {} in {:.2f} s", verification->summary(),
                     stage("verify", sw));
      if (verification->ran && !verification->not_done.empty()) spdlog::info("verify: {}", verification->not_done);
      run.failure = verification->failure_message();
    }
  }
  run.verification = verification ? verification->to_json() : nlohmann::json{{"ran", false}, {"not_done", "--no-verify"}};
  if (!run.failure.empty()) run.verification["failure"] = run.failure;
  return run;
}

// The report is staged beside its path before the commit, so that a report that cannot be written leaves nothing.
void finish_export(const ExportOptions& opt, OutputDir& out, const std::string& failure, const nlohmann::json& report) {
  if (opt.report) out.add_side_file(*opt.report, report.dump(2) + "\n");
  if (!failure.empty()) {
    if (!opt.verify.keep_failed) throw Error("verification failed: " + failure + " (nothing written; --keep-failed keeps the files)");
    out.commit();
    throw Error("verification failed: " + failure + " (files kept in " + out.final_dir().string() + " by --keep-failed)");
  }
  out.commit();
}

ExportResult export_model(const ExportOptions& opt) {
  if (fs::exists(opt.model_dir / "model_index.json")) return export_diffusion_pipeline(opt);
  ExportResult result;
  Stopwatch total;
  OutputDir out(opt.out_dir, OutputDir::Mode::ReplaceFolder, [](const std::string& name) {
    return name == kOnnxFolder ||
           std::find(std::begin(kCompanionFiles), std::end(kCompanionFiles), name) != std::end(kCompanionFiles);
  });
  ComponentSource src;
  src.dir = opt.model_dir;
  src.folder_of = [folder = opt.layout == Layout::Hub ? std::string(kOnnxFolder) + "/" : ""](GraphKind) { return folder; };
  ComponentRun run = export_component(opt, src, out);
  Stopwatch sw;
  for (const char* f : kCompanionFiles)
    if (fs::exists(opt.model_dir / f) && may_copy(opt.model_dir, f, opt.follow_symlinks)) out.copy_in(opt.model_dir / f, f);
  declare_external_data(out);
  for (auto& [name, s] : run.stage_seconds)
    if (name == "write") s += sw.seconds();
  spdlog::info("{} files staged", out.staged_files().size());

  result.architecture = run.architecture;
  result.task = run.task;
  result.opset = opt.opset;
  result.node_count = run.node_count;
  result.stage_seconds = run.stage_seconds;
  for (const auto& [path, size] : out.staged_files()) result.files.emplace_back(path.string(), size);
  result.stage_seconds.emplace_back("total", total.seconds());

  nlohmann::json r;
  if (opt.report) {
    r["architecture"] = result.architecture;
    r["task"] = result.task;
    r["opset"] = result.opset;
    r["node_count"] = result.node_count;
    if (run.graphs.size() == 1) r.update(run.graphs[0]);  // single-graph models: at the top level, as before
    r["graphs"] = run.graphs;
    r["verification"] = run.verification;
    for (const auto& [name, s] : result.stage_seconds) r["seconds"][name] = s;
    for (const auto& [path, size] : result.files) r["files"].push_back({{"path", path}, {"bytes", size}});
    if (run.quantized_files.size() == 1) r["quantized"] = run.quantized_files[0];
    if (!run.quantized_files.empty()) r["quantized_files"] = run.quantized_files;
    r["checkpoint"] = run.checkpoint;
  }
  finish_export(opt, out, run.failure, r);
  spdlog::info("exported {} in {:.2f} s", out.final_dir().string(), total.seconds());
  return result;
}

}  // namespace hf2onnx
