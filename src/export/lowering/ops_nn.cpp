// Neural-network ops: linear / matmul, embedding, softmax, layer_norm (native at opset 17,
// decomposed below), reductions.
#include "export/lowering/table.h"
#include "hf2onnx/error.h"

namespace hf2onnx {
namespace {

// linear(x, W, b) → MatMul(x, Wᵀ) + b. Wᵀ is stored as the initializer when W is a weight used only
// here, so the quantizer and ORT see MatMul with a constant [in, out] B.
void lower_linear(LoweringContext& ctx, const Node* n) {
  const Value* w = n->input(1);
  ctx.scope_from_weight(w);
  std::string y = ctx.emit1("MatMul", {ctx.name(n->input(0)), ctx.weight_transposed(w)});
  if (!ctx.is_none(n->input(2))) y = ctx.emit1("Add", {y, ctx.name(n->input(2))});
  ctx.bind(n->output(), y);
}

// conv1d(x, w, b, stride, padding, dilation, groups) and _convolution(x, w, b, stride, padding, dilation,
// transposed, output_padding, groups, ...) → Conv (no transposed convolution).
void lower_conv(LoweringContext& ctx, const Node* n) {
  const bool full = n->kind() == c10::Symbol::fromQualString("aten::_convolution");
  if (full && ctx.to_bool(n->input(6))) throw Error("transposed convolution is not supported");
  const Value* w = n->input(1);
  ctx.scope_from_weight(w);
  const size_t spatial = static_cast<size_t>(ctx.rank(w) - 2);  // weight [out, in / groups, k1, k2, ...]
  auto expand = [&](std::vector<int64_t> v) {  // a single value means the same for every spatial dim
    if (v.size() == 1 && spatial > 1) v.assign(spatial, v[0]);
    return v;
  };
  std::vector<int64_t> pads = expand(ctx.to_ints(n->input(4)));
  pads.insert(pads.end(), pads.begin(), pads.end());  // ONNX: begins then ends
  std::vector<std::string> in = {ctx.name(n->input(0)), ctx.name(w)};
  if (!ctx.is_none(n->input(2))) in.push_back(ctx.name(n->input(2)));
  ctx.bind(n->output(), ctx.emit1("Conv", in,
                                  {Attr::of("strides", expand(ctx.to_ints(n->input(3)))), Attr::of("pads", pads),
                                   Attr::of("dilations", expand(ctx.to_ints(n->input(5)))),
                                   Attr::of("group", ctx.to_int(n->input(full ? 8 : 6)))}));
}

void lower_matmul(LoweringContext& ctx, const Node* n) {
  ctx.bind(n->output(), ctx.emit1("MatMul", {ctx.name(n->input(0)), ctx.name(n->input(1))}));
}

// embedding(weight, indices, padding_idx, scale_grad, sparse) → Gather
void lower_embedding(LoweringContext& ctx, const Node* n) {
  const Value* w = n->input(0);
  ctx.scope_from_weight(w);
  ctx.bind(n->output(), ctx.emit1("Gather", {ctx.name(w), ctx.name(n->input(1))}));
}

// softmax(x, dim, dtype)
template <const char* Op>
void lower_softmax(LoweringContext& ctx, const Node* n) {
  const Value* x = n->input(0);
  std::string in = ctx.cast(ctx.name(x), ctx.dtype(x), ctx.dtype(n->output()));
  ctx.bind(n->output(), ctx.emit1(Op, {in}, {Attr::of("axis", ctx.to_int(n->input(1)))}));
}
constexpr char kSoftmax[] = "Softmax", kLogSoftmax[] = "LogSoftmax";

struct LayerNormArgs {
  std::string x, weight, bias;  // weight / bias empty when None
  std::vector<int64_t> axes;
  double eps;
};
LayerNormArgs layer_norm_args(LoweringContext& ctx, const Node* n) {
  // layer_norm(input, normalized_shape, weight, bias, eps, cudnn_enable)
  LayerNormArgs a;
  a.x = ctx.name(n->input(0));
  int64_t k = static_cast<int64_t>(ctx.to_ints(n->input(1)).size());
  for (int64_t i = -k; i < 0; ++i) a.axes.push_back(i);
  if (!ctx.is_none(n->input(2))) a.weight = ctx.name(n->input(2));
  if (!ctx.is_none(n->input(3))) a.bias = ctx.name(n->input(3));
  a.eps = test_fault("layer_norm_default_eps") ? 1e-5 : ctx.to_double(n->input(4));
  return a;
}

// Opset < 17: (x - mean) / sqrt(var + eps) * w + b, the pattern ONNX Runtime fuses into LayerNormalization.
void lower_layer_norm_decomposed(LoweringContext& ctx, const Node* n) {
  auto a = layer_norm_args(ctx, n);
  auto t = ctx.dtype(n->output());
  auto mean = ctx.emit1("ReduceMean", {a.x}, {Attr::of("axes", a.axes)});
  auto centered = ctx.emit1("Sub", {a.x, mean});
  auto var = ctx.emit1("ReduceMean", {ctx.emit1("Pow", {centered, ctx.const_scalar(t, 2.0)})}, {Attr::of("axes", a.axes)});
  auto denom = ctx.emit1("Sqrt", {ctx.emit1("Add", {var, ctx.const_scalar(t, a.eps)})});
  std::string y = ctx.emit1("Div", {centered, denom});
  if (!a.weight.empty()) y = ctx.emit1("Mul", {y, a.weight});
  if (!a.bias.empty()) y = ctx.emit1("Add", {y, a.bias});
  ctx.bind(n->output(), y);
}

// Opset 17: LayerNormalization (its Scale input is required: ones when the module has no weight).
void lower_layer_norm_native(LoweringContext& ctx, const Node* n) {
  auto a = layer_norm_args(ctx, n);
  if (a.weight.empty()) {
    auto shape = ctx.to_ints(n->input(1));
    a.weight = ctx.const_tensor(torch::ones(shape, ctx.dtype(n->output())), "ones");
  }
  std::vector<std::string> inputs{a.x, a.weight};
  if (!a.bias.empty()) inputs.push_back(a.bias);
  ctx.bind(n->output(), ctx.emit1("LayerNormalization", inputs,
                                  {Attr::of("axis", a.axes.front()), Attr::of("epsilon", a.eps)}));
}

// group_norm(x, num_groups, weight, bias, eps, cudnn_enabled) on [N, C, *]: InstanceNormalization (every opset;
// GroupNormalization is opset 18 and was redefined in 21). One group per channel is InstanceNormalization with
// the affine weights; otherwise x is viewed as [N, groups, -1], normalised with unit scale, viewed back and scaled
// per channel, as PyTorch's own ONNX export does.
void lower_group_norm(LoweringContext& ctx, const Node* n) {
  const Value* x = n->input(0);
  const int64_t groups = ctx.to_int(n->input(1)), rank = ctx.rank(x);
  const double eps = ctx.to_double(n->input(4));
  const auto dims = ctx.dims(x);
  if (rank < 3 || !dims[1]) throw Error("aten::group_norm needs [N, C, *] with a static C");
  const int64_t channels = *dims[1];
  const bool affine = !ctx.is_none(n->input(2)) && !ctx.is_none(n->input(3));
  if (groups == channels && affine && rank >= 3) {
    ctx.bind(n->output(), ctx.emit1("InstanceNormalization", {ctx.name(x), ctx.name(n->input(2)), ctx.name(n->input(3))},
                                    {Attr::of("epsilon", eps)}));
    return;
  }
  auto grouped = ctx.emit1("Reshape", {ctx.name(x), ctx.const_ints({0, groups, -1})});
  auto normed = ctx.emit1("InstanceNormalization", {grouped, ctx.const_tensor(torch::ones({groups}), "ones"),
                                                    ctx.const_tensor(torch::zeros({groups}), "zeros")},
                          {Attr::of("epsilon", eps)});
  auto y = ctx.emit1("Reshape", {normed, ctx.emit1("Shape", {ctx.name(x)})});
  std::vector<int64_t> per_channel(static_cast<size_t>(rank - 1), 1);  // [C, 1, ...]
  per_channel[0] = channels;
  if (!ctx.is_none(n->input(2))) y = ctx.emit1("Mul", {y, ctx.emit1("Reshape", {ctx.name(n->input(2)), ctx.const_ints(per_channel)})});
  if (!ctx.is_none(n->input(3))) y = ctx.emit1("Add", {y, ctx.emit1("Reshape", {ctx.name(n->input(3)), ctx.const_ints(per_channel)})});
  ctx.bind(n->output(), y);
}

// mean(x, dims, keepdim, dtype) — axes are an attribute until opset 18.
void lower_mean(LoweringContext& ctx, const Node* n) {
  if (n->inputs().size() < 3) throw Error("aten::mean over all dims is not supported");
  std::vector<int64_t> axes = ctx.to_ints(n->input(1));
  int64_t keep = ctx.to_bool(n->input(2)) ? 1 : 0;
  std::string x = ctx.cast(ctx.name(n->input(0)), ctx.dtype(n->input(0)), ctx.dtype(n->output()));
  ctx.bind(n->output(), ctx.emit1("ReduceMean", {x}, {Attr::of("axes", axes), Attr::of("keepdims", keep)}));
}

// Opset 18: ReduceMean takes its axes as an input.
void lower_mean_18(LoweringContext& ctx, const Node* n) {
  if (n->inputs().size() < 3) throw Error("aten::mean over all dims is not supported");
  int64_t keep = ctx.to_bool(n->input(2)) ? 1 : 0;
  std::string x = ctx.cast(ctx.name(n->input(0)), ctx.dtype(n->input(0)), ctx.dtype(n->output()));
  ctx.bind(n->output(),
           ctx.emit1("ReduceMean", {x, ctx.const_ints(ctx.to_ints(n->input(1)))}, {Attr::of("keepdims", keep)}));
}

// sum(x, dims, keepdim, dtype) — axes are an input since opset 13.
void lower_sum(LoweringContext& ctx, const Node* n) {
  if (n->inputs().size() < 3) throw Error("aten::sum over all dims is not supported");
  std::string x = ctx.cast(ctx.name(n->input(0)), ctx.dtype(n->input(0)), ctx.dtype(n->output()));
  int64_t keep = ctx.to_bool(n->input(2)) ? 1 : 0;
  ctx.bind(n->output(),
           ctx.emit1("ReduceSum", {x, ctx.const_ints(ctx.to_ints(n->input(1)))}, {Attr::of("keepdims", keep)}));
}

// max(x): the largest element (a 0-d tensor). ReduceMax over every axis (no axes, the same at every opset).
void lower_max_all(LoweringContext& ctx, const Node* n) {
  if (n->inputs().size() != 1) throw Error("aten::max along a dimension is not supported");
  ctx.bind(n->output(), ctx.emit1("ReduceMax", {ctx.name(n->input(0))}, {Attr::of("keepdims", int64_t{0})}));
}

// argmax(x, dim, keepdim): the first index of the largest value (ArgMax's select_last_index 0, as torch on CPU).
// ONNX Runtime's ArgMax takes float and int32 but not int64: a caller casts ids to int first, as transformers does.
void lower_argmax(LoweringContext& ctx, const Node* n) {
  const Value* x = n->input(0);
  if (ctx.is_none(n->input(1))) throw Error("aten::argmax over all dims is not supported");
  const int64_t axis = ctx.axis(x, ctx.to_int(n->input(1)));
  const int64_t keep = ctx.to_bool(n->input(2)) ? 1 : 0;
  ctx.bind(n->output(), ctx.emit1("ArgMax", {ctx.name(x)}, {Attr::of("axis", axis), Attr::of("keepdims", keep)}));
}

}  // namespace

void register_nn_ops(LoweringTable& t) {
  t.add("aten::linear", 14, lower_linear);
  t.add("aten::matmul", 14, lower_matmul);
  t.add("aten::conv1d", 14, lower_conv);
  t.add("aten::conv2d", 14, lower_conv);
  t.add("aten::_convolution", 14, lower_conv);
  t.add("aten::bmm", 14, lower_matmul);
  t.add("aten::embedding", 14, lower_embedding);
  t.add("aten::softmax", 14, lower_softmax<kSoftmax>);
  t.add("aten::log_softmax", 14, lower_softmax<kLogSoftmax>);
  t.add("aten::layer_norm", 14, lower_layer_norm_decomposed);
  t.add("aten::layer_norm", 17, lower_layer_norm_native);
  t.add("aten::mean", 14, lower_mean);
  t.add("aten::mean", 18, lower_mean_18);
  t.add("aten::sum", 14, lower_sum);
  t.add("aten::max", 14, lower_max_all);
  t.add("aten::argmax", 14, lower_argmax);
  t.add("aten::group_norm", 14, lower_group_norm);
}

}  // namespace hf2onnx
