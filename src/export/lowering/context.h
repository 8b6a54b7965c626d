// LoweringContext: what a lowering function sees while turning one aten node into ONNX nodes —
// operand names, constant arguments, ranks/dtypes/dynamic dims from the trace, and node emission.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <onnx/onnx_pb.h>
#include <torch/csrc/jit/ir/ir.h>

#include "onnx/writer.h"
#include "export/trace.h"

namespace hf2onnx {

using torch::jit::Node;
using torch::jit::Value;

struct Attr {
  enum Kind { Int, Float, Ints, String, Tensor };
  Attr(std::string n, Kind k) : name(std::move(n)), kind(k) {}
  std::string name;
  Kind kind;
  int64_t i = 0;
  float f = 0;
  std::vector<int64_t> ints;
  std::string s;
  onnx::TensorProto t;
  static Attr of(const std::string& n, int64_t v) { Attr a(n, Int); a.i = v; return a; }
  static Attr of(const std::string& n, int v) { return of(n, static_cast<int64_t>(v)); }
  static Attr of(const std::string& n, double v) { Attr a(n, Float); a.f = static_cast<float>(v); return a; }
  static Attr of(const std::string& n, std::vector<int64_t> v) { Attr a(n, Ints); a.ints = std::move(v); return a; }
  static Attr of(const std::string& n, const char* v) { Attr a(n, String); a.s = v; return a; }
  static Attr of(const std::string& n, onnx::TensorProto v) { Attr a(n, Tensor); a.t = std::move(v); return a; }
};

int32_t onnx_dtype(c10::ScalarType t);

class LoweringContext {
 public:
  LoweringContext(const TracedGraph& traced, int opset, onnx::GraphProto& graph,
                  std::vector<Initializer>& initializers);

  const int opset;

  // --- operands ---
  std::string name(const Value* v);  // ONNX name of a tensor value (graph input, weight, constant or node output)
  // A tensor operand of dtype `want`: numbers become scalar constants, tensors are cast if needed.
  std::string operand(const Value* v, c10::ScalarType want);
  // Weights written transposed ([in, out] of a Linear used only by MatMul), by checkpoint key.
  std::vector<std::string> transposed_weights() const;
  bool is_weight(const Value* v) const;
  // The weight transposed ([out, in] → [in, out]) for MatMul: a transposed initializer, or a Transpose
  // node when the weight is also used untransposed (tied embeddings).
  std::string weight_transposed(const Value* v);

  // --- constant arguments ---
  bool is_none(const Value* v) const;
  bool is_constant(const Value* v) const;
  int64_t to_int(const Value* v) const;
  double to_double(const Value* v) const;
  bool to_bool(const Value* v) const;
  std::string to_string(const Value* v) const;
  std::vector<int64_t> to_ints(const Value* v) const;           // int[] (ListConstruct of constants)
  std::vector<const Value*> list_items(const Value* v) const;   // Tensor[] (ListConstruct)

  // --- what the trace knows ---
  int64_t rank(const Value* v) const;
  c10::ScalarType dtype(const Value* v) const;
  // Sizes with std::nullopt for the dims that vary with the input (dynamic).
  std::vector<std::optional<int64_t>> dims(const Value* v) const;
  int64_t axis(const Value* v, int64_t dim) const;  // normalises a negative dim against rank(v)

  // --- emission ---
  // Adds a node; returns its output names (fresh unless given).
  std::vector<std::string> emit(const std::string& op, const std::vector<std::string>& inputs,
                                const std::vector<Attr>& attrs = {}, size_t n_outputs = 1);
  std::string emit1(const std::string& op, const std::vector<std::string>& inputs, const std::vector<Attr>& attrs = {}) {
    return emit(op, inputs, attrs, 1)[0];
  }
  void bind(const Value* v, const std::string& onnx_name);  // the traced value is now this ONNX value
  void alias(const Value* out, const Value* in) { bind(out, name(in)); }
  std::string cast(const std::string& x, c10::ScalarType from, c10::ScalarType to);

  // Constants, stored as (deduplicated) initializers.
  std::string const_ints(const std::vector<int64_t>& v);     // 1-D int64
  std::string const_int(int64_t v);                          // 0-D int64
  std::string const_scalar(c10::ScalarType t, double v);     // 0-D of any dtype
  std::string const_tensor(const torch::Tensor& t, const std::string& hint);

  // Name prefix for the nodes of the aten node being lowered ("encoder.layer.0.attention.self.query").
  void set_scope(const std::string& scope) { scope_ = scope; }
  void scope_from_weight(const Value* w);  // "a.b.weight" → scope "a.b"; no-op for non-weights
  const std::string& param_name(const Value* v) const;

 private:
  std::string fresh(const std::string& hint);
  const TracedGraph& traced_;
  onnx::GraphProto& graph_;
  std::vector<Initializer>& initializers_;
  std::unordered_map<const Value*, std::string> names_;
  std::unordered_map<const Value*, size_t> weight_index_;  // graph input → index in traced.params
  std::unordered_map<const Value*, bool> transposed_only_;
  std::unordered_map<std::string, std::string> cache_;     // constants, casts, transposes
  std::map<std::string, int> counters_;
  std::string scope_;
};

}  // namespace hf2onnx
