// Tracing: runs a forward under libtorch's JIT tracer with the parameters passed as graph inputs, so
// every weight stays a named input. The forward is traced at two shapes; the graphs must be identical
// but for the sizes that vary, which tells us which dims are dynamic and catches a size frozen into
// a constant (DESIGN.md §2).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <torch/csrc/jit/ir/ir.h>
#include <torch/torch.h>

namespace hf2onnx {

using TraceFn = std::function<std::vector<torch::Tensor>(const std::vector<torch::Tensor>&)>;

struct TracedGraph {
  std::shared_ptr<torch::jit::Graph> graph;
  size_t num_inputs = 0;                   // graph inputs [0, num_inputs) are the model inputs
  std::vector<std::string> param_names;    // graph inputs [num_inputs, ...) are these parameters
  std::vector<torch::Tensor> params;       // their tensors (for the initializers)
  // For each tensor value: which dims differed between the two traces (dynamic).
  std::unordered_map<const torch::jit::Value*, std::vector<bool>> dynamic_dims;
};

// One line of IR for messages: "%7 : Float(...) = aten::linear(%0, %w, %b)".
std::string describe_node(const torch::jit::Node* node);

// `inputs_a` and `inputs_b` are example inputs at two different shapes; `params` are the tensors
// the forward reads (by identity), with their names.
TracedGraph trace_twice(const TraceFn& fn, const std::vector<torch::Tensor>& inputs_a,
                        const std::vector<torch::Tensor>& inputs_b,
                        const std::vector<std::pair<std::string, torch::Tensor>>& params);

}  // namespace hf2onnx
