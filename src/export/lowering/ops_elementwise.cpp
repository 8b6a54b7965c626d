// Elementwise aten ops: arithmetic, comparisons, unary math, activations, casts, where/masked_fill.
#include <cmath>

#include "export/lowering/table.h"
#include "hf2onnx/error.h"

namespace hf2onnx {
namespace {

c10::ScalarType out_type(LoweringContext& ctx, const Node* n) { return ctx.dtype(n->output()); }

// Binary arithmetic computed in the output dtype (torch's type promotion already decided it).
template <const char* Op>
void lower_binary(LoweringContext& ctx, const Node* n) {
  auto t = out_type(ctx, n);
  std::string a = ctx.operand(n->input(0), t), b = ctx.operand(n->input(1), t);
  // add/sub carry alpha: a + alpha * b
  if (n->inputs().size() > 2 && !ctx.is_none(n->input(2)) && ctx.to_double(n->input(2)) != 1.0)
    b = ctx.emit1("Mul", {b, ctx.const_scalar(t, ctx.to_double(n->input(2)))});
  ctx.bind(n->output(), ctx.emit1(Op, {a, b}));
}
constexpr char kAdd[] = "Add", kSub[] = "Sub", kMul[] = "Mul", kDiv[] = "Div";

// rsub(a, b, alpha) = b - alpha * a
void lower_rsub(LoweringContext& ctx, const Node* n) {
  auto t = out_type(ctx, n);
  std::string a = ctx.operand(n->input(0), t), b = ctx.operand(n->input(1), t);
  if (n->inputs().size() > 2 && ctx.to_double(n->input(2)) != 1.0)
    a = ctx.emit1("Mul", {a, ctx.const_scalar(t, ctx.to_double(n->input(2)))});
  ctx.bind(n->output(), ctx.emit1("Sub", {b, a}));
}

void lower_div(LoweringContext& ctx, const Node* n) {
  if (n->inputs().size() > 2 && !ctx.is_none(n->input(2)))
    throw Error("aten::div with rounding_mode='" + ctx.to_string(n->input(2)) + "' is not supported");
  lower_binary<kDiv>(ctx, n);
}

void lower_pow(LoweringContext& ctx, const Node* n) {
  auto t = out_type(ctx, n);
  ctx.bind(n->output(), ctx.emit1("Pow", {ctx.operand(n->input(0), t), ctx.operand(n->input(1), t)}));
}

template <const char* Op>
void lower_unary(LoweringContext& ctx, const Node* n) {
  ctx.bind(n->output(), ctx.emit1(Op, {ctx.operand(n->input(0), out_type(ctx, n))}));
}
constexpr char kNeg[] = "Neg", kTanh[] = "Tanh", kRelu[] = "Relu", kSigmoid[] = "Sigmoid", kErf[] = "Erf",
               kSqrt[] = "Sqrt", kExp[] = "Exp", kLog[] = "Log", kSin[] = "Sin", kCos[] = "Cos", kAbs[] = "Abs",
               kReciprocal[] = "Reciprocal", kNot[] = "Not";

void lower_rsqrt(LoweringContext& ctx, const Node* n) {
  auto x = ctx.operand(n->input(0), out_type(ctx, n));
  ctx.bind(n->output(), ctx.emit1("Reciprocal", {ctx.emit1("Sqrt", {x})}));
}

void lower_silu(LoweringContext& ctx, const Node* n) {
  auto x = ctx.name(n->input(0));
  ctx.bind(n->output(), ctx.emit1("Mul", {x, ctx.emit1("Sigmoid", {x})}));
}

// gelu: the erf form x * (1 + erf(x / sqrt 2)) * 0.5 and the tanh form, as torch.onnx writes them
// (ONNX Runtime fuses both patterns into its Gelu kernels).
void lower_gelu(LoweringContext& ctx, const Node* n) {
  auto t = out_type(ctx, n);
  std::string x = ctx.name(n->input(0));
  std::string approximate = n->inputs().size() > 1 ? ctx.to_string(n->input(1)) : "none";
  std::string y;
  if (approximate == "tanh") {
    auto cube = ctx.emit1("Mul", {x, ctx.emit1("Mul", {x, x})});
    auto inner = ctx.emit1("Add", {x, ctx.emit1("Mul", {ctx.const_scalar(t, 0.044715), cube})});
    auto scaled = ctx.emit1("Mul", {ctx.const_scalar(t, std::sqrt(2.0 / M_PI)), inner});
    auto one_plus = ctx.emit1("Add", {ctx.const_scalar(t, 1.0), ctx.emit1("Tanh", {scaled})});
    y = ctx.emit1("Mul", {ctx.const_scalar(t, 0.5), ctx.emit1("Mul", {x, one_plus})});
  } else if (approximate == "none") {
    auto erf = ctx.emit1("Erf", {ctx.emit1("Div", {x, ctx.const_scalar(t, M_SQRT2)})});
    auto one_plus = ctx.emit1("Add", {erf, ctx.const_scalar(t, 1.0)});
    y = ctx.emit1("Mul", {ctx.emit1("Mul", {x, one_plus}), ctx.const_scalar(t, 0.5)});
  } else {
    throw Error("aten::gelu with approximate='" + approximate + "' is not supported");
  }
  ctx.bind(n->output(), y);
}

// Comparisons compare in the operands' common dtype; a number takes the tensor's dtype.
template <const char* Op, bool Negate>
void lower_compare(LoweringContext& ctx, const Node* n) {
  const Value* a = n->input(0);
  const Value* b = n->input(1);
  bool a_tensor = a->type()->cast<c10::TensorType>() != nullptr;
  bool b_tensor = b->type()->cast<c10::TensorType>() != nullptr;
  c10::ScalarType t = a_tensor && b_tensor ? c10::promoteTypes(ctx.dtype(a), ctx.dtype(b))
                                           : ctx.dtype(a_tensor ? a : b);
  auto y = ctx.emit1(Op, {ctx.operand(a, t), ctx.operand(b, t)});
  ctx.bind(n->output(), Negate ? ctx.emit1("Not", {y}) : y);
}
constexpr char kEqual[] = "Equal", kLess[] = "Less", kGreater[] = "Greater", kLessOrEqual[] = "LessOrEqual",
               kGreaterOrEqual[] = "GreaterOrEqual";

// aten::to / type_as / _to_copy / float / long ...: a Cast to the traced output dtype.
void lower_cast(LoweringContext& ctx, const Node* n) {
  ctx.bind(n->output(), ctx.cast(ctx.name(n->input(0)), ctx.dtype(n->input(0)), out_type(ctx, n)));
}

void lower_and(LoweringContext& ctx, const Node* n) {
  if (ctx.dtype(n->output()) != c10::kBool) throw Error("bitwise and of non-bool tensors is not supported");
  ctx.bind(n->output(), ctx.emit1("And", {ctx.operand(n->input(0), c10::kBool), ctx.operand(n->input(1), c10::kBool)}));
}

void lower_where(LoweringContext& ctx, const Node* n) {
  auto t = out_type(ctx, n);
  auto cond = ctx.operand(n->input(0), c10::kBool);
  ctx.bind(n->output(), ctx.emit1("Where", {cond, ctx.operand(n->input(1), t), ctx.operand(n->input(2), t)}));
}

void lower_masked_fill(LoweringContext& ctx, const Node* n) {
  auto t = out_type(ctx, n);
  auto mask = ctx.operand(n->input(1), c10::kBool);
  ctx.bind(n->output(), ctx.emit1("Where", {mask, ctx.operand(n->input(2), t), ctx.operand(n->input(0), t)}));
}

// clamp_min(x, scalar) / clamp_max(x, scalar) → Max / Min with a constant of x's dtype (any numeric type
// from opset 13).
template <const char* Op>
void lower_clamp_bound(LoweringContext& ctx, const Node* n) {
  auto t = out_type(ctx, n);
  ctx.bind(n->output(), ctx.emit1(Op, {ctx.operand(n->input(0), t), ctx.operand(n->input(1), t)}));
}
constexpr char kMax[] = "Max";
constexpr char kMin[] = "Min";

}  // namespace

void register_elementwise_ops(LoweringTable& t) {
  t.add("aten::add", 14, lower_binary<kAdd>);
  t.add("aten::sub", 14, lower_binary<kSub>);
  t.add("aten::mul", 14, lower_binary<kMul>);
  t.add("aten::div", 14, lower_div);
  t.add("aten::rsub", 14, lower_rsub);
  t.add("aten::pow", 14, lower_pow);
  t.add("aten::neg", 14, lower_unary<kNeg>);
  t.add("aten::tanh", 14, lower_unary<kTanh>);
  t.add("aten::relu", 14, lower_unary<kRelu>);
  t.add("aten::sigmoid", 14, lower_unary<kSigmoid>);
  t.add("aten::erf", 14, lower_unary<kErf>);
  t.add("aten::sqrt", 14, lower_unary<kSqrt>);
  t.add("aten::rsqrt", 14, lower_rsqrt);
  t.add("aten::exp", 14, lower_unary<kExp>);
  t.add("aten::log", 14, lower_unary<kLog>);
  t.add("aten::sin", 14, lower_unary<kSin>);
  t.add("aten::cos", 14, lower_unary<kCos>);
  t.add("aten::abs", 14, lower_unary<kAbs>);
  t.add("aten::reciprocal", 14, lower_unary<kReciprocal>);
  t.add("aten::logical_not", 14, lower_unary<kNot>);
  t.add("aten::silu", 14, lower_silu);
  t.add("aten::gelu", 14, lower_gelu);
  t.add("aten::eq", 14, lower_compare<kEqual, false>);
  t.add("aten::ne", 14, lower_compare<kEqual, true>);
  t.add("aten::lt", 14, lower_compare<kLess, false>);
  t.add("aten::gt", 14, lower_compare<kGreater, false>);
  t.add("aten::le", 14, lower_compare<kLessOrEqual, false>);
  t.add("aten::ge", 14, lower_compare<kGreaterOrEqual, false>);
  t.add("aten::to", 14, lower_cast);
  t.add("aten::type_as", 14, lower_cast);
  t.add("aten::_to_copy", 14, lower_cast);
  t.add("aten::logical_and", 14, lower_and);
  t.add("aten::bitwise_and", 14, lower_and);
  t.add("aten::where", 14, lower_where);
  t.add("aten::masked_fill", 14, lower_masked_fill);
  t.add("aten::clamp_min", 14, lower_clamp_bound<kMax>);
  t.add("aten::clamp_max", 14, lower_clamp_bound<kMin>);
}

}  // namespace hf2onnx
