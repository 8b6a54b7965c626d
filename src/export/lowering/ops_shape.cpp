// Shape and layout ops: reshapes (unflatten/flatten/view), transposes, (un)squeeze, slicing, concat,
// *_like constructors, cumsum, and the no-ops (contiguous, dropout, ...).
#include <limits>

#include "export/lowering/table.h"
#include "hf2onnx/error.h"

namespace hf2onnx {
namespace {

using Dims = std::vector<std::optional<int64_t>>;

// A Reshape target for `x`: dims [0, keep) copied from x, then `middle`, then x's dims [tail, rank).
// Uses 0 ("copy") and static sizes where it can; falls back to Shape/Slice/Concat for a dynamic tail.
std::string reshape_shape(LoweringContext& ctx, const Value* x, int64_t keep, const std::vector<int64_t>& middle,
                          int64_t tail) {
  Dims d = ctx.dims(x);
  const int64_t r = ctx.rank(x);
  bool tail_static = true;
  for (int64_t i = tail; i < r; ++i) tail_static = tail_static && d[i].has_value();
  if (tail_static) {
    std::vector<int64_t> shape(keep, 0);
    shape.insert(shape.end(), middle.begin(), middle.end());
    for (int64_t i = tail; i < r; ++i) shape.push_back(*d[i]);
    return ctx.const_ints(shape);
  }
  auto shape = ctx.emit1("Shape", {ctx.name(x)});
  auto head = ctx.emit1("Slice", {shape, ctx.const_ints({0}), ctx.const_ints({keep})});
  auto rest = ctx.emit1("Slice", {shape, ctx.const_ints({tail}), ctx.const_ints({r})});
  return ctx.emit1("Concat", {head, ctx.const_ints(middle), rest}, {Attr::of("axis", 0)});
}

void reshape(LoweringContext& ctx, const Node* n, const std::string& shape) {
  ctx.bind(n->output(), ctx.emit1("Reshape", {ctx.name(n->input(0)), shape}));
}

// unflatten(x, dim, sizes)
void lower_unflatten(LoweringContext& ctx, const Node* n) {
  const Value* x = n->input(0);
  int64_t dim = ctx.axis(x, ctx.to_int(n->input(1)));
  reshape(ctx, n, reshape_shape(ctx, x, dim, ctx.to_ints(n->input(2)), dim + 1));
}

// flatten(x, start, end): the merged dim is static when its parts are, else -1.
void lower_flatten(LoweringContext& ctx, const Node* n) {
  const Value* x = n->input(0);
  if (ctx.rank(x) == 0) {
    reshape(ctx, n, ctx.const_ints({1}));
    return;
  }
  int64_t s = ctx.axis(x, ctx.to_int(n->input(1))), e = ctx.axis(x, ctx.to_int(n->input(2)));
  Dims d = ctx.dims(x);
  int64_t merged = 1;
  for (int64_t i = s; i <= e; ++i) merged = d[i] && merged >= 0 ? merged * *d[i] : -1;
  reshape(ctx, n, reshape_shape(ctx, x, s, {merged}, e + 1));
}

// view / reshape with constant sizes (a frozen size would have been caught by the two-shape trace).
void lower_view(LoweringContext& ctx, const Node* n) {
  reshape(ctx, n, ctx.const_ints(ctx.to_ints(n->input(1))));
}

void lower_transpose(LoweringContext& ctx, const Node* n) {
  const Value* x = n->input(0);
  int64_t r = ctx.rank(x);
  int64_t a = ctx.axis(x, ctx.to_int(n->input(1))), b = ctx.axis(x, ctx.to_int(n->input(2)));
  std::vector<int64_t> perm(r);
  for (int64_t i = 0; i < r; ++i) perm[i] = i;
  std::swap(perm[a], perm[b]);
  ctx.bind(n->output(), ctx.emit1("Transpose", {ctx.name(x)}, {Attr::of("perm", perm)}));
}

void lower_t(LoweringContext& ctx, const Node* n) {
  const Value* x = n->input(0);
  if (ctx.rank(x) < 2) return ctx.alias(n->output(), x);
  ctx.bind(n->output(), ctx.emit1("Transpose", {ctx.name(x)}, {Attr::of("perm", std::vector<int64_t>{1, 0})}));
}

void lower_permute(LoweringContext& ctx, const Node* n) {
  const Value* x = n->input(0);
  std::vector<int64_t> perm = ctx.to_ints(n->input(1));
  for (auto& p : perm) p = ctx.axis(x, p);
  ctx.bind(n->output(), ctx.emit1("Transpose", {ctx.name(x)}, {Attr::of("perm", perm)}));
}

void lower_unsqueeze(LoweringContext& ctx, const Node* n) {
  ctx.bind(n->output(), ctx.emit1("Unsqueeze", {ctx.name(n->input(0)), ctx.const_ints({ctx.to_int(n->input(1))})}));
}

// squeeze(x, dim) / squeeze(x): only dims that are statically 1 (a dynamic dim is never squeezed).
void lower_squeeze(LoweringContext& ctx, const Node* n) {
  const Value* x = n->input(0);
  Dims d = ctx.dims(x);
  std::vector<int64_t> axes;
  if (n->inputs().size() > 1) {
    int64_t a = ctx.axis(x, ctx.to_int(n->input(1)));
    if (d[a] && *d[a] == 1) axes.push_back(a);
  } else {
    for (size_t i = 0; i < d.size(); ++i)
      if (d[i] && *d[i] == 1) axes.push_back(static_cast<int64_t>(i));
  }
  if (axes.empty()) return ctx.alias(n->output(), x);
  ctx.bind(n->output(), ctx.emit1("Squeeze", {ctx.name(x), ctx.const_ints(axes)}));
}

// select(x, dim, index) → Gather with a scalar index (drops the dim).
void lower_select(LoweringContext& ctx, const Node* n) {
  const Value* x = n->input(0);
  int64_t dim = ctx.axis(x, ctx.to_int(n->input(1)));
  ctx.bind(n->output(),
           ctx.emit1("Gather", {ctx.name(x), ctx.const_int(ctx.to_int(n->input(2)))}, {Attr::of("axis", dim)}));
}

// slice(x, dim, start, end, step)
void lower_slice(LoweringContext& ctx, const Node* n) {
  const Value* x = n->input(0);
  int64_t dim = ctx.axis(x, ctx.to_int(n->input(1)));
  int64_t start = ctx.is_none(n->input(2)) ? 0 : ctx.to_int(n->input(2));
  int64_t end = ctx.is_none(n->input(3)) ? std::numeric_limits<int64_t>::max() : ctx.to_int(n->input(3));
  int64_t step = ctx.to_int(n->input(4));
  if (start == 0 && end == std::numeric_limits<int64_t>::max() && step == 1) return ctx.alias(n->output(), x);
  ctx.bind(n->output(), ctx.emit1("Slice", {ctx.name(x), ctx.const_ints({start}), ctx.const_ints({end}),
                                            ctx.const_ints({dim}), ctx.const_ints({step})}));
}

void lower_index_select(LoweringContext& ctx, const Node* n) {
  const Value* x = n->input(0);
  int64_t dim = ctx.axis(x, ctx.to_int(n->input(1)));
  ctx.bind(n->output(), ctx.emit1("Gather", {ctx.name(x), ctx.name(n->input(2))}, {Attr::of("axis", dim)}));
}

void lower_cat(LoweringContext& ctx, const Node* n) {
  auto items = ctx.list_items(n->input(0));
  auto t = ctx.dtype(n->output());
  std::vector<std::string> inputs;
  for (const Value* v : items) inputs.push_back(ctx.operand(v, t));
  int64_t dim = ctx.axis(n->output(), ctx.to_int(n->input(1)));
  ctx.bind(n->output(), ctx.emit1("Concat", inputs, {Attr::of("axis", dim)}));
}

// expand(x, sizes): -1 keeps the input's dim, which is what a 1 means to ONNX Expand.
void lower_expand(LoweringContext& ctx, const Node* n) {
  auto sizes = ctx.to_ints(n->input(1));
  for (auto& s : sizes)
    if (s == -1) s = 1;
  ctx.bind(n->output(), ctx.emit1("Expand", {ctx.name(n->input(0)), ctx.const_ints(sizes)}));
}

// expand_as(x, other): x broadcast to other's shape, read at run time (a traced size stays dynamic).
void lower_expand_as(LoweringContext& ctx, const Node* n) {
  ctx.bind(n->output(), ctx.emit1("Expand", {ctx.name(n->input(0)), ctx.emit1("Shape", {ctx.name(n->input(1))})}));
}

// reshape_as(x, other) / view_as: x in other's shape, read at run time.
void lower_reshape_as(LoweringContext& ctx, const Node* n) {
  ctx.bind(n->output(), ctx.emit1("Reshape", {ctx.name(n->input(0)), ctx.emit1("Shape", {ctx.name(n->input(1))})}));
}

// constant_pad_nd(x, pad, value): pad lists (begin, end) pairs from the last dim backwards, as F.pad; ONNX Pad
// takes every dim's begins, then every dim's ends. Negative pads (cropping) are not supported.
void lower_constant_pad_nd(LoweringContext& ctx, const Node* n) {
  const Value* x = n->input(0);
  const auto pad = ctx.to_ints(n->input(1));
  const int64_t rank = ctx.rank(x);
  if (pad.size() % 2 != 0 || static_cast<int64_t>(pad.size()) > 2 * rank) throw Error("aten::constant_pad_nd: bad pad list");
  std::vector<int64_t> pads(static_cast<size_t>(2 * rank), 0);
  for (size_t k = 0; k < pad.size() / 2; ++k) {
    const size_t dim = static_cast<size_t>(rank) - 1 - k;
    if (pad[2 * k] < 0 || pad[2 * k + 1] < 0) throw Error("aten::constant_pad_nd with a negative pad is not supported");
    pads[dim] = pad[2 * k];
    pads[dim + static_cast<size_t>(rank)] = pad[2 * k + 1];
  }
  const auto t = ctx.dtype(n->output());
  ctx.bind(n->output(), ctx.emit1("Pad", {ctx.name(x), ctx.const_ints(pads), ctx.operand(n->input(2), t)}));
}

std::string filled_like(LoweringContext& ctx, const Value* like, c10::ScalarType t, double value) {
  onnx::TensorProto v;
  v.set_data_type(onnx_dtype(t));
  v.add_dims(1);
  auto scalar = torch::scalar_tensor(value, torch::kDouble).to(t).reshape({1});
  v.set_raw_data(std::string(static_cast<const char*>(scalar.data_ptr()), scalar.nbytes()));
  return ctx.emit1("ConstantOfShape", {ctx.emit1("Shape", {ctx.name(like)})}, {Attr::of("value", v)});
}

void lower_zeros_like(LoweringContext& ctx, const Node* n) {
  ctx.bind(n->output(), filled_like(ctx, n->input(0), ctx.dtype(n->output()), 0));
}
void lower_ones_like(LoweringContext& ctx, const Node* n) {
  ctx.bind(n->output(), filled_like(ctx, n->input(0), ctx.dtype(n->output()), 1));
}
void lower_full_like(LoweringContext& ctx, const Node* n) {
  ctx.bind(n->output(), filled_like(ctx, n->input(0), ctx.dtype(n->output()), ctx.to_double(n->input(1))));
}
// fill_(x, value): the traced value after the in-place fill.
void lower_fill(LoweringContext& ctx, const Node* n) {
  auto t = ctx.dtype(n->output());
  ctx.bind(n->output(), ctx.emit1("Expand", {ctx.operand(n->input(1), t), ctx.emit1("Shape", {ctx.name(n->input(0))})}));
}

// cumsum(x, dim, dtype): torch sums integers in int64; the traced output dtype says which.
void lower_cumsum(LoweringContext& ctx, const Node* n) {
  const Value* x = n->input(0);
  auto t = ctx.dtype(n->output());
  int64_t dim = ctx.axis(x, ctx.to_int(n->input(1)));
  std::string y = ctx.emit1("CumSum", {ctx.operand(x, t), ctx.const_int(dim)});
  if (test_fault("cumsum_off_by_one")) y = ctx.emit1("Add", {y, ctx.cast(ctx.const_int(1), torch::kLong, t)});
  ctx.bind(n->output(), y);
}

void lower_identity(LoweringContext& ctx, const Node* n) { ctx.alias(n->output(), n->input(0)); }

}  // namespace

void register_shape_ops(LoweringTable& t) {
  t.add("aten::unflatten", 14, lower_unflatten);
  t.add("aten::flatten", 14, lower_flatten);
  t.add("aten::view", 14, lower_view);
  t.add("aten::reshape", 14, lower_view);
  t.add("aten::reshape_as", 14, lower_reshape_as);
  t.add("aten::view_as", 14, lower_reshape_as);
  t.add("aten::constant_pad_nd", 14, lower_constant_pad_nd);
  t.add("aten::transpose", 14, lower_transpose);
  t.add("aten::t", 14, lower_t);
  t.add("aten::permute", 14, lower_permute);
  t.add("aten::unsqueeze", 14, lower_unsqueeze);
  t.add("aten::squeeze", 14, lower_squeeze);
  t.add("aten::select", 14, lower_select);
  t.add("aten::slice", 14, lower_slice);
  t.add("aten::index_select", 14, lower_index_select);
  t.add("aten::cat", 14, lower_cat);
  t.add("aten::expand", 14, lower_expand);
  t.add("aten::expand_as", 14, lower_expand_as);
  t.add("aten::zeros_like", 14, lower_zeros_like);
  t.add("aten::empty_like", 14, lower_zeros_like);
  t.add("aten::ones_like", 14, lower_ones_like);
  t.add("aten::full_like", 14, lower_full_like);
  t.add("aten::fill", 14, lower_fill);
  t.add("aten::cumsum", 14, lower_cumsum);
  for (const char* op : {"aten::contiguous", "aten::clone", "aten::detach", "aten::dropout", "aten::feature_dropout",
                         "aten::alias", "aten::lift_fresh"})
    t.add(op, 14, lower_identity);
}

}  // namespace hf2onnx
