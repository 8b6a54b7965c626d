#include "models/layers/rotary.h"

#include "hf2onnx/error.h"

namespace hf2onnx::layers {

RotaryConfig RotaryConfig::from(const hf::Config& raw, int64_t head_dim) {
  RotaryConfig c;
  c.dim = head_dim;
  c.base = raw.get_double("rope_theta").value_or(10000.0);
  c.max_position_embeddings = raw.get_int("max_position_embeddings").value_or(2048);
  if (auto scaling = raw.get_object("rope_scaling")) {
    std::string type = scaling->get_string("type").value_or("");
    if (type == "linear") c.scaling = Scaling::Linear;
    else if (type == "dynamic") c.scaling = Scaling::Dynamic;
    else raw.fail("rope_scaling", "type '" + type + "' is not supported (supported: linear, dynamic)");
    auto factor = scaling->get_double("factor");
    if (!factor || *factor < 1.0) raw.fail("rope_scaling", "needs a factor >= 1");
    c.factor = *factor;
  }
  return c;
}

RotaryEmbedding::RotaryEmbedding(const RotaryConfig& c) : config(c) {
  // 1 / base^(arange(0, dim, 2) / dim), in float32 like LlamaRotaryEmbedding.__init__
  exponents = torch::arange(0, c.dim, 2).to(torch::kFloat) / static_cast<double>(c.dim);
  inv_freq = 1.0 / torch::pow(c.base, exponents);
}

std::pair<torch::Tensor, torch::Tensor> RotaryEmbedding::cos_sin(const torch::Tensor& position_ids,
                                                                 const torch::Tensor& attention_mask) const {
  auto t = position_ids.to(torch::kFloat);
  torch::Tensor freq = inv_freq;  // [dim/2]
  if (config.scaling == RotaryConfig::Scaling::Linear) t = t / config.factor;
  if (config.scaling == RotaryConfig::Scaling::Dynamic) {
    // LlamaDynamicNTKScalingRotaryEmbedding: past max_position_embeddings the base grows with the total length.
    const double d = static_cast<double>(config.dim);
    auto total = torch::ones_like(attention_mask).sum(-1, true).to(torch::kFloat).unsqueeze(-1);  // [B, 1, 1]
    auto scaled = config.base * torch::pow(total * (config.factor / config.max_position_embeddings) -
                                               (config.factor - 1.0), d / (d - 2.0));
    auto base = torch::where(total.gt(static_cast<double>(config.max_position_embeddings)), scaled,
                             torch::full_like(scaled, config.base));
    freq = torch::reciprocal(torch::pow(base, exponents));  // [B, 1, dim/2]
  }
  auto freqs = t.unsqueeze(-1) * freq;  // [B, S, dim/2]
  auto emb = torch::cat({freqs, freqs}, -1);
  return {emb.cos().unsqueeze(1), emb.sin().unsqueeze(1)};
}

torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;  // head_dim is a static size
  auto x1 = x.slice(-1, 0, half), x2 = x.slice(-1, half);
  auto rotated = torch::cat({-x2, x1}, -1);
  return x * cos + rotated * sin;
}

}  // namespace hf2onnx::layers
