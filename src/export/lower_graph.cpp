#include "export/lower_graph.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "export/lowering/table.h"
#include "hf2onnx/error.h"

namespace hf2onnx {
namespace {

void set_value_info(LoweringContext& ctx, onnx::ValueInfoProto* vi, const Value* v, const GraphIO& io) {
  vi->set_name(io.name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx_dtype(ctx.dtype(v)));
  auto dims = ctx.dims(v);
  if (io.dims.size() != dims.size())
    throw Error("'" + io.name + "' has rank " + std::to_string(dims.size()) + " but its spec names " +
                std::to_string(io.dims.size()) + " dims");
  auto* shape = tt->mutable_shape();
  for (size_t i = 0; i < dims.size(); ++i) {
    auto* d = shape->add_dim();
    const bool numeric = !io.dims[i].empty() && std::all_of(io.dims[i].begin(), io.dims[i].end(), ::isdigit);
    const auto colon = io.dims[i].find(':');
    if (colon != std::string::npos) {  // "N:name": declared N, traced at other sizes (TensorSpec)
      if (dims[i].has_value())
        throw Error("'" + io.name + "' dim " + std::to_string(i) + " should follow " + io.dims[i].substr(colon + 1) +
                    " but stayed " + std::to_string(*dims[i]) + " at both trace shapes: a size was frozen");
      d->set_dim_value(std::stoll(io.dims[i].substr(0, colon)));
    } else if (numeric) {
      if (!dims[i].has_value() || *dims[i] != std::stoll(io.dims[i]))
        throw Error("'" + io.name + "' dim " + std::to_string(i) + " should be " + io.dims[i] + " at both trace shapes");
      d->set_dim_value(*dims[i]);
    } else if (!io.dims[i].empty()) {
      if (dims[i].has_value())
        throw Error("'" + io.name + "' dim " + std::to_string(i) + " should follow " + io.dims[i] +
                    " but stayed " + std::to_string(*dims[i]) + " at both trace shapes: a size was frozen");
      d->set_dim_param(io.dims[i]);
    } else {
      if (!dims[i].has_value())
        throw Error("'" + io.name + "' dim " + std::to_string(i) + " varies with the input but is declared static");
      d->set_dim_value(*dims[i]);
    }
  }
}

void rename_value(onnx::GraphProto& g, const std::string& from, const std::string& to) {
  for (auto& node : *g.mutable_node()) {
    for (auto& o : *node.mutable_output())
      if (o == from) o = to;
    for (auto& i : *node.mutable_input())
      if (i == from) i = to;
  }
}

}  // namespace

LoweredModel lower_to_onnx(const TracedGraph& traced, const LowerOptions& options) {
  if (options.opset < kMinOpset || options.opset > kMaxOpset)
    throw Error("opset " + std::to_string(options.opset) + " is not supported (supported: " +
                std::to_string(kMinOpset) + ".." + std::to_string(kMaxOpset) + ")");
  const auto& g = *traced.graph;
  if (options.inputs.size() != traced.num_inputs || options.outputs.size() != g.outputs().size())
    throw Error("internal: the model's input/output specs do not match the traced graph");

  LoweredModel out;
  auto& model = out.model;
  model.set_ir_version(ir_version_for_opset(options.opset));
  model.set_producer_name("hf2onnx");
  model.set_producer_version(HF2ONNX_VERSION);
  model.set_doc_string(options.doc_string);
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(options.opset);
  for (const auto& [k, v] : options.metadata) {
    auto* p = model.add_metadata_props();
    p->set_key(k);
    p->set_value(v);
  }
  onnx::GraphProto& graph = *model.mutable_graph();
  graph.set_name("main_graph");
  LoweringContext ctx(traced, options.opset, graph, out.initializers);

  for (size_t i = 0; i < traced.num_inputs; ++i) {
    const Value* v = g.inputs()[i];
    set_value_info(ctx, graph.add_input(), v, options.inputs[i]);
    ctx.bind(v, options.inputs[i].name);
  }

  const auto& table = lowering_table();
  for (const Node* n : g.nodes()) {
    auto kind = n->kind();
    if (kind == c10::prim::Constant || kind == c10::prim::ListConstruct) continue;  // read by their users
    std::string op = kind.toQualString();
    LowerFn fn = table.find(op, options.opset);
    if (!fn && op.back() == '_') fn = table.find(op.substr(0, op.size() - 1), options.opset);  // in-place → functional
    if (!fn) {
      std::string base = op.back() == '_' ? op.substr(0, op.size() - 1) : op;
      auto versions = table.opsets(base);
      std::string where = "no lowering exists for it (add one in src/export/lowering/)";
      if (!versions.empty()) where = "its lowering needs opset >= " + std::to_string(versions.front());
      throw Error("cannot export " + op + " at opset " + std::to_string(options.opset) + ": " + where);
    }
    ctx.set_scope("");
    with_context("lowering " + describe_node(n), [&] { fn(ctx, n); });
  }

  // Outputs: rename the producing node's output, or add an Identity when the value is an input,
  // an initializer or already another output.
  std::set<std::string> taken;
  for (const auto& io : options.inputs) taken.insert(io.name);
  for (const auto& init : out.initializers) taken.insert(init.name);
  std::map<std::string, std::string> renamed;
  for (size_t i = 0; i < g.outputs().size(); ++i) {
    const Value* v = g.outputs()[i];
    const std::string& want = options.outputs[i].name;
    std::string have = ctx.name(v);
    if (renamed.count(have)) have = renamed[have];
    if (taken.count(have)) {
      auto* node = graph.add_node();
      node->set_op_type("Identity");
      node->set_name("/" + want + "/Identity");
      node->add_input(have);
      node->add_output(want);
    } else if (have != want) {
      rename_value(graph, have, want);
      renamed[have] = want;
    }
    taken.insert(want);
    set_value_info(ctx, graph.add_output(), v, options.outputs[i]);
  }
  for (const auto& name : ctx.transposed_weights()) out.transposed.insert(name);
  return out;
}

}  // namespace hf2onnx
