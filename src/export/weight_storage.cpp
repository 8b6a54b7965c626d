#include "export/weight_storage.h"

#include <optional>

#include "common/scratch.h"
#include "hf2onnx/error.h"
#include "onnx/attributes.h"

namespace hf2onnx {
namespace {

// The ONNX type a weight keeps under WeightDtype::Stored (contiguous 16-bit floats), if any.
std::optional<int32_t> kept_type(const hf::TensorData& t) {
  if (!t.is_contiguous()) return std::nullopt;
  if (t.dtype == hf::DType::BF16) return onnx::TensorProto::BFLOAT16;
  if (t.dtype == hf::DType::F16) return onnx::TensorProto::FLOAT16;
  return std::nullopt;
}

onnx::NodeProto node(const std::string& op, const std::string& name, const std::string& input, const std::string& output) {
  onnx::NodeProto n;
  n.set_op_type(op);
  n.set_name(name);
  n.add_input(input);
  n.add_output(output);
  return n;
}

}  // namespace

size_t store_weights(onnx::GraphProto& graph, std::vector<Initializer>& initializers,
                     const std::set<std::string>& transposed, const DeferredWeights& deferred, WeightDtype dtype) {
  std::set<std::string> names, graph_outputs;
  for (const auto& n : graph.node()) {
    names.insert(n.name());
    names.insert(n.input().begin(), n.input().end());
    names.insert(n.output().begin(), n.output().end());
  }
  for (const auto& vi : graph.input()) names.insert(vi.name());
  for (const auto& vi : graph.output()) graph_outputs.insert(vi.name());
  names.insert(graph_outputs.begin(), graph_outputs.end());
  for (const auto& init : initializers) names.insert(init.name);
  auto fresh = [&](const std::string& base) {
    std::string name = base;
    for (int i = 1; names.count(name); ++i) name = base + "_" + std::to_string(i);
    names.insert(name);
    return name;
  };

  std::map<std::string, std::string> read_as;  // a kept weight → the float32 value the graph reads instead
  std::vector<onnx::NodeProto> casts;
  for (auto& init : initializers) {
    auto it = deferred.find(init.name);
    if (it == deferred.end()) continue;
    const hf::TensorData* source = it->second;
    const bool as_in_out = transposed.count(init.name) > 0 && source->shape.size() == 2;  // a Linear weight
    const std::vector<int64_t> want =
        as_in_out ? std::vector<int64_t>{source->shape[1], source->shape[0]} : source->shape;
    if (init.dims != want) throw Error("internal: initializer " + quote_name(init.name) + " does not have its tensor's shape");
    const std::optional<int32_t> kept =
        dtype == WeightDtype::Stored && !graph_outputs.count(init.name) ? kept_type(*source) : std::nullopt;
    if (!kept) {  // converted into this thread's reusable buffer (one weight at a time)
      init.bytes = [source, as_in_out] {
        const size_t n = static_cast<size_t>(source->numel());
        float* out = scratch_floats(n);
        uint64_t non_finite = 0;
        hf::read_as_float32(*source, as_in_out, out, &non_finite);
        return TensorBytes{out, n * 4, nullptr, non_finite};
      };
      continue;
    }
    init.data_type = *kept;
    init.dims = source->shape;
    init.bytes = [source] { return TensorBytes{source->data, source->nbytes(), nullptr}; };  // file to file
    std::string value = fresh(init.name + "_float");
    casts.push_back(node("Cast", fresh("/" + init.name + "/Cast"), init.name, value));
    add_int_attribute(casts.back(), "to", onnx::TensorProto::FLOAT);
    if (as_in_out) {
      const std::string cast = value;
      value = fresh(init.name + "_float_transposed");
      casts.push_back(node("Transpose", fresh("/" + init.name + "/Transpose"), cast, value));
      add_ints_attribute(casts.back(), "perm", {1, 0});
    }
    read_as[init.name] = value;
  }
  if (read_as.empty()) return 0;

  google::protobuf::RepeatedPtrField<onnx::NodeProto> nodes;
  for (auto& c : casts) *nodes.Add() = std::move(c);  // first: they read only initializers (topological order kept)
  for (auto& n : *graph.mutable_node()) {
    for (const auto& a : n.attribute())
      if (a.has_g() || a.graphs_size()) throw Error("internal: node " + quote_name(n.name()) + " has a subgraph");
    for (int i = 0; i < n.input_size(); ++i) {
      auto r = read_as.find(n.input(i));
      if (r != read_as.end()) n.set_input(i, r->second);
    }
    *nodes.Add() = std::move(n);
  }
  graph.mutable_node()->Swap(&nodes);
  return read_as.size();
}

}  // namespace hf2onnx
