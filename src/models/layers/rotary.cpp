#include "models/layers/rotary.h"

#include <cmath>

#include "hf2onnx/error.h"

namespace hf2onnx::layers {

RotaryConfig RotaryConfig::from(const hf::Config& raw, int64_t head_dim, int64_t default_max_positions, bool phi3) {
  RotaryConfig c;
  c.dim = head_dim;
  c.base = raw.get_double("rope_theta").value_or(10000.0);
  c.max_position_embeddings = raw.get_int("max_position_embeddings").value_or(default_max_positions);
  auto scaling = raw.get_object("rope_scaling");
  if (!scaling) return c;
  // 4.44 reads rope_type, falling back to type (older configs).
  std::string type = scaling->get_string("rope_type").value_or(scaling->get_string("type").value_or(""));
  if (phi3 && (type == "su" || type == "yarn")) type = "longrope";  // Phi3Config rewrites both
  if (type == "default") return c;
  if (type == "linear") c.scaling = Scaling::Linear;
  else if (type == "dynamic") c.scaling = Scaling::Dynamic;
  else if (type == "llama3") c.scaling = Scaling::Llama3;
  else if (type == "longrope" && phi3) c.scaling = Scaling::LongRope;
  else
    raw.fail("rope_scaling", "type '" + type + "' is not supported (supported: default, linear, dynamic, llama3" +
                                 std::string(phi3 ? ", longrope / su / yarn" : "") + ")");
  if (c.scaling == Scaling::LongRope) {
    c.original_max_position_embeddings =
        raw.get_int("original_max_position_embeddings").value_or(c.max_position_embeddings);
    c.short_factor = scaling->get_doubles("short_factor");
    c.long_factor = scaling->get_doubles("long_factor");
    if (c.short_factor.size() != static_cast<size_t>(head_dim / 2) || c.long_factor.size() != static_cast<size_t>(head_dim / 2))
      raw.fail("rope_scaling", "short_factor and long_factor need head_dim / 2 = " + std::to_string(head_dim / 2) + " values");
    // Phi3LongRoPEScaledRotaryEmbedding: scale = max_position_embeddings / original_max_position_embeddings.
    const double scale = static_cast<double>(c.max_position_embeddings) / static_cast<double>(c.original_max_position_embeddings);
    c.attention_factor = scale <= 1.0 ? 1.0
                                      : std::sqrt(1.0 + std::log(scale) / std::log(static_cast<double>(c.original_max_position_embeddings)));
    return c;
  }
  auto factor = scaling->get_double("factor");
  if (!factor || *factor < 1.0) raw.fail("rope_scaling", "needs a factor >= 1");
  c.factor = *factor;
  if (c.scaling == Scaling::Llama3) {
    c.low_freq_factor = scaling->get_double("low_freq_factor").value_or(-1);
    c.high_freq_factor = scaling->get_double("high_freq_factor").value_or(-1);
    c.original_max_position_embeddings = scaling->get_int("original_max_position_embeddings").value_or(0);
    if (c.low_freq_factor <= 0 || c.high_freq_factor <= c.low_freq_factor || c.original_max_position_embeddings <= 0)
      raw.fail("rope_scaling", "llama3 needs 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings");
  }
  return c;
}

std::string RotaryConfig::per_call_frequencies() const {
  if (scaling == Scaling::Dynamic)
    return "dynamic NTK rope scaling computes its base from each call's total length (so does transformers)";
  if (scaling == Scaling::LongRope)
    return "longrope takes short or long factors from each call's largest position (so does transformers)";
  return "";
}

RotaryConfig RotaryConfig::unscaled(const hf::Config& raw, int64_t head_dim, int64_t default_max_positions) {
  RotaryConfig c;
  c.dim = head_dim;
  c.base = raw.get_double("rope_theta").value_or(10000.0);
  c.max_position_embeddings = raw.get_int("max_position_embeddings").value_or(default_max_positions);
  return c;
}

RotaryEmbedding::RotaryEmbedding(const RotaryConfig& c) : config(c) {
  // 1 / base^(arange(0, dim, 2) / dim), in float32 like LlamaRotaryEmbedding.__init__
  exponents = torch::arange(0, c.dim, 2).to(torch::kFloat) / static_cast<double>(c.dim);
  inv_freq = 1.0 / torch::pow(c.base, exponents);
  if (c.scaling == RotaryConfig::Scaling::Llama3) {
    // modeling_rope_utils._compute_llama3_parameters (4.44), element by element in float32 as it runs:
    // high frequencies kept, low ones divided by factor, the band between interpolated.
    const double old_len = static_cast<double>(c.original_max_position_embeddings);
    const double low_wavelen = old_len / c.low_freq_factor, high_wavelen = old_len / c.high_freq_factor;
    std::vector<torch::Tensor> scaled;
    for (int64_t i = 0; i < inv_freq.size(0); ++i) {
      torch::Tensor freq = inv_freq[i];
      torch::Tensor wavelen = 2 * M_PI / freq;
      if (wavelen.item<float>() < high_wavelen) {
        scaled.push_back(freq);
      } else if (wavelen.item<float>() > low_wavelen) {
        scaled.push_back(freq / c.factor);
      } else {
        torch::Tensor smooth = (old_len / wavelen - c.low_freq_factor) / (c.high_freq_factor - c.low_freq_factor);
        scaled.push_back((1 - smooth) * freq / c.factor + smooth * freq);
      }
    }
    inv_freq = torch::stack(scaled);
  }
  if (c.scaling == RotaryConfig::Scaling::LongRope) {
    // Phi3LongRoPEScaledRotaryEmbedding.forward: 1 / (ext_factors * base ** (arange(0, dim, 2) / dim))
    auto ext = [](const std::vector<double>& f) { return torch::tensor(f, torch::kDouble).to(torch::kFloat); };
    auto powers = torch::pow(c.base, exponents);
    inv_freq = 1.0 / (ext(c.short_factor) * powers);
    long_inv_freq = 1.0 / (ext(c.long_factor) * powers);
  }
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
  if (config.scaling == RotaryConfig::Scaling::LongRope) {
    // The factors of this call: long once the largest position id (of the whole batch) reaches
    // original_max_position_embeddings; keys already in the cache keep the rotation they were stored with.
    auto longest = position_ids.max().to(torch::kFloat) + 1.0;
    freq = torch::where(longest.gt(static_cast<double>(config.original_max_position_embeddings)), long_inv_freq, inv_freq);
  }
  auto freqs = t.unsqueeze(-1) * freq;  // [B, S, dim/2]
  auto emb = torch::cat({freqs, freqs}, -1);
  if (config.scaling == RotaryConfig::Scaling::LongRope && config.attention_factor != 1.0)
    return {(emb.cos() * config.attention_factor).unsqueeze(1), (emb.sin() * config.attention_factor).unsqueeze(1)};
  return {emb.cos().unsqueeze(1), emb.sin().unsqueeze(1)};
}

torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;  // head_dim is a static size
  auto x1 = x.slice(-1, 0, half), x2 = x.slice(-1, half);
  auto rotated = torch::cat({-x2, x1}, -1);
  return x * cos + rotated * sin;
}

}  // namespace hf2onnx::layers
