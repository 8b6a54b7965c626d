// Tier 2: each lowering on a tiny traced function, at every supported opset, run in ONNX Runtime at a
// shape other than the two trace shapes and compared with libtorch eager.
#include <gtest/gtest.h>

#include "common/model_util.h"
#include "common/test_util.h"
#include "export/verify_graphs.h"  // to_npy
#include "export/lower_graph.h"
#include "export/lowering/table.h"
#include "onnx/check.h"
#include "onnx/writer.h"
#include "export/trace.h"
#include "hf2onnx/error.h"

namespace hf2onnx::test {
namespace {

using Tensors = std::vector<torch::Tensor>;

// Names the dims that differ between the two example tensors.
std::vector<std::string> dyn_dims(const torch::Tensor& a, const torch::Tensor& b) {
  std::vector<std::string> d;
  for (int64_t i = 0; i < a.dim(); ++i) d.push_back(a.size(i) != b.size(i) ? "d" + std::to_string(i) : "");
  return d;
}

struct OpCase {
  std::string name;
  TraceFn fn;
  std::function<Tensors(int64_t, int64_t)> inputs;  // example inputs at (n, m)
  std::vector<std::pair<std::string, torch::Tensor>> params = {};
  double atol = 1e-5;
};

void check_op(const OpCase& c) {
  torch::manual_seed(0);
  const Tensors a = c.inputs(4, 9), b = c.inputs(5, 13), v = c.inputs(3, 6);  // trace, trace, validate
  TracedGraph traced = trace_twice(c.fn, a, b, c.params);
  torch::NoGradGuard no_grad;
  const Tensors out_a = c.fn(a), out_b = c.fn(b), expected = c.fn(v);

  LowerOptions lo;
  for (size_t i = 0; i < a.size(); ++i) lo.inputs.push_back({"in" + std::to_string(i), dyn_dims(a[i], b[i])});
  for (size_t i = 0; i < out_a.size(); ++i) lo.outputs.push_back({"out" + std::to_string(i), dyn_dims(out_a[i], out_b[i])});

  fs::path dir = temp_dir("op_" + c.name);
  fs::create_directories(dir / "in");
  for (size_t i = 0; i < v.size(); ++i) write_npy(dir / "in" / ("in" + std::to_string(i) + ".npy"), to_npy(v[i]));
  std::vector<OrtJob> jobs;
  for (int opset = kMinOpset; opset <= kMaxOpset; ++opset) {
    lo.opset = opset;
    LoweredModel m = lower_to_onnx(traced, lo);
    check_model(m.model, m.initializers);
    fs::path model = dir / ("opset" + std::to_string(opset) + ".onnx");
    write_onnx(m.model, m.initializers, model);
    jobs.push_back({model, dir / "in", dir / ("out" + std::to_string(opset))});
  }
  run_ort(jobs);
  for (int opset = kMinOpset; opset <= kMaxOpset; ++opset) {
    for (size_t i = 0; i < expected.size(); ++i) {
      Array want = to_npy(expected[i]);
      Array got = read_npy(dir / ("out" + std::to_string(opset)) / ("out" + std::to_string(i) + ".npy"));
      ASSERT_EQ(got.shape, want.shape) << c.name << " opset " << opset << " output " << i;
      ASSERT_EQ(got.dtype, want.dtype) << c.name << " opset " << opset << " output " << i;
      if (want.dtype == "<f4")
        EXPECT_LE(max_abs_diff(got, want), c.atol) << c.name << " opset " << opset << " output " << i;
      else
        EXPECT_EQ(got.bytes, want.bytes) << c.name << " opset " << opset << " output " << i;
    }
  }
}

Tensors x3(int64_t n, int64_t m) { return {torch::randn({n, m, 8})}; }
Tensors xy3(int64_t n, int64_t m) { return {torch::randn({n, m, 8}), torch::randn({n, m, 8})}; }
Tensors ids(int64_t n, int64_t m) { return {torch::randint(0, 50, {n, m}, torch::kLong)}; }
Tensors mask(int64_t n, int64_t m) {
  auto t = torch::ones({n, m}, torch::kLong);
  t.index_put_({0, torch::indexing::Slice(m - 2)}, 0);
  return {t};
}
TraceFn f1(std::function<torch::Tensor(const torch::Tensor&)> f) {
  return [f](const Tensors& in) { return Tensors{f(in[0])}; };
}
TraceFn f2(std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)> f) {
  return [f](const Tensors& in) { return Tensors{f(in[0], in[1])}; };
}

TEST(Lowering, Arithmetic) {
  check_op({"add_sub_mul_div", f2([](auto& x, auto& y) { return ((x + y) * 2.0 - y / 3.0) / (y.abs() + 1.0); }), xy3});
  check_op({"add_alpha", f2([](auto& x, auto& y) { return torch::add(x, y, 0.5) - torch::sub(x, y, 2); }), xy3});
  check_op({"rsub", f1([](auto& x) { return torch::rsub(x, 1.0) + (1.0 - x); }), x3});
  check_op({"pow", f1([](auto& x) { return torch::pow(x, 3.0) + torch::pow(x.abs(), 0.5); }), x3});
  check_op({"neg_reciprocal", f1([](auto& x) { return -x + torch::reciprocal(x.abs() + 1); }), x3});
}

TEST(Lowering, UnaryMath) {
  check_op({"unary", f1([](auto& x) {
              return torch::tanh(x) + torch::sigmoid(x) + torch::erf(x) + torch::sqrt(x.abs()) + torch::exp(x * 0.1) +
                     torch::log(x.abs() + 1) + torch::sin(x) + torch::cos(x) + torch::rsqrt(x.abs() + 1);
            }), x3});
}

TEST(Lowering, Activations) {
  check_op({"relu", f1([](auto& x) { return torch::relu(x); }), x3});
  check_op({"silu", f1([](auto& x) { return torch::silu(x); }), x3});
  check_op({"gelu_erf", f1([](auto& x) { return torch::gelu(x); }), x3});
  check_op({"gelu_tanh", f1([](auto& x) { return torch::gelu(x, "tanh"); }), x3});
}

TEST(Lowering, ComparisonsWhereAndMaskedFill) {
  check_op({"compare", f2([](auto& x, auto& y) {
              return (x.gt(y).to(torch::kFloat) + x.lt(0.5).to(torch::kFloat) + x.ge(y).to(torch::kFloat) +
                      x.le(-0.5).to(torch::kFloat) + x.eq(y).to(torch::kFloat) + x.ne(y).to(torch::kFloat));
            }), xy3});
  check_op({"where", f2([](auto& x, auto& y) { return torch::where(x > y, x, y * 2); }), xy3});
  check_op({"masked_fill", f2([](auto& x, auto& m) {
              return x.masked_fill(m.eq(0).unsqueeze(-1), std::numeric_limits<float>::lowest());
            }), [](int64_t n, int64_t m) { return Tensors{torch::randn({n, m, 8}), mask(n, m)[0]}; }});
  check_op({"int_compare_and_cast", f1([](auto& i) { return i.ne(1).to(torch::kInt).cumsum(1) * 2; }), ids});
}

TEST(Lowering, Reshapes) {
  check_op({"unflatten_flatten", f1([](auto& x) { return x.unflatten(-1, {2, 4}).transpose(1, 2).flatten(-2); }), x3});
  check_op({"unflatten_middle", f1([](auto& x) { return x.unflatten(1, {-1, 1}).sum(std::vector<int64_t>{2}, false); }), x3});
  check_op({"flatten_all", f1([](auto& x) { return x.flatten(0, 1); }), x3});
  check_op({"view_static", f1([](auto& x) { return x.view({-1, 2, 4}); }), x3});
  check_op({"permute_t", f1([](auto& x) { return x.permute({2, 0, 1}).select(1, 0).t(); }), x3});
  check_op({"unsqueeze_squeeze", f1([](auto& x) { return x.unsqueeze(1).unsqueeze(-1).squeeze(-1).squeeze(1); }), x3});
  check_op({"expand", f1([](auto& x) { return x.select(-1, 0).unsqueeze(-1).expand({-1, -1, 8}) + x; }), x3});
}

TEST(Lowering, IndexingAndConcat) {
  check_op({"select", f1([](auto& x) { return x.select(1, 0) + x.select(1, -1); }), x3});
  check_op({"slice", f1([](auto& x) {
              using torch::indexing::Slice;
              return x.index({Slice(), Slice(1, torch::indexing::None), Slice(0, 6, 2)});
            }), x3});
  check_op({"index_select", f2([](auto& x, auto& i) { return x.index_select(1, i.select(0, 0)); }),
            [](int64_t n, int64_t m) { return Tensors{torch::randn({n, 7, 8}), torch::randint(0, 3, {n, m}, torch::kLong)}; }});
  // Ties (ids drawn from 0..3) must pick the first index, as torch does; ids cast to int as CLIP's pooling does.
  check_op({"argmax", f1([](auto& i) { return i.to(torch::kInt).argmax(-1) + i.to(torch::kInt).argmax(0, true).sum(-1); }),
            [](int64_t n, int64_t m) { return Tensors{torch::randint(0, 4, {n, m}, torch::kLong)}; }});
  check_op({"argmax_float", f1([](auto& x) { return x.argmax(1); }), x3});
  check_op({"cat", f2([](auto& x, auto& y) { return torch::cat({x, y * 2}, -1); }), xy3});
}

TEST(Lowering, Constructors) {
  check_op({"ones_zeros_like", f1([](auto& i) { return torch::ones_like(i).cumsum(-1) - 1 + torch::zeros_like(i); }), ids});
  check_op({"full_like", f1([](auto& x) { return torch::full_like(x, 2.5) * x; }), x3});
  check_op({"scalar_minus_tensor", f1([](auto& x) { return 1.0 - x; }), x3});  // traces as empty_like/fill_/sub_
}

TEST(Lowering, LinearAlgebra) {
  auto w = torch::randn({6, 8}), bias = torch::randn({6});
  check_op({"linear", [w, bias](const Tensors& in) { return Tensors{torch::linear(in[0], w, bias)}; }, x3,
            {{"lin.weight", w}, {"lin.bias", bias}}, 1e-4});
  check_op({"linear_no_bias", [w](const Tensors& in) { return Tensors{torch::linear(in[0], w)}; }, x3,
            {{"lin.weight", w}}, 1e-4});
  // A weight used both as a lookup table and as a linear weight (tied embeddings).
  auto emb = torch::randn({50, 8});
  check_op({"tied_embedding", [emb](const Tensors& in) { return Tensors{torch::linear(torch::embedding(emb, in[0]), emb)}; },
            ids, {{"emb.weight", emb}}, 1e-4});
  check_op({"matmul", f2([](auto& x, auto& y) { return torch::matmul(x, y.transpose(-1, -2)); }), xy3, {}, 1e-4});
  check_op({"bmm", f2([](auto& x, auto& y) { return torch::bmm(x, y.transpose(1, 2)); }), xy3, {}, 1e-4});
}

TEST(Lowering, Normalisation) {
  auto g = torch::randn({8}), b = torch::randn({8});
  check_op({"softmax", f1([](auto& x) { return torch::softmax(x, -1) + torch::log_softmax(x, 1); }), x3});
  check_op({"layer_norm", [g, b](const Tensors& in) { return Tensors{torch::layer_norm(in[0], {8}, g, b, 1e-5)}; }, x3,
            {{"ln.weight", g}, {"ln.bias", b}}});
  check_op({"layer_norm_no_affine", f1([](auto& x) { return torch::layer_norm(x, {8}); }), x3});
  // GroupNorm: one group per channel (wav2vec2's first conv layer: InstanceNormalization with the affine weights),
  // grouped channels on 3-D and 4-D inputs (Stable Diffusion's), and without affine weights.
  auto gw = torch::randn({8}), gb = torch::randn({8});
  auto channels_first = [](int64_t n, int64_t m) { return Tensors{torch::randn({n, 8, m}) * 3 + 1}; };
  check_op({"group_norm_per_channel", [gw, gb](const Tensors& in) { return Tensors{torch::group_norm(in[0], 8, gw, gb, 1e-5)}; },
            channels_first, {{"gn.weight", gw}, {"gn.bias", gb}}});
  check_op({"group_norm_grouped", [gw, gb](const Tensors& in) { return Tensors{torch::group_norm(in[0], 2, gw, gb, 1e-6)}; },
            channels_first, {{"gn.weight", gw}, {"gn.bias", gb}}});
  check_op({"group_norm_4d", [gw, gb](const Tensors& in) { return Tensors{torch::group_norm(in[0], 4, gw, gb, 1e-5)}; },
            [](int64_t n, int64_t m) { return Tensors{torch::randn({n, 8, m, m + 1})}; }, {{"gn.weight", gw}, {"gn.bias", gb}}});
  check_op({"group_norm_no_affine", f1([](auto& x) { return torch::group_norm(x, 4); }), channels_first});
  check_op({"mean_sum", f1([](auto& x) { return x.mean(std::vector<int64_t>{-1}, true) + x.sum(std::vector<int64_t>{1}, true); }), x3});
}

TEST(Lowering, NoOps) {
  check_op({"contiguous_clone_dropout", f1([](auto& x) {
              return torch::dropout(x.transpose(0, 1).contiguous().clone(), 0.1, false).detach();
            }), x3});
}

TEST(LoweringTable, PicksTheNewestEntryAtOrBelowTheOpset) {
  const auto& t = lowering_table();
  EXPECT_EQ(t.opsets("aten::layer_norm"), (std::vector<int>{14, 17}));
  EXPECT_NE(t.find("aten::layer_norm", 16), t.find("aten::layer_norm", 17));
  EXPECT_EQ(t.find("aten::layer_norm", 14), t.find("aten::layer_norm", 16));
  EXPECT_EQ(t.find("aten::layer_norm", 13), nullptr);
  EXPECT_EQ(t.find("aten::no_such_op", 17), nullptr);
}

TEST(Lowering, UnknownOpIsAnErrorNamingOpAndOpset) {
  TraceFn fn = f1([](auto& x) { return torch::cumprod(x, 1); });
  TracedGraph tr = trace_twice(fn, x3(4, 9), x3(5, 13), {});
  LowerOptions lo;
  lo.inputs = {{"in0", {"d0", "d1", ""}}};
  lo.outputs = {{"out0", {"d0", "d1", ""}}};
  try {
    lower_to_onnx(tr, lo);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot export aten::cumprod at opset 17"), std::string::npos) << e.what();
  }
}

TEST(Trace, AFrozenSizeIsDetected) {
  // x.size(1) read in C++ becomes a constant: the two traces disagree and the export refuses.
  TraceFn frozen = f1([](auto& x) { return x.view({x.size(0), x.size(1) * 8}); });
  try {
    trace_twice(frozen, x3(4, 9), x3(5, 13), {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a constant differs"), std::string::npos) << e.what();
  }
}

TEST(Trace, DeclaringAFrozenOutputDimDynamicIsAnError) {
  TraceFn fn = f1([](auto& x) { return x.sum(std::vector<int64_t>{0, 1}); });
  TracedGraph tr = trace_twice(fn, x3(4, 9), x3(5, 13), {});
  LowerOptions lo;
  lo.inputs = {{"in0", {"d0", "d1", ""}}};
  lo.outputs = {{"out0", {"d0"}}};
  EXPECT_THROW(lower_to_onnx(tr, lo), Error);
}

}  // namespace
}  // namespace hf2onnx::test
