// The quantization pass: a context shared by the op quantizers, and the op registry
// (ONNX Runtime's quantization/registry.py shape: op type → should_quantize / quantize).
#pragma once
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <onnx/onnx_pb.h>

#include "hf2onnx/quantize.h"
#include "onnx/reader.h"
#include "quantize/quant_math.h"

namespace hf2onnx {

struct QuantizedWeight {
  std::string data, scale, zero_point;  // initializer names
};

struct ActivationQuant {
  std::string data, scale, zero_point;  // DynamicQuantizeLinear outputs
};

class QuantContext {
 public:
  QuantContext(LazyModel& model, const QuantizeOptions& options);

  const QuantizeOptions& options;
  quant::QType weight_type;
  int pair_sum_limit;  // of the target, for symmetric int8 MatMul weights

  const LazyTensor* initializer(const std::string& name) const;
  bool is_float_initializer(const std::string& name, int rank) const;
  // The constant behind a float value: a float32 initializer; Cast(to=float) of a float16 / bfloat16 one (an
  // export with --keep-weight-dtype); or Transpose(perm=[1, 0]) of either (`transposed`: a Linear weight kept
  // [out, in], or a tied embedding used as lm_head). Nothing for any other value.
  struct ConstantWeight {
    std::string initializer;
    bool transposed = false;
  };
  std::optional<ConstantWeight> constant_weight(const std::string& value) const;
  bool excluded(const onnx::NodeProto& node) const;

  // One DynamicQuantizeLinear per activation, shared by all its quantized consumers.
  ActivationQuant dynamic_quantize(const std::string& activation);
  // Quantizes an initializer (float32, float16 or bfloat16) once per (type, axis) and returns the names of its
  // parts. With `transposed`, the initializer is [N, K] and its transpose is quantized (constant_weight):
  // parts are named after "<name>_transposed".
  // `pair_sum_limit`: see quant::WeightSpec (MatMul weights of the portable form).
  QuantizedWeight quantize_weight(const std::string& name, quant::QType type, bool symmetric, int axis,
                                  const onnx::NodeProto& node, bool transposed = false, int pair_sum_limit = 0);
  // The node producing `value` in the input graph, or nullptr.
  const onnx::NodeProto* producer(const std::string& value) const;

  onnx::NodeProto& add_node(const std::string& op, const std::vector<std::string>& inputs,
                            const std::vector<std::string>& outputs, const std::string& name);
  std::string fresh(const std::string& base);  // a value or node name not used in the graph yet
  void add_initializer(LazyTensor t);

  // Results.
  std::vector<onnx::NodeProto> nodes;  // the new node list, in order
  std::vector<LazyTensor> initializers_out() const;
  std::map<std::string, int> counts;
  std::set<std::string> gemm_matmuls;  // MatMul nodes the Gemm rewrite made (quantized as "Gemm")
  nlohmann::json report_nodes = nlohmann::json::array();

 private:
  LazyModel& model_;
  std::map<std::string, size_t> init_index_;
  std::map<std::string, const onnx::NodeProto*> producers_;
  std::set<std::string> names_;
  std::map<std::string, ActivationQuant> activations_;
  std::map<std::string, QuantizedWeight> weights_;
  std::vector<LazyTensor> added_;
  std::optional<std::regex> exclude_;
};

struct OpQuantizer {
  const char* op_type;
  bool (*should_quantize)(QuantContext& ctx, const onnx::NodeProto& node);
  void (*quantize)(QuantContext& ctx, const onnx::NodeProto& node);
};
const std::vector<OpQuantizer>& quantizer_table();  // MatMul, Gather

// Drops nodes whose outputs nobody reads (e.g. a Transpose feeding only a quantized MatMul).
void remove_dead_nodes(std::vector<onnx::NodeProto>& nodes, const onnx::GraphProto& graph);

// Gemm with a constant B becomes MatMul (+ Add), so that the MatMul quantizer handles it.
void rewrite_gemm_as_matmul(QuantContext& ctx, std::vector<onnx::NodeProto>& nodes);

}  // namespace hf2onnx
