#include "quantize/quantizer.h"

#include <algorithm>
#include <cstring>
#include <fstream>

#include <spdlog/spdlog.h>

#include "common/log.h"
#include "onnx/check.h"
#include "onnx/merge_decoders.h"
#include "onnx/writer.h"
#include "onnx/output_dir.h"
#include "common/mapped_file.h"
#include "common/scratch.h"
#include "hf/tensor_data.h"
#include "hf2onnx/error.h"

namespace hf2onnx {
namespace fs = std::filesystem;

const std::vector<QuantizeTarget>& quantize_targets() {
  static const std::vector<QuantizeTarget> kTargets = {
      {"portable", "uint8", 128,
       "exact on every CPU (default): uint8 weights with a zero point, which every CPU multiplies in 16- or "
       "32-bit arithmetic without saturating; as fast as full-range int8 where VNNI is present. With "
       "--weight-type int8: the avx2 form"},
      {"avx2", "int8", 128,
       "x86 with AVX2 or AVX-512 but no VNNI (AMD Zen 1-3, Intel before Ice Lake): int8 weights whose neighbours "
       "along K keep |w1|+|w2| <= 128, which VPMADDUBSW sums in int16 without saturating; the fastest form exact "
       "there, and exact on every other CPU too"},
      {"avx512-vnni", "int8", 0, "x86 with AVX512-VNNI, AVX-VNNI or AMX: full ±127 int8 weights (not exact without VNNI)"},
      {"arm64", "int8", 0, "ARM64: full ±127 int8 weights (not exact on x86 without VNNI)"},
  };
  return kTargets;
}

namespace {
const QuantizeTarget& find_target(const QuantizeOptions& opt) {
  for (const auto& t : quantize_targets())
    if (opt.target == t.name) return t;
  throw Error("--target: unknown target '" + opt.target + "'");
}
int target_pair_limit(const QuantizeOptions& opt) {
  return opt.reduce_range ? 0 : find_target(opt).pair_sum_limit;  // 7-bit: 64 + 64 <= 128 already
}
}  // namespace

std::string effective_weight_type(const QuantizeOptions& opt) {
  const QuantizeTarget& t = find_target(opt);
  if (opt.weight_type == "auto") return t.weight_type;
  if (opt.weight_type != "int8" && opt.weight_type != "uint8")
    throw Error("--weight-type: '" + opt.weight_type + "' is not auto, int8 or uint8");
  return opt.weight_type;
}

QuantContext::QuantContext(LazyModel& model, const QuantizeOptions& opt)
    : options(opt),
      weight_type(effective_weight_type(opt) == "uint8" ? quant::QType::UInt8 : quant::QType::Int8),
      pair_sum_limit(weight_type == quant::QType::Int8 ? target_pair_limit(opt) : 0),
      model_(model) {
  for (size_t i = 0; i < model.initializers.size(); ++i) {
    init_index_[model.initializers[i].name()] = i;
    names_.insert(model.initializers[i].name());
  }
  const auto& g = model.model.graph();
  for (const auto& vi : g.input()) names_.insert(vi.name());
  for (const auto& vi : g.output()) names_.insert(vi.name());
  for (const auto& n : g.node()) {
    for (const auto& o : n.output()) producers_[o] = &n;
    names_.insert(n.name());
    for (const auto& i : n.input()) names_.insert(i);
    for (const auto& o : n.output()) names_.insert(o);
  }
  if (!opt.exclude_nodes.empty()) exclude_ = std::regex(opt.exclude_nodes);
}

const onnx::NodeProto* QuantContext::producer(const std::string& value) const {
  auto it = producers_.find(value);
  return it == producers_.end() ? nullptr : it->second;
}

const LazyTensor* QuantContext::initializer(const std::string& name) const {
  auto it = init_index_.find(name);
  if (it != init_index_.end()) return &model_.initializers[it->second];
  for (const auto& t : added_)
    if (t.name() == name) return &t;
  return nullptr;
}

bool QuantContext::is_float_initializer(const std::string& name, int rank) const {
  const LazyTensor* t = initializer(name);
  return t && t->header.data_type() == onnx::TensorProto::FLOAT && (rank < 0 || t->header.dims_size() == rank);
}

std::optional<QuantContext::ConstantWeight> QuantContext::constant_weight(const std::string& value) const {
  if (is_float_initializer(value, -1)) return ConstantWeight{value, false};
  const onnx::NodeProto* n = producer(value);
  if (!n || n->input_size() != 1) return std::nullopt;
  if (n->op_type() == "Cast") {
    const LazyTensor* t = initializer(n->input(0));
    bool to_float = false;
    for (const auto& a : n->attribute()) to_float = to_float || (a.name() == "to" && a.i() == onnx::TensorProto::FLOAT);
    const bool half = t && (t->header.data_type() == onnx::TensorProto::FLOAT16 ||
                            t->header.data_type() == onnx::TensorProto::BFLOAT16);
    if (to_float && half) return ConstantWeight{n->input(0), false};
    return std::nullopt;
  }
  if (n->op_type() == "Transpose") {
    auto inner = constant_weight(n->input(0));
    if (!inner || inner->transposed || initializer(inner->initializer)->header.dims_size() != 2) return std::nullopt;
    for (const auto& a : n->attribute())
      if (a.name() == "perm" && (a.ints_size() != 2 || a.ints(0) != 1 || a.ints(1) != 0)) return std::nullopt;
    return ConstantWeight{inner->initializer, true};
  }
  return std::nullopt;
}

bool QuantContext::excluded(const onnx::NodeProto& node) const {
  if (!exclude_) return false;
  if (std::regex_search(node.name(), *exclude_)) return true;
  for (const auto& o : node.output())
    if (std::regex_search(o, *exclude_)) return true;
  return false;
}

std::string QuantContext::fresh(const std::string& base) {
  std::string name = base;
  for (int i = 1; names_.count(name); ++i) name = base + "_" + std::to_string(i);
  names_.insert(name);
  return name;
}

onnx::NodeProto& QuantContext::add_node(const std::string& op, const std::vector<std::string>& inputs,
                                        const std::vector<std::string>& outputs, const std::string& name) {
  nodes.emplace_back();
  auto& n = nodes.back();
  n.set_op_type(op);
  n.set_name(name);
  for (const auto& i : inputs) n.add_input(i);
  for (const auto& o : outputs) n.add_output(o);
  return n;
}

void QuantContext::add_initializer(LazyTensor t) { added_.push_back(std::move(t)); }

ActivationQuant QuantContext::dynamic_quantize(const std::string& activation) {
  auto it = activations_.find(activation);
  if (it != activations_.end()) return it->second;
  ActivationQuant a{fresh(activation + "_quantized"), fresh(activation + "_scale"), fresh(activation + "_zero_point")};
  add_node("DynamicQuantizeLinear", {activation}, {a.data, a.scale, a.zero_point}, fresh(activation + "_QuantizeLinear"));
  return activations_[activation] = a;
}

QuantizedWeight QuantContext::quantize_weight(const std::string& name, quant::QType type, bool symmetric, int axis,
                                              const onnx::NodeProto& node, bool transposed, int pair_sum_limit) {
  const std::string key = name + "|" + std::to_string(static_cast<int>(type)) + "|" + std::to_string(axis) + "|" +
                          std::to_string(symmetric) + "|" + std::to_string(transposed) + "|" +
                          std::to_string(pair_sum_limit);
  auto it = weights_.find(key);
  if (it != weights_.end()) return it->second;
  const LazyTensor& t = *initializer(name);
  std::vector<int64_t> dims = t.dims();
  if (transposed) dims = {dims[1], dims[0]};
  const std::string base = transposed ? name + "_transposed" : name;
  quant::WeightSpec spec;
  spec.type = type;
  spec.symmetric = symmetric;
  spec.reduce_range = options.reduce_range;
  spec.axis = axis;
  spec.pair_sum_limit = pair_sum_limit;
  // Quantizes the source weight (read from its map, converted to float32 and transposed if asked, pages given
  // back afterwards).
  // `into`: where the values go (room for every one), or null for the scales and zero points alone.
  auto quantize = [source = t, transposed, spec, name](uint8_t* into) {
    const TensorBytes bytes = source.bytes();
    const float* values = static_cast<const float*>(bytes.data);
    const int32_t type = source.header.data_type();
    if (transposed || type != onnx::TensorProto::FLOAT) {  // read from the file when mapped
      hf::TensorData view;
      view.dtype = type == onnx::TensorProto::FLOAT16 ? hf::DType::F16
                   : type == onnx::TensorProto::BFLOAT16 ? hf::DType::BF16 : hf::DType::F32;
      view.shape = source.dims();
      view.strides = hf::contiguous_strides(view.shape);
      view.data = static_cast<const uint8_t*>(bytes.data);
      float* converted = scratch_floats(static_cast<size_t>(source.numel()), Scratch::Converted);  // this thread's, reused
      hf::read_as_float32(view, transposed, converted);
      values = converted;
    } else {
      MappedFile::populate(bytes.data, bytes.size);  // read in place: mapped in one call
    }
    std::vector<int64_t> shape = source.dims();
    if (transposed) shape = {shape[1], shape[0]};
    quant::QuantizedTensor q = with_context("quantizing '" + name + "'",
                                            [&] { return quant::quantize_tensor_into(values, shape, spec, into); });
    MappedFile::release_pages(bytes.data, bytes.size);
    return q;
  };
  // Now for the scales and zero points (small); the quantized values are computed when the file is written (the
  // same deterministic computation), so that they are in memory one weight at a time.
  const quant::QuantizedTensor q = quantize(nullptr);

  const int32_t qtype = type == quant::QType::UInt8 ? onnx::TensorProto::UINT8 : onnx::TensorProto::INT8;
  QuantizedWeight w{fresh(base + "_quantized"), fresh(base + "_scale"), fresh(base + "_zero_point")};
  LazyTensor weight = LazyTensor::owned(w.data, qtype, dims, std::make_shared<std::vector<uint8_t>>());
  weight.data = nullptr;
  const size_t count = static_cast<size_t>(t.numel());
  weight.produce = [quantize, scales = q.scales, zero_points = q.zero_points, name, count]() {
    // Into this thread's reused buffer (valid until it produces its next weight, as the writer requires): a fresh
    // one per weight cost a page fault per 4 KB of every quantized weight.
    uint8_t* values = scratch_bytes(count, Scratch::Quantized);
    const quant::QuantizedTensor again = quantize(values);
    if (again.scales != scales || again.zero_points != zero_points)
      throw Error("internal: quantizing '" + name + "' twice gave different scales");
    return TensorBytes{values, count};
  };
  add_initializer(std::move(weight));
  std::vector<int64_t> param_dims;
  if (axis >= 0) param_dims = {static_cast<int64_t>(q.scales.size())};
  auto scales = std::make_shared<std::vector<uint8_t>>(q.scales.size() * 4);
  std::memcpy(scales->data(), q.scales.data(), scales->size());
  add_initializer(LazyTensor::owned(w.scale, onnx::TensorProto::FLOAT, param_dims, scales));
  auto zps = std::make_shared<std::vector<uint8_t>>();
  for (int z : q.zero_points) zps->push_back(static_cast<uint8_t>(z & 0xff));
  add_initializer(LazyTensor::owned(w.zero_point, qtype, param_dims, zps));

  auto [smin, smax] = std::minmax_element(q.scales.begin(), q.scales.end());
  auto [zmin, zmax] = std::minmax_element(q.zero_points.begin(), q.zero_points.end());
  report_nodes.push_back({{"node", node.name()}, {"op_type", node.op_type()}, {"weight", base}, {"shape", dims},
                          {"type", type == quant::QType::UInt8 ? "uint8" : "int8"},
                          {"per_channel", axis >= 0}, {"pair_sum_limit", pair_sum_limit},
                          {"scale", {*smin, *smax}}, {"zero_point", {*zmin, *zmax}}});
  return weights_[key] = w;
}

std::vector<LazyTensor> QuantContext::initializers_out() const {
  std::set<std::string> used;
  for (const auto& n : nodes)
    for (const auto& i : n.input()) used.insert(i);
  for (const auto& o : model_.model.graph().output()) used.insert(o.name());
  std::vector<LazyTensor> out;
  for (const auto& t : model_.initializers)
    if (used.count(t.name())) out.push_back(t);
  for (const auto& t : added_)
    if (used.count(t.name())) out.push_back(t);
  return out;
}

void remove_dead_nodes(std::vector<onnx::NodeProto>& nodes, const onnx::GraphProto& graph) {
  for (bool changed = true; changed;) {
    std::set<std::string> read;
    for (const auto& o : graph.output()) read.insert(o.name());
    for (const auto& n : nodes)
      for (const auto& i : n.input()) read.insert(i);
    changed = false;
    std::vector<onnx::NodeProto> kept;
    for (auto& n : nodes) {
      bool used = false;
      for (const auto& o : n.output()) used = used || read.count(o);
      if (used) kept.push_back(std::move(n));
      else changed = true;
    }
    nodes = std::move(kept);
  }
}

namespace {

uint64_t total_size(const fs::path& model) {
  uint64_t n = fs::file_size(model);
  fs::path data = model.string() + "_data";
  if (fs::exists(data)) n += fs::file_size(data);
  return n;
}

void validate(const QuantizeOptions& opt) {
  for (const auto& op : opt.op_types)
    if (op != "MatMul" && op != "Gemm" && op != "Gather")
      throw Error("--op-types: unknown op type '" + op + "' (supported: MatMul, Gemm, Gather)");
  effective_weight_type(opt);  // throws on an unknown target or weight type
  try {
    std::regex re(opt.exclude_nodes);
  } catch (const std::regex_error& e) {
    throw Error("--exclude-nodes: invalid regular expression '" + opt.exclude_nodes + "'");
  }
}

}  // namespace

QuantizeResult quantize_onnx(const fs::path& in, const fs::path& out, const QuantizeOptions& opt) {
  validate(opt);
  Stopwatch sw;
  LazyModel model = read_onnx_lazy(in);
  int64_t opset = -1;
  for (auto& o : *model.model.mutable_opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") {
      opset = o.version();
      if (opset >= 10 && opset < 11) o.set_version(11);  // DynamicQuantizeLinear needs opset 11
    }
  if (opset < 10)
    throw Error(in.string() + ": opset " + std::to_string(opset) + " is below 10, the first with integer MatMul");

  QuantContext ctx(model, opt);
  auto enabled = [&](const std::string& op) {
    return std::find(opt.op_types.begin(), opt.op_types.end(), op) != opt.op_types.end();
  };
  std::vector<onnx::NodeProto> nodes(model.model.graph().node().begin(), model.model.graph().node().end());
  if (enabled("Gemm")) rewrite_gemm_as_matmul(ctx, nodes);
  for (const auto& n : nodes) {
    const bool from_gemm = ctx.gemm_matmuls.count(n.name()) > 0;
    const std::string as = from_gemm ? "Gemm" : n.op_type();
    const OpQuantizer* q = nullptr;
    for (const auto& e : quantizer_table())
      if (n.op_type() == e.op_type && enabled(as)) q = &e;
    if (q && !ctx.excluded(n) && q->should_quantize(ctx, n)) {
      q->quantize(ctx, n);
      ctx.counts[as]++;
    } else {
      ctx.nodes.push_back(n);
    }
  }
  release_scratch();  // the scales are known; the writer's threads quantize again, each in its own buffers
  if (ctx.counts.empty()) spdlog::warn("{}: nothing to quantize; writing an unchanged copy", in.string());
  remove_dead_nodes(ctx.nodes, model.model.graph());

  std::vector<Initializer> inits;
  for (const auto& t : ctx.initializers_out()) inits.push_back(t.as_initializer());
  auto* graph = model.model.mutable_graph();
  graph->clear_node();
  for (auto& n : ctx.nodes) *graph->add_node() = std::move(n);
  check_model(model.model, inits);
  write_onnx(model.model, inits, out, opt.force_external_data ? ExternalData::Always : ExternalData::Auto);

  QuantizeResult r;
  r.quantized_per_op = ctx.counts;
  r.bytes_before = total_size(in);
  r.bytes_after = total_size(out);
  r.seconds = sw.seconds();
  std::string counts;
  for (const auto& [op, c] : r.quantized_per_op) counts += (counts.empty() ? "" : ", ") + op + " " + std::to_string(c);
  spdlog::info("quantized {} ({}): {} → {} in {:.2f} s", out.filename().string(), counts.empty() ? "nothing" : counts,
               format_bytes(r.bytes_before), format_bytes(r.bytes_after), r.seconds);
  if (opt.report) {
    nlohmann::json j;
    j["input"] = in.string();
    j["output"] = out.string();
    j["options"] = {{"weight_type", effective_weight_type(opt)}, {"per_channel", opt.per_channel},
                    {"reduce_range", opt.reduce_range}, {"target", opt.target}, {"op_types", opt.op_types},
                    {"exclude_nodes", opt.exclude_nodes}};
    j["quantized_per_op"] = r.quantized_per_op;
    j["nodes"] = ctx.report_nodes;
    j["bytes_before"] = r.bytes_before;
    j["bytes_after"] = r.bytes_after;
    j["seconds"] = r.seconds;
    r.report = j.dump(2) + "\n";
  }
  return r;
}

QuantizeResult quantize_file(const fs::path& in, const fs::path& out, const QuantizeOptions& opt) {
  if (!fs::exists(in)) throw Error(in.string() + ": no such file");
  if (fs::weakly_canonical(in) == fs::weakly_canonical(out))
    throw Error(out.string() + ": the output would overwrite the input; choose another path");
  fs::path dir = out.parent_path().empty() ? fs::path(".") : out.parent_path();
  OutputDir staging(dir, OutputDir::Mode::AddFiles);
  QuantizeResult r = quantize_onnx(in, staging.stage(out.filename().string()), opt);
  if (opt.report) {
    auto j = nlohmann::json::parse(r.report);
    j["output"] = out.string();  // not the staged path
    staging.add_side_file(*opt.report, j.dump(2) + "\n");
  }
  staging.commit();
  return r;
}

std::vector<std::pair<fs::path, QuantizeResult>> quantize_folder(const fs::path& dir, const QuantizeOptions& opt) {
  const std::vector<fs::path> fp32 = export_onnx_files(dir, [](const std::string& name) {
    const std::string tail = "_quantized.onnx";
    const bool quantized = name.size() >= tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
    return !quantized && name != "decoder_model_merged.onnx";  // the merged one is rebuilt from the quantized decoders
  });
  if (fp32.empty()) throw Error(dir.string() + ": no .onnx models in it or in its onnx/ folder");
  const fs::path files = fp32.front().parent_path();
  OutputDir staging(files, OutputDir::Mode::AddFiles);
  std::vector<std::pair<fs::path, QuantizeResult>> results;
  for (const fs::path& in : fp32) {  // the report text is made when asked for and written here, once
    const std::string out = in.stem().string() + "_quantized.onnx";
    results.emplace_back(files / out, with_context(in.string(), [&] { return quantize_onnx(in, staging.stage(out), opt); }));
  }
  if (fs::exists(files / "decoder_model.onnx") && fs::exists(files / "decoder_with_past_model.onnx")) {
    Stopwatch sw;
    merge_decoders(staging.stage("decoder_model_quantized.onnx"), staging.stage("decoder_with_past_model_quantized.onnx"),
                   staging.stage("decoder_model_merged_quantized.onnx"),
                   opt.force_external_data ? ExternalData::Always : ExternalData::Auto);
    spdlog::info("merged the quantized decoders into decoder_model_merged_quantized.onnx in {:.2f} s", sw.seconds());
  }
  if (opt.report) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& [path, r] : results) {
      auto one = nlohmann::json::parse(r.report);
      one["output"] = path.string();
      j.push_back(one);
    }
    staging.add_side_file(*opt.report, j.dump(2) + "\n");
  }
  staging.commit();
  return results;
}

}  // namespace hf2onnx
