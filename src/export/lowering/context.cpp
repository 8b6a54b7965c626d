#include "export/lowering/context.h"

#include <cstring>
#include <sstream>

#include <torch/csrc/jit/ir/constants.h>

#include "common/mapped_file.h"
#include "common/scratch.h"
#include "hf2onnx/error.h"

namespace hf2onnx {
namespace {

std::string describe(const Value* v) { return "%" + v->debugName(); }

TensorBytes tensor_bytes(const torch::Tensor& t) {
  auto c = std::make_shared<torch::Tensor>(t.contiguous());
  return TensorBytes{c->data_ptr(), c->nbytes(), c};
}

Initializer initializer_of(const std::string& name, const torch::Tensor& t, std::function<TensorBytes()> bytes) {
  Initializer init;
  init.name = name;
  init.data_type = onnx_dtype(t.scalar_type());
  init.dims = t.sizes().vec();
  init.bytes = std::move(bytes);
  return init;
}

}  // namespace

int32_t onnx_dtype(c10::ScalarType t) {
  switch (t) {
    case c10::kFloat: return onnx::TensorProto::FLOAT;
    case c10::kDouble: return onnx::TensorProto::DOUBLE;
    case c10::kHalf: return onnx::TensorProto::FLOAT16;
    case c10::kBFloat16: return onnx::TensorProto::BFLOAT16;
    case c10::kLong: return onnx::TensorProto::INT64;
    case c10::kInt: return onnx::TensorProto::INT32;
    case c10::kShort: return onnx::TensorProto::INT16;
    case c10::kChar: return onnx::TensorProto::INT8;
    case c10::kByte: return onnx::TensorProto::UINT8;
    case c10::kBool: return onnx::TensorProto::BOOL;
    default: break;
  }
  throw Error(std::string("no ONNX type for torch dtype ") + c10::toString(t));
}

LoweringContext::LoweringContext(const TracedGraph& traced, int opset_, onnx::GraphProto& graph,
                                 std::vector<Initializer>& initializers)
    : opset(opset_), traced_(traced), graph_(graph), initializers_(initializers) {
  const auto inputs = traced.graph->inputs();
  for (size_t i = traced.num_inputs; i < inputs.size(); ++i) {
    const Value* v = inputs[i];
    weight_index_[v] = i - traced.num_inputs;
    bool only_linear = !v->uses().empty();
    for (const auto& use : v->uses())
      only_linear = only_linear && use.user->kind() == c10::Symbol::fromQualString("aten::linear") && use.offset == 1;
    transposed_only_[v] = only_linear;
  }
}

std::vector<std::string> LoweringContext::transposed_weights() const {
  std::vector<std::string> names;
  for (const auto& [v, only] : transposed_only_)
    if (only) names.push_back(param_name(v));
  return names;
}

bool LoweringContext::is_weight(const Value* v) const { return weight_index_.count(v) > 0; }

const std::string& LoweringContext::param_name(const Value* v) const {
  return traced_.param_names.at(weight_index_.at(v));
}

void LoweringContext::scope_from_weight(const Value* w) {
  if (!is_weight(w)) return;
  const std::string& key = param_name(w);
  auto dot = key.rfind('.');
  set_scope(dot == std::string::npos ? key : key.substr(0, dot));
}

std::string LoweringContext::name(const Value* v) {
  auto it = names_.find(v);
  if (it != names_.end()) return it->second;
  if (is_weight(v)) {
    if (transposed_only_.at(v)) throw Error("internal: weight " + param_name(v) + " is used only transposed");
    const torch::Tensor& t = traced_.params.at(weight_index_.at(v));
    initializers_.push_back(initializer_of(param_name(v), t, [t] { return tensor_bytes(t); }));
    return names_[v] = param_name(v);
  }
  if (v->node()->kind() == c10::prim::Constant) {
    auto iv = torch::jit::toIValue(v);
    if (iv && iv->isTensor()) return names_[v] = const_tensor(iv->toTensor(), "const");
    if (iv && (iv->isInt() || iv->isDouble() || iv->isBool()))
      throw Error("internal: number " + describe(v) + " used as a tensor without a dtype");
  }
  throw Error("value " + describe(v) + " (from " + v->node()->kind().toQualString() + ") has no ONNX value");
}

std::string LoweringContext::operand(const Value* v, c10::ScalarType want) {
  if (v->node()->kind() == c10::prim::Constant) {
    auto iv = torch::jit::toIValue(v);
    if (iv && iv->isInt()) return const_scalar(want, static_cast<double>(iv->toInt()));
    if (iv && iv->isDouble()) return const_scalar(want, iv->toDouble());
    if (iv && iv->isBool()) return const_scalar(want, iv->toBool() ? 1 : 0);
  }
  return cast(name(v), dtype(v), want);
}

std::string LoweringContext::weight_transposed(const Value* v) {
  if (is_weight(v) && transposed_only_.at(v)) {
    auto it = names_.find(v);
    if (it != names_.end()) return it->second;
    const torch::Tensor& t = traced_.params.at(weight_index_.at(v));
    Initializer init = initializer_of(param_name(v), t.t(), [t] {
      if (t.dim() != 2 || t.scalar_type() != torch::kFloat || !t.is_contiguous()) {
        TensorBytes bytes = tensor_bytes(t.t());
        MappedFile::release_pages(t.data_ptr(), t.nbytes());
        return bytes;
      }
      // Transposed into this thread's reusable buffer (valid until this thread produces its next weight),
      // the source read from the checkpoint's file a strip at a time.
      float* out = scratch_floats(static_cast<size_t>(t.numel()));
      uint64_t non_finite = 0;
      transpose_floats(t.data_ptr<float>(), t.size(0), t.size(1), out, &non_finite);
      return TensorBytes{out, t.nbytes(), nullptr, non_finite};
    });
    initializers_.push_back(std::move(init));
    return names_[v] = param_name(v);
  }
  std::string key = "transpose:" + name(v);
  auto it = cache_.find(key);
  if (it != cache_.end()) return it->second;
  return cache_[key] = emit1("Transpose", {name(v)}, {Attr::of("perm", std::vector<int64_t>{1, 0})});
}

bool LoweringContext::is_none(const Value* v) const { return v->type()->kind() == c10::TypeKind::NoneType; }

bool LoweringContext::is_constant(const Value* v) const {
  auto k = v->node()->kind();
  if (k == c10::prim::Constant) return true;
  if (k == c10::prim::ListConstruct) {
    for (const Value* i : v->node()->inputs())
      if (!is_constant(i)) return false;
    return true;
  }
  return false;
}

namespace {
c10::IValue constant_of(const Value* v) {
  if (v->node()->kind() != c10::prim::Constant)
    throw Error("argument " + describe(v) + " of an aten op must be a constant (got " +
                v->node()->kind().toQualString() + ")");
  return *torch::jit::toIValue(v);
}
}  // namespace

int64_t LoweringContext::to_int(const Value* v) const {
  auto iv = constant_of(v);
  if (!iv.isInt()) throw Error("argument " + describe(v) + " is not an integer");
  return iv.toInt();
}

double LoweringContext::to_double(const Value* v) const {
  auto iv = constant_of(v);
  if (iv.isDouble()) return iv.toDouble();
  if (iv.isInt()) return static_cast<double>(iv.toInt());
  if (iv.isBool()) return iv.toBool() ? 1.0 : 0.0;
  throw Error("argument " + describe(v) + " is not a number");
}

bool LoweringContext::to_bool(const Value* v) const {
  auto iv = constant_of(v);
  if (!iv.isBool()) throw Error("argument " + describe(v) + " is not a bool");
  return iv.toBool();
}

std::string LoweringContext::to_string(const Value* v) const {
  auto iv = constant_of(v);
  if (!iv.isString()) throw Error("argument " + describe(v) + " is not a string");
  return iv.toStringRef();
}

std::vector<int64_t> LoweringContext::to_ints(const Value* v) const {
  if (v->node()->kind() == c10::prim::ListConstruct) {
    std::vector<int64_t> out;
    for (const Value* i : v->node()->inputs()) out.push_back(to_int(i));
    return out;
  }
  auto iv = constant_of(v);
  if (iv.isIntList()) return iv.toIntVector();
  if (iv.isInt()) return {iv.toInt()};
  throw Error("argument " + describe(v) + " is not an int list");
}

std::vector<const Value*> LoweringContext::list_items(const Value* v) const {
  if (v->node()->kind() != c10::prim::ListConstruct)
    throw Error("argument " + describe(v) + " must be a list built in the graph");
  return {v->node()->inputs().begin(), v->node()->inputs().end()};
}

int64_t LoweringContext::rank(const Value* v) const {
  auto t = v->type()->cast<c10::TensorType>();
  if (!t || !t->dim()) throw Error("value " + describe(v) + " has no known rank");
  return static_cast<int64_t>(*t->dim());
}

c10::ScalarType LoweringContext::dtype(const Value* v) const {
  auto t = v->type()->cast<c10::TensorType>();
  if (!t || !t->scalarType()) throw Error("value " + describe(v) + " has no known dtype");
  return *t->scalarType();
}

std::vector<std::optional<int64_t>> LoweringContext::dims(const Value* v) const {
  auto t = v->type()->cast<c10::TensorType>();
  auto sizes = t ? t->sizes().concrete_sizes() : c10::nullopt;
  if (!sizes) throw Error("value " + describe(v) + " has no known sizes");
  auto dyn = traced_.dynamic_dims.find(v);
  std::vector<std::optional<int64_t>> out;
  for (size_t i = 0; i < sizes->size(); ++i) {
    bool dynamic = dyn != traced_.dynamic_dims.end() && dyn->second[i];
    out.push_back(dynamic ? std::nullopt : std::optional<int64_t>((*sizes)[i]));
  }
  return out;
}

int64_t LoweringContext::axis(const Value* v, int64_t dim) const { return dim < 0 ? dim + rank(v) : dim; }

std::string LoweringContext::fresh(const std::string& hint) {
  int n = counters_[hint]++;
  return n == 0 ? hint : hint + "_" + std::to_string(n);
}

std::vector<std::string> LoweringContext::emit(const std::string& op, const std::vector<std::string>& inputs,
                                               const std::vector<Attr>& attrs, size_t n_outputs) {
  auto* node = graph_.add_node();
  std::string node_name = fresh("/" + (scope_.empty() ? std::string() : scope_ + "/") + op);
  node->set_name(node_name);
  node->set_op_type(op);
  for (const auto& i : inputs) node->add_input(i);
  std::vector<std::string> outputs;
  for (size_t i = 0; i < n_outputs; ++i) {
    outputs.push_back(node_name + "_output_" + std::to_string(i));
    node->add_output(outputs.back());
  }
  for (const auto& a : attrs) {
    auto* p = node->add_attribute();
    p->set_name(a.name);
    switch (a.kind) {
      case Attr::Int: p->set_type(onnx::AttributeProto::INT); p->set_i(a.i); break;
      case Attr::Float: p->set_type(onnx::AttributeProto::FLOAT); p->set_f(a.f); break;
      case Attr::Ints:
        p->set_type(onnx::AttributeProto::INTS);
        for (int64_t x : a.ints) p->add_ints(x);
        break;
      case Attr::String: p->set_type(onnx::AttributeProto::STRING); p->set_s(a.s); break;
      case Attr::Tensor: p->set_type(onnx::AttributeProto::TENSOR); *p->mutable_t() = a.t; break;
    }
  }
  return outputs;
}

void LoweringContext::bind(const Value* v, const std::string& onnx_name) { names_[v] = onnx_name; }

std::string LoweringContext::cast(const std::string& x, c10::ScalarType from, c10::ScalarType to) {
  if (from == to) return x;
  std::string key = "cast:" + x + ":" + std::to_string(static_cast<int>(to));
  auto it = cache_.find(key);
  if (it != cache_.end()) return it->second;
  return cache_[key] = emit1("Cast", {x}, {Attr::of("to", static_cast<int64_t>(onnx_dtype(to)))});
}

std::string LoweringContext::const_tensor(const torch::Tensor& value, const std::string& hint) {
  torch::Tensor t = value.contiguous();
  std::string key = "tensor:" + std::to_string(static_cast<int>(t.scalar_type())) + ":";
  for (int64_t d : t.sizes()) key += std::to_string(d) + ",";
  key += ":" + std::string(static_cast<const char*>(t.data_ptr()), t.nbytes());
  auto it = cache_.find(key);
  if (it != cache_.end()) return it->second;
  std::string name = fresh("/const/" + hint);
  initializers_.push_back(initializer_of(name, t, [t] { return tensor_bytes(t); }));
  return cache_[key] = name;
}

std::string LoweringContext::const_ints(const std::vector<int64_t>& v) {
  return const_tensor(torch::tensor(v, torch::kLong), "ints");
}

std::string LoweringContext::const_int(int64_t v) { return const_tensor(torch::scalar_tensor(v, torch::kLong), "int"); }

std::string LoweringContext::const_scalar(c10::ScalarType t, double v) {
  return const_tensor(torch::scalar_tensor(v, torch::TensorOptions().dtype(torch::kDouble)).to(t), "scalar");
}

}  // namespace hf2onnx
