#include "export/trace.h"

#include <sstream>

#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>

#include "hf2onnx/error.h"

namespace hf2onnx {
namespace {

using torch::jit::Node;
using torch::jit::Value;

std::shared_ptr<torch::jit::Graph> trace_once(const TraceFn& fn, const std::vector<torch::Tensor>& inputs,
                                              const std::vector<std::pair<std::string, torch::Tensor>>& params) {
  torch::jit::Stack stack;
  for (const auto& t : inputs) stack.emplace_back(t);
  for (const auto& [name, t] : params) stack.emplace_back(t);
  const size_t n_inputs = inputs.size();
  auto traced = [&](torch::jit::Stack s) {
    std::vector<torch::Tensor> in;
    for (size_t i = 0; i < n_inputs; ++i) in.push_back(s[i].toTensor());
    torch::jit::Stack out;
    for (auto& t : fn(in)) out.emplace_back(t);
    return out;
  };
  auto no_names = [](const torch::autograd::Variable&) { return std::string(); };
  torch::NoGradGuard no_grad;
  auto result = torch::jit::tracer::trace(std::move(stack), traced, no_names, /*strict=*/true, /*force_outplace=*/false);
  auto graph = result.first->graph;
  torch::jit::EliminateDeadCode(graph);
  return graph;
}

bool same_constant(const Node* a, const Node* b) {
  auto va = torch::jit::toIValue(a->output()), vb = torch::jit::toIValue(b->output());
  if (!va || !vb) return va.has_value() == vb.has_value();
  if (va->isTensor() && vb->isTensor())
    return va->toTensor().sizes() == vb->toTensor().sizes() && va->toTensor().equal(vb->toTensor());
  return *va == *vb;
}

}  // namespace

std::string describe_node(const torch::jit::Node* n) {
  std::stringstream ss;
  ss << *n;
  std::string s = ss.str();
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

TracedGraph trace_twice(const TraceFn& fn, const std::vector<torch::Tensor>& inputs_a,
                        const std::vector<torch::Tensor>& inputs_b,
                        const std::vector<std::pair<std::string, torch::Tensor>>& params) {
  auto ga = trace_once(fn, inputs_a, params);
  auto gb = trace_once(fn, inputs_b, params);

  TracedGraph out;
  out.graph = ga;
  out.num_inputs = inputs_a.size();
  for (const auto& [name, t] : params) {
    out.param_names.push_back(name);
    out.params.push_back(t);
  }

  // Walk both graphs in step. Values are identified by their definition order.
  std::unordered_map<const Value*, size_t> id_a, id_b;
  std::vector<std::pair<const Value*, const Value*>> pairs;
  auto define = [&](const Value* a, const Value* b) {
    id_a[a] = pairs.size();
    id_b[b] = pairs.size();
    pairs.emplace_back(a, b);
  };
  for (size_t i = 0; i < ga->inputs().size(); ++i) define(ga->inputs()[i], gb->inputs()[i]);
  auto na = ga->nodes().begin(), nb = gb->nodes().begin();
  auto frozen = [](const Node* a, const Node* b, const std::string& why) {
    return Error("the forward traced differently at two input shapes (" + why + "):\n  " + describe_node(a) + "\n  " +
                 describe_node(b) +
                 "\na size was read from a tensor and frozen into the graph; write the forward shape-agnostically "
                 "(see models/layers/dynamic.h)");
  };
  for (; na != ga->nodes().end() && nb != gb->nodes().end(); ++na, ++nb) {
    const Node* a = *na;
    const Node* b = *nb;
    if (a->kind() != b->kind() || a->inputs().size() != b->inputs().size() || a->outputs().size() != b->outputs().size())
      throw frozen(a, b, "different operations");
    for (size_t i = 0; i < a->inputs().size(); ++i)
      if (id_a.at(a->inputs()[i]) != id_b.at(b->inputs()[i])) throw frozen(a, b, "different operands");
    if (a->kind() == torch::jit::prim::Constant && !same_constant(a, b)) throw frozen(a, b, "a constant differs");
    for (size_t i = 0; i < a->outputs().size(); ++i) define(a->outputs()[i], b->outputs()[i]);
  }
  if (na != ga->nodes().end() || nb != gb->nodes().end())
    throw Error("the forward traced to graphs of different lengths at two input shapes (shape-dependent control flow)");
  for (size_t i = 0; i < ga->outputs().size(); ++i)
    if (id_a.at(ga->outputs()[i]) != id_b.at(gb->outputs()[i]))
      throw Error("the forward returns different values at two input shapes");

  for (const auto& [a, b] : pairs) {
    auto ta = a->type()->cast<c10::TensorType>();
    auto tb = b->type()->cast<c10::TensorType>();
    if (!ta || !tb) continue;
    auto sa = ta->sizes().concrete_sizes(), sb = tb->sizes().concrete_sizes();
    if (!sa || !sb || sa->size() != sb->size())
      throw Error("traced value %" + a->debugName() + " has a rank that depends on the input shape");
    std::vector<bool> dyn(sa->size());
    for (size_t d = 0; d < sa->size(); ++d) dyn[d] = (*sa)[d] != (*sb)[d];
    out.dynamic_dims[a] = std::move(dyn);
  }
  return out;
}

}  // namespace hf2onnx
