// The op quantizers (MatMul → MatMulInteger chain, Gather → uint8 table + DequantizeLinear) and the
// Gemm → MatMul rewrite, mirroring ONNX Runtime's quantization/operators/{matmul,gather,gemm}.py
// in IntegerOps (dynamic) mode.
#include <cstring>

#include "hf2onnx/error.h"
#include "onnx/attributes.h"
#include "quantize/quantizer.h"

namespace hf2onnx {
namespace {

int64_t int_attr(const onnx::NodeProto& n, const std::string& name, int64_t fallback) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return a.i();
  return fallback;
}
float float_attr(const onnx::NodeProto& n, const std::string& name, float fallback) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return a.f();
  return fallback;
}

// MatMul(A, W) with W a constant [K, N] (or Transpose of a constant [N, K], or either through a Cast from 16 bits:
// QuantContext::constant_weight):
//   DynamicQuantizeLinear(A) → MatMulInteger(A_q, W_q, A_zp, W_zp) → Cast(float) → Mul(·, A_scale * W_scale)
bool matmul_should_quantize(QuantContext& ctx, const onnx::NodeProto& n) {
  if (n.input_size() != 2 || ctx.initializer(n.input(0))) return false;
  auto w = ctx.constant_weight(n.input(1));
  return w && ctx.initializer(w->initializer)->header.dims_size() == 2;
}

void matmul_quantize(QuantContext& ctx, const onnx::NodeProto& n) {
  const bool symmetric = ctx.weight_type == quant::QType::Int8;
  const auto b = *ctx.constant_weight(n.input(1));
  const int axis = ctx.options.per_channel ? 1 : -1;
  QuantizedWeight w =
      ctx.quantize_weight(b.initializer, ctx.weight_type, symmetric, axis, n, b.transposed, ctx.pair_sum_limit);
  ActivationQuant a = ctx.dynamic_quantize(n.input(0));
  const std::string base = n.name().empty() ? n.output(0) : n.name();
  std::string integer = ctx.fresh(n.output(0) + "_output_quantized");
  ctx.add_node("MatMulInteger", {a.data, w.data, a.zero_point, w.zero_point}, {integer}, ctx.fresh(base + "_quant"));
  std::string as_float = ctx.fresh(integer + "_cast_output");
  add_int_attribute(ctx.add_node("Cast", {integer}, {as_float}, ctx.fresh(integer + "_cast")), "to",
                    onnx::TensorProto::FLOAT);
  std::string scales = ctx.fresh(base + "_quant_scales_mul:0");
  ctx.add_node("Mul", {a.scale, w.scale}, {scales}, ctx.fresh(base + "_quant_scales_mul"));
  ctx.add_node("Mul", {as_float, scales}, {n.output(0)}, ctx.fresh(base + "_quant_output_scale_mul"));
}

// Gather(table, indices) with a constant table: uint8 per-tensor table, DequantizeLinear after the Gather.
bool gather_should_quantize(QuantContext& ctx, const onnx::NodeProto& n) {
  auto t = ctx.constant_weight(n.input(0));
  return t && !t->transposed && ctx.initializer(t->initializer)->header.dims_size() >= 2;
}

void gather_quantize(QuantContext& ctx, const onnx::NodeProto& n) {
  QuantizedWeight w = ctx.quantize_weight(ctx.constant_weight(n.input(0))->initializer, quant::QType::UInt8, false, -1, n);
  const std::string base = n.name().empty() ? n.output(0) : n.name();
  std::string gathered = ctx.fresh(n.output(0) + "_quantized");
  auto& g = ctx.add_node("Gather", {w.data, n.input(1)}, {gathered}, ctx.fresh(base + "_quant"));
  *g.mutable_attribute() = n.attribute();
  ctx.add_node("DequantizeLinear", {gathered, w.scale, w.zero_point}, {n.output(0)}, ctx.fresh(base + "_dequant"));
}

}  // namespace

const std::vector<OpQuantizer>& quantizer_table() {
  static const std::vector<OpQuantizer> kTable = {
      {"MatMul", &matmul_should_quantize, &matmul_quantize},
      {"Gather", &gather_should_quantize, &gather_quantize},
  };
  return kTable;
}

// Gemm(A, B, C; alpha, beta, transA, transB) with constant B → MatMul(A', alpha·B') (+ Add(·, beta·C)).
void rewrite_gemm_as_matmul(QuantContext& ctx, std::vector<onnx::NodeProto>& nodes) {
  std::vector<onnx::NodeProto> out;
  for (const auto& n : nodes) {
    if (n.op_type() != "Gemm" || ctx.excluded(n) || n.input_size() < 2 || !ctx.is_float_initializer(n.input(1), 2)) {
      out.push_back(n);
      continue;
    }
    const float alpha = float_attr(n, "alpha", 1.f), beta = float_attr(n, "beta", 1.f);
    const bool trans_a = int_attr(n, "transA", 0) != 0, trans_b = int_attr(n, "transB", 0) != 0;
    const LazyTensor& b = *ctx.initializer(n.input(1));
    const int64_t rows = b.header.dims(0), cols = b.header.dims(1);
    std::vector<float> w = b.floats();
    const int64_t k = trans_b ? cols : rows, m = trans_b ? rows : cols;  // B' is [k, m]
    auto bytes = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(k * m) * 4);
    float* dst = reinterpret_cast<float*>(bytes->data());
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < m; ++j) dst[i * m + j] = alpha * (trans_b ? w[j * cols + i] : w[i * cols + j]);
    std::string weight = ctx.fresh(n.input(1) + (trans_b ? "_transposed" : "_matmul"));
    ctx.add_initializer(LazyTensor::owned(weight, onnx::TensorProto::FLOAT, {k, m}, bytes));

    const std::string base = n.name().empty() ? n.output(0) : n.name();
    std::string a = n.input(0);
    auto make = [&](const std::string& op, std::vector<std::string> in, std::string o, const std::string& name) {
      onnx::NodeProto p;
      p.set_op_type(op);
      p.set_name(ctx.fresh(name));
      for (auto& i : in) p.add_input(i);
      p.add_output(o);
      out.push_back(p);
      return &out.back();
    };
    if (trans_a) {
      std::string at = ctx.fresh(a + "_transposed");
      add_ints_attribute(*make("Transpose", {a}, at, base + "_transpose_a"), "perm", {1, 0});
      a = at;
    }
    const bool has_c = n.input_size() > 2 && !n.input(2).empty() && beta != 0.f;
    std::string product = has_c ? ctx.fresh(n.output(0) + "_matmul") : n.output(0);
    ctx.gemm_matmuls.insert(make("MatMul", {a, weight}, product, base + "_MatMul")->name());
    if (has_c) {
      std::string c = n.input(2);
      if (beta != 1.f) {
        std::string beta_name = ctx.fresh(base + "_beta");
        auto bb = std::make_shared<std::vector<uint8_t>>(4);
        std::memcpy(bb->data(), &beta, 4);
        ctx.add_initializer(LazyTensor::owned(beta_name, onnx::TensorProto::FLOAT, {}, bb));
        std::string scaled = ctx.fresh(c + "_scaled");
        make("Mul", {c, beta_name}, scaled, base + "_beta_mul");
        c = scaled;
      }
      make("Add", {product, c}, n.output(0), base + "_Add");
    }
  }
  nodes = std::move(out);
}

}  // namespace hf2onnx
