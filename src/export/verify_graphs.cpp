#include "export/verify_graphs.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/log.h"
#include "common/temp_dir.h"
#include "hf2onnx/error.h"
#include "verify/compare.h"
#include "verify/int8_check.h"
#include "verify/ort_runner.h"

namespace hf2onnx {
namespace fs = std::filesystem;

const std::vector<DimSizes>& verify_shapes() {
  // Trace shapes: batch 2 / 3, new tokens 3 / 4, past 4 / 5 (models/model.h). Whisper's 3000 frames are its
  // declared input size at both. A decoder-only model's second shape has no past: its one call is uncached, as a
  // prompt's first call is (the first shape checks steps on top of a cache).
  static const std::vector<DimSizes> kShapes = {
      {{"batch_size", 1}, {"sequence_length", 5}, {"past_sequence_length", 6}, {"encoder_sequence_length", 9},
       {"decoder_sequence_length", 5}, {"past_decoder_sequence_length", 6}, {"text_batch_size", 1}, {"image_batch_size", 4},
       {"height", 7}, {"width", 12}},
      {{"batch_size", 4}, {"sequence_length", 7}, {"past_sequence_length", 0}, {"encoder_sequence_length", 6},
       {"decoder_sequence_length", 7}, {"past_decoder_sequence_length", 2}, {"text_batch_size", 5}, {"image_batch_size", 1},
       {"height", 8}, {"width", 4}}};
  return kShapes;
}

NpyArray to_npy(const torch::Tensor& t0) {
  torch::Tensor t = t0.scalar_type() == torch::kLong || t0.scalar_type() == torch::kBool ? t0.contiguous()
                                                                                         : t0.to(torch::kFloat).contiguous();
  NpyArray a;
  a.dtype = t.scalar_type() == torch::kLong ? "<i8" : t.scalar_type() == torch::kBool ? "|b1" : "<f4";
  a.shape.assign(t.sizes().begin(), t.sizes().end());
  const auto* p = static_cast<const uint8_t*>(t.data_ptr());
  a.bytes.assign(p, p + t.nbytes());
  return a;
}

const OutputCheck* Verification::first_failure() const {
  for (const auto& c : checks)
    if (!c.ok()) return &c;
  return nullptr;
}

nlohmann::json Verification::to_json() const {
  nlohmann::json j = {{"ran", ran}, {"reference", eager ? "libtorch eager" : "ONNX Runtime (self-consistency)"},
                      {"seconds", seconds}, {"passed", ran && !first_failure()}};
  if (!not_done.empty()) j["not_done"] = not_done;
  j["checks"] = nlohmann::json::array();
  for (const auto& c : checks)
    j["checks"].push_back({{"file", c.file}, {"output", c.output}, {"what", c.what}, {"max_abs_diff", c.diff},
                           {"tolerance", c.tolerance}, {"ok", c.ok()}});
  return j;
}

std::string Verification::summary() const {
  std::map<std::string, double> worst;  // file → largest diff / tolerance
  for (const auto& c : checks) {
    const double r = c.tolerance > 0 ? c.diff / c.tolerance : (c.diff > 0 ? INFINITY : 0);
    worst[c.file] = std::max(worst[c.file], std::isnan(r) ? INFINITY : r);
  }
  std::string s;
  for (const auto& [file, r] : worst) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "%s%s at %.2g of its tolerance", s.empty() ? "" : "; ", file.c_str(), r);
    s += buf;
  }
  return std::to_string(checks.size()) + " outputs checked against " + (eager ? "libtorch eager" : "themselves") +
         (s.empty() ? "" : " (" + s + ")");
}

std::string Verification::failure_message() const {
  const OutputCheck* c = first_failure();
  if (!c) return "";
  char buf[96];
  std::snprintf(buf, sizeof buf, "max |difference| %.3g > tolerance %.3g", c->diff, c->tolerance);
  size_t failed = 0;
  for (const auto& x : checks) failed += !x.ok();
  return c->file + ": output '" + c->output + "' (" + c->what + "): " + buf +
         (failed > 1 ? " (" + std::to_string(failed - 1) + " more outputs failed)" : "");
}

namespace {

std::string describe(const DimSizes& d, const std::vector<TensorSpec>& inputs) {
  std::string s;
  for (const auto& [name, size] : d) {
    bool used = false;
    for (const auto& in : inputs) used = used || std::count(in.dims.begin(), in.dims.end(), name) > 0;
    if (used) s += (s.empty() ? "" : ", ") + name + " " + std::to_string(size);
  }
  return s;
}

double max_abs(const NpyArray& a) {  // of the finite values
  double m = 0;
  if (a.dtype != "<f4") return 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    if (std::isfinite(a.f32()[i])) m = std::max(m, static_cast<double>(std::fabs(a.f32()[i])));
  return m;
}

// Positions [from, from + n) of axis 1 of a float array [B, L, ...].
NpyArray slice1(const NpyArray& a, int64_t from, int64_t n) {
  NpyArray out = a;
  const int64_t b = a.shape.at(0), l = a.shape.at(1);
  int64_t inner = 4;
  for (size_t i = 2; i < a.shape.size(); ++i) inner *= a.shape[i];
  out.shape[1] = n;
  out.bytes.assign(static_cast<size_t>(b * n * inner), 0);
  for (int64_t r = 0; r < b; ++r)
    std::copy_n(a.bytes.begin() + (r * l + from) * inner, n * inner, out.bytes.begin() + r * n * inner);
  return out;
}

// max |got - want| over float32 arrays of one shape, where a NaN or an infinity in both at the same place (a model
// whose weights hold one) counts as equal; INFINITY where only one has it.
double max_diff(const NpyArray& got, const NpyArray& want) {
  double m = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const float a = got.f32()[i], b = want.f32()[i];
    if ((std::isnan(a) && std::isnan(b)) || (std::isinf(a) && a == b)) continue;
    const double d = std::fabs(static_cast<double>(a) - b);
    m = std::max(m, std::isnan(d) ? INFINITY : d);
  }
  return m;
}

// One comparison: `got` against `want`, or, with no reference (want empty), that `got` is finite.
OutputCheck compare(const std::string& file, const std::string& output, const std::string& what, const NpyArray& got,
                    const NpyArray* want, const VerifyOptions& opt) {
  OutputCheck c{file, output, what, 0, 0};
  if (!want) {
    c.diff = got.dtype == "<f4" ? max_abs_diff(got, got) : 0;  // NaN or inf → INFINITY
    c.tolerance = opt.atol;
    return c;
  }
  const bool same = got.shape == want->shape && got.dtype == want->dtype;
  c.diff = !same ? INFINITY : want->dtype == "<f4" ? max_diff(got, *want) : (got.bytes == want->bytes ? 0 : INFINITY);
  c.tolerance = opt.atol + opt.rtol * max_abs(*want);
  return c;
}

bool has_input(const ExportGraph& g, const std::string& prefix) {
  return std::any_of(g.inputs.begin(), g.inputs.end(), [&](const TensorSpec& s) { return s.name.rfind(prefix, 0) == 0; });
}

const ExportGraph* find_graph(const ExportModel& m, GraphKind kind) {
  for (const auto& g : m.graphs)
    if (g.kind == kind) return &g;
  return nullptr;
}

void write_inputs(const ExportGraph& g, const std::vector<torch::Tensor>& inputs, const fs::path& dir) {
  fs::create_directories(dir);
  for (size_t i = 0; i < inputs.size(); ++i) write_npy(dir / (g.inputs[i].name + ".npy"), to_npy(inputs[i]));
}

}  // namespace

// The INT8 check's input as .npy files, one per model input: the second trace shape with more rows and
// positions than the trace needs (the check compares outputs row by row; 5 x 6 as before the traces shrank).
namespace {
std::string write_example_inputs(const ExportGraph& model, const fs::path& dir) {
  DimSizes dims = trace_shapes()[1];
  dims.erase("frames");  // trace-only: the model's own input length
  dims["batch_size"] = 5;
  dims["sequence_length"] = 6;
  if (has_input(model, "input_features"))
    dims["batch_size"] = 2;  // 30 s of audio per row: two rows keep the check short
  std::vector<torch::Tensor> tensors = model.example_inputs(dims);
  fs::create_directories(dir);
  for (size_t i = 0; i < model.inputs.size(); ++i) write_npy(dir / (model.inputs[i].name + ".npy"), to_npy(tensors.at(i)));
  std::string s;  // the dynamic sizes this graph's inputs use
  for (const auto& [name, size] : dims) {
    bool used = false;
    for (const auto& in : model.inputs) used = used || std::count(in.dims.begin(), in.dims.end(), name) > 0;
    if (used) s += (s.empty() ? "" : ", ") + name + " " + std::to_string(size);
  }
  return "example input (" + s + ")";
}
}  // namespace

// INT8 against FP32 in ONNX Runtime on this machine, on the exporter's example input (staged files). Its
// inputs and outputs live in `tmp` (inside the staging folder: removed with it on any failure or signal).
Int8Check check_int8(const ExportGraph& model, const fs::path& fp32, const fs::path& int8, const fs::path& tmp) {
  RemovedOnExit cleanup{tmp};
  const std::string input = write_example_inputs(model, tmp / "inputs");
  return with_context(int8.filename().string(), [&] { return compare_int8(fp32, int8, tmp / "inputs", input); });
}

uint64_t memory_available() {
  if (const char* test = std::getenv("HF2ONNX_TEST_MEM_AVAILABLE")) return std::stoull(test);  // tests of the plan
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return 0;
}

std::string int8_floor_failure(const std::string& file, const std::string& fp32, const Int8Check& check, double min_cosine) {
  if (!check.measured) return "";
  for (const auto& o : check.outputs) {
    if (o.output.rfind("present.", 0) == 0 || o.cosine >= min_cosine) continue;
    char buf[160];
    std::snprintf(buf, sizeof buf, "cosine %.5f against %s < --min-cosine %.4g", o.cosine, fp32.c_str(), min_cosine);
    return file + ": output '" + o.output + "': " + buf;
  }
  return "";
}

Verification verify_graphs(const ExportModel& model, const std::map<GraphKind, fs::path>& files, const fs::path& tmp,
                           const VerifyOptions& opt, bool eager, const std::function<void()>& release_weights) {
  Stopwatch sw;
  Verification v;
  v.eager = eager;
  auto runner = OrtRunner::find(&v.not_done);
  if (!runner) return v;
  fs::create_directories(tmp);
  // ONNX Runtime on every core, as libtorch's forward (up to 4: small graphs gain nothing from more); a change of
  // summation order the threads may bring stays far inside the tolerances.
  const int threads = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 4u));

  // Inputs (and libtorch's outputs) of every graph at both shapes; one ONNX Runtime process runs them all.
  struct Run {
    const ExportGraph* graph;
    size_t shape;
    fs::path file, dir;
    std::string what;
    fs::path out;  // ONNX Runtime's outputs: dir/ort, or for a decoder whose cache is checked, the steps' one call
  };
  auto run_dir = [&](GraphKind kind, size_t shape) { return tmp / (std::string(graph_file_stem(kind)) + "_" + std::to_string(shape)); };
  std::vector<Run> runs;
  // Whisper's encoder reads 30 s of audio per row whatever the shape (its declared input size): rows 1 and 2
  // rather than 1 and 4 (whisper-small: 98 s of verification at 1 + 4 rows, most of it the encoder).
  const bool long_rows = std::any_of(model.graphs.begin(), model.graphs.end(),
                                     [](const ExportGraph& g) { return has_input(g, "input_features"); });
  for (const ExportGraph& g : model.graphs) {
    auto it = files.find(g.kind);
    if (it == files.end()) continue;
    for (size_t k = 0; k < verify_shapes().size(); ++k) {
      DimSizes d = verify_shapes()[k];
      if (long_rows) d["batch_size"] = static_cast<int64_t>(k) + 1;
      const fs::path dir = run_dir(g.kind, k);
      const std::vector<torch::Tensor> inputs = g.example_inputs(d);
      write_inputs(g, inputs, dir / "in");
      if (eager) {
        torch::NoGradGuard no_grad;
        const std::vector<torch::Tensor> outputs = g.forward(inputs);
        fs::create_directories(dir / "expected");
        for (size_t i = 0; i < outputs.size(); ++i) write_npy(dir / "expected" / (g.outputs[i].name + ".npy"), to_npy(outputs[i]));
      }
      runs.push_back({&g, k, it->second, dir, describe(d, g.inputs), dir / "ort"});
    }
  }
  // KV caches: a prefill then two cached steps of one token against one call on the same inputs, in one process
  // per decoder whose one call is also the run compared with libtorch.
  constexpr int kSteps = 2;
  std::map<std::pair<std::string, std::string>, std::vector<Run*>> chains;  // (full, step) file → its runs
  for (Run& r : runs) {
    if (!r.graph->steps_may_differ.empty()) {
      if (r.shape == 0) v.not_done += (v.not_done.empty() ? "" : "; ") + std::string("cached steps not compared: ") + r.graph->steps_may_differ;
      continue;
    }
    if (r.graph->kind == GraphKind::Model && has_input(*r.graph, "past_key_values."))
      chains[{r.file.string(), r.file.string()}].push_back(&r);
    else if (r.graph->kind == GraphKind::Decoder && files.count(GraphKind::DecoderWithPast))
      chains[{r.file.string(), files.at(GraphKind::DecoderWithPast).string()}].push_back(&r);
  }
  for (auto& [models, chain_runs] : chains)
    for (Run* r : chain_runs) r->out = r->dir / "steps" / "full";
  std::vector<OrtJob> jobs;
  for (const Run& r : runs)
    if (r.out == r.dir / "ort") jobs.push_back({r.file, r.dir / "in", r.out});
  spdlog::debug("verify: inputs{} for {} runs in {:.2f} s", eager ? " and libtorch's outputs" : "", runs.size(), sw.seconds());
  if (release_weights) release_weights();
  Stopwatch phase;
  if (!jobs.empty()) runner->run(jobs, OrtCpu::Native, threads);
  spdlog::debug("verify: ONNX Runtime ran {} of them in {:.2f} s", jobs.size(), phase.seconds());
  phase = Stopwatch();
  for (const auto& [models, chain_runs] : chains) {
    std::vector<std::string> args = {models.first, models.second};
    for (const Run* r : chain_runs) {
      args.push_back((r->dir / "in").string());
      args.push_back((r->dir / "steps").string());
    }
    args.insert(args.end(), {"--steps", std::to_string(kSteps), "--threads", std::to_string(threads)});
    runner->run_tool("ort_steps.mjs", args);
    const std::string file = fs::path(models.first).filename().string() +
                             (models.first == models.second ? "" : " + " + fs::path(models.second).filename().string());
    for (const Run* r : chain_runs) {
      const std::string first = r->graph->outputs.front().name;
      const NpyArray full = read_npy(r->dir / "steps" / "full" / (first + ".npy"));
      const NpyArray stepped = read_npy(r->dir / "steps" / "steps" / (first + ".npy"));
      const NpyArray tail = slice1(full, full.shape.at(1) - kSteps, kSteps);
      v.checks.push_back(compare(file, first, "prefill + " + std::to_string(kSteps) + " cached steps against one call, " + r->what,
                                 stepped, &tail, opt));
    }
  }
  spdlog::debug("verify: cached steps in {:.2f} s", phase.seconds());
  for (const Run& r : runs)
    for (const TensorSpec& o : r.graph->outputs) {
      const NpyArray got = read_npy(r.out / (o.name + ".npy"));
      if (eager) {
        const NpyArray want = read_npy(r.dir / "expected" / (o.name + ".npy"));
        v.checks.push_back(compare(r.file.filename().string(), o.name, "against libtorch, " + r.what, got, &want, opt));
      } else {
        v.checks.push_back(compare(r.file.filename().string(), o.name, "finite at " + r.what, got, nullptr, opt));
      }
    }
  phase = Stopwatch();
  // The merged decoder: each branch of its If on its decoder's inputs, against that decoder's file.
  const ExportGraph* dec = find_graph(model, GraphKind::Decoder);
  const ExportGraph* past = find_graph(model, GraphKind::DecoderWithPast);
  if (files.count(GraphKind::DecoderMerged) && dec && past) {
    const fs::path merged = files.at(GraphKind::DecoderMerged);
    std::vector<OrtJob> merged_jobs;
    std::vector<std::pair<const Run*, fs::path>> branches;
    for (const Run& r : runs) {
      if (r.graph != dec && r.graph != past) continue;
      const bool cached = r.graph == past;
      const fs::path in = r.dir / (cached ? "merged_in_cached" : "merged_in");
      fs::copy(r.dir / "in", in, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
      const bool flag = cached;
      write_npy(in / "use_cache_branch.npy", NpyArray{"|b1", {1}, {static_cast<uint8_t>(flag)}});
      const int64_t batch = read_npy(r.dir / "in" / (r.graph->inputs.front().name + ".npy")).shape.at(0);
      for (const TensorSpec& s : past->inputs)  // the no-past branch: empty caches (unused)
        if (s.name.rfind("past_key_values.", 0) == 0 && !fs::exists(in / (s.name + ".npy")))
          write_npy(in / (s.name + ".npy"), NpyArray{"<f4", {batch, std::stoll(s.dims[1]), 0, std::stoll(s.dims[3])}, {}});
      for (const TensorSpec& s : dec->inputs)  // the cached branch: the no-past inputs it does not read, at this shape
        if (!fs::exists(in / (s.name + ".npy")))
          fs::copy_file(run_dir(GraphKind::Decoder, r.shape) / "in" / (s.name + ".npy"), in / (s.name + ".npy"));
      merged_jobs.push_back({merged, in, in.parent_path() / (cached ? "merged_ort_cached" : "merged_ort")});
      branches.emplace_back(&r, merged_jobs.back().out_dir);
    }
    runner->run(merged_jobs, OrtCpu::Native, threads);
    for (const auto& [r, out] : branches)
      for (const TensorSpec& o : r->graph->outputs) {
        const NpyArray got = read_npy(out / (o.name + ".npy")), want = read_npy(r->out / (o.name + ".npy"));
        v.checks.push_back(compare(merged.filename().string(), o.name,
                                   std::string(r->graph == past ? "cached" : "no-past") + " branch against " +
                                       r->file.filename().string() + ", " + r->what,
                                   got, &want, opt));
      }
  }
  spdlog::debug("verify: merged decoder in {:.2f} s", phase.seconds());
  v.ran = true;
  v.seconds = sw.seconds();
  return v;
}

}  // namespace hf2onnx
