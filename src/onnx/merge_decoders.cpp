#include "onnx/merge_decoders.h"

#include <cstring>
#include <map>
#include <set>

#include "common/mapped_file.h"
#include "hf2onnx/error.h"
#include "onnx/check.h"
#include "onnx/reader.h"

namespace hf2onnx {
namespace {

// Scalars and 1-D integer tensors stay inside each branch, as Optimum keeps them (shape arguments).
bool stays_in_branch(const LazyTensor& t) {
  const int32_t type = t.header.data_type();
  const bool int_type = type == onnx::TensorProto::INT64 || type == onnx::TensorProto::INT32;
  return t.header.dims_size() == 0 || (t.header.dims_size() == 1 && int_type);
}

// Compared byte for byte; the mapped pages are given back afterwards, so that comparing two decoders'
// weights does not keep both resident (the writer reads the kept copy again when it streams it).
bool same_tensor(const LazyTensor& a, const LazyTensor& b) {
  if (a.header.data_type() != b.header.data_type() || a.dims() != b.dims()) return false;
  const TensorBytes x = a.bytes(), y = b.bytes();
  const bool same = x.size == y.size && (x.size == 0 || std::memcmp(x.data, y.data, x.size) == 0);
  for (const TensorBytes* bytes : {&x, &y})
    MappedFile::release_pages(bytes->data, bytes->size);  // a no-op unless the bytes are a file mapping
  return same;
}

onnx::TensorProto inline_tensor(const LazyTensor& t, const std::string& name) {
  onnx::TensorProto p = t.header;
  p.set_name(name);
  p.clear_external_data();
  p.set_data_location(onnx::TensorProto::DEFAULT);
  if (t.data || t.header.data_location() == onnx::TensorProto::EXTERNAL) {
    const TensorBytes b = t.bytes();
    p.set_raw_data(b.data, b.size);
  }
  return p;
}

// One decoder's graph as a branch: no formal inputs (it reads the outer inputs and initializers by
// name), every value it computes renamed under `prefix` so that the two branches and the outer graph
// never share a name, its outputs in the order of `outputs` (empty constants for those it lacks).
onnx::GraphProto make_branch(const LazyModel& m, const std::string& prefix, const std::set<std::string>& outer,
                             const std::map<std::string, std::string>& renamed_outer,
                             const std::vector<LazyTensor>& local, const onnx::GraphProto& outputs_of) {
  const onnx::GraphProto& g = m.model.graph();
  std::map<std::string, std::string> rename = renamed_outer;
  auto local_name = [&](const std::string& n) { return prefix + "/" + n; };
  onnx::GraphProto b;
  b.set_name(prefix);
  for (const auto& t : local) {
    rename[t.name()] = local_name(t.name());
    *b.add_initializer() = inline_tensor(t, local_name(t.name()));
  }
  for (const auto& n : g.node())
    for (const auto& o : n.output())
      if (!o.empty()) rename[o] = local_name(o);
  auto mapped = [&](const std::string& n) {
    if (n.empty()) return n;
    auto it = rename.find(n);
    if (it != rename.end()) return it->second;
    if (!outer.count(n)) throw Error("value " + quote_name(n) + " has no producer");
    return n;
  };
  for (const auto& n : g.node()) {
    for (const auto& a : n.attribute())
      if (a.has_g() || a.graphs_size()) throw Error("node " + quote_name(n.name()) + " has a subgraph (not supported)");
    onnx::NodeProto* c = b.add_node();
    *c = n;
    c->set_name(n.name().empty() ? "" : local_name(n.name()));
    for (int i = 0; i < c->input_size(); ++i) c->set_input(i, mapped(n.input(i)));
    for (int i = 0; i < c->output_size(); ++i) c->set_output(i, mapped(n.output(i)));
  }
  for (const auto& vi : g.value_info()) {
    if (!rename.count(vi.name())) continue;
    onnx::ValueInfoProto* v = b.add_value_info();
    *v = vi;
    v->set_name(rename.at(vi.name()));
  }
  std::map<std::string, const onnx::ValueInfoProto*> own;
  for (const auto& o : g.output()) own[o.name()] = &o;
  for (const auto& want : outputs_of.output()) {
    onnx::ValueInfoProto* v = b.add_output();
    auto it = own.find(want.name());
    if (it != own.end()) {
      *v = *it->second;
      v->set_name(mapped(want.name()));
      continue;
    }
    // An output this decoder does not compute: an empty tensor with its rank (first dynamic axis 0,
    // other dynamic axes 1), which the caller ignores (transformers.js keeps the cross-attention cache
    // it already has).
    onnx::TensorProto empty;
    empty.set_data_type(want.type().tensor_type().elem_type());
    bool first_dynamic = true;
    for (const auto& d : want.type().tensor_type().shape().dim()) {
      if (d.has_dim_value()) {
        empty.add_dims(d.dim_value());
      } else {
        empty.add_dims(first_dynamic ? 0 : 1);
        first_dynamic = false;
      }
    }
    onnx::NodeProto* c = b.add_node();
    c->set_op_type("Constant");
    c->set_name(local_name(want.name() + "/Constant"));
    c->add_output(local_name(want.name()));
    onnx::AttributeProto* a = c->add_attribute();
    a->set_name("value");
    a->set_type(onnx::AttributeProto::TENSOR);
    *a->mutable_t() = empty;
    v->set_name(local_name(want.name()));
    v->mutable_type()->mutable_tensor_type()->set_elem_type(want.type().tensor_type().elem_type());
  }
  return b;
}

}  // namespace

void merge_decoders(const std::filesystem::path& no_past_path, const std::filesystem::path& with_past_path,
                    const std::filesystem::path& out, ExternalData external) {
  with_context(out.filename().string(), [&] {
    const LazyModel no_past = read_onnx_lazy(no_past_path), with_past = read_onnx_lazy(with_past_path);
    const onnx::GraphProto &a = no_past.model.graph(), &b = with_past.model.graph();

    onnx::ModelProto merged = no_past.model;
    merged.set_ir_version(std::max(no_past.model.ir_version(), with_past.model.ir_version()));
    onnx::GraphProto& g = *merged.mutable_graph();
    g.clear_node();
    g.clear_input();
    g.clear_value_info();
    g.set_name("merged");

    // Inputs: the no-past decoder's, then the past inputs, then use_cache_branch.
    std::set<std::string> outer;
    for (const auto* graph : {&a, &b})
      for (const auto& in : graph->input())
        if (outer.insert(in.name()).second) *g.add_input() = in;
    onnx::ValueInfoProto* flag = g.add_input();
    flag->set_name("use_cache_branch");
    flag->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::BOOL);
    flag->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(1);

    // Initializers: one outer copy of each weight; equal names with other contents get a new name.
    std::vector<Initializer> initializers;
    std::map<std::string, const LazyTensor*> top;
    std::vector<LazyTensor> local_a, local_b;
    std::map<std::string, std::string> renamed_b;
    for (const auto& t : no_past.initializers) {
      if (stays_in_branch(t)) {
        local_a.push_back(t);
        continue;
      }
      top[t.name()] = &t;
      initializers.push_back(t.as_initializer());
    }
    for (const auto& t : with_past.initializers) {
      if (stays_in_branch(t)) {
        local_b.push_back(t);
        continue;
      }
      auto it = top.find(t.name());
      if (it != top.end() && same_tensor(*it->second, t)) continue;
      Initializer init = t.as_initializer();
      if (it != top.end() || outer.count(t.name())) init.name = renamed_b[t.name()] = t.name() + "_with_past";
      initializers.push_back(std::move(init));
    }
    for (const auto& init : initializers) outer.insert(init.name);

    onnx::NodeProto* node = g.add_node();
    node->set_op_type("If");
    node->set_name("hf2onnx::if");
    node->add_input("use_cache_branch");
    for (const auto& o : a.output()) node->add_output(o.name());
    onnx::AttributeProto* then_branch = node->add_attribute();
    then_branch->set_name("then_branch");
    then_branch->set_type(onnx::AttributeProto::GRAPH);
    *then_branch->mutable_g() = make_branch(with_past, "with_past", outer, renamed_b, local_b, a);
    onnx::AttributeProto* else_branch = node->add_attribute();
    else_branch->set_name("else_branch");
    else_branch->set_type(onnx::AttributeProto::GRAPH);
    *else_branch->mutable_g() = make_branch(no_past, "no_past", outer, {}, local_a, a);
    for (const auto& o : b.output())  // every with-past output must be one of the merged outputs
      if (std::none_of(a.output().begin(), a.output().end(), [&](const auto& x) { return x.name() == o.name(); }))
        throw Error(with_past_path.filename().string() + " has an output the decoder without past lacks: " +
                    quote_name(o.name()));
    check_model(merged, initializers);
    write_onnx(merged, initializers, out, external);
  });
}

}  // namespace hf2onnx
