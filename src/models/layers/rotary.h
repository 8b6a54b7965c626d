// Rotary position embeddings as transformers' LlamaRotaryEmbedding (v4.32) and its scaled variants: linear and
// dynamic NTK (4.32), llama3 (4.44: rescaled frequencies, fixed) and Phi-3's longrope (4.44: short or long
// factors chosen per call from the largest position id, cos/sin scaled by the attention factor), computed
// from position_ids (and, for dynamic scaling, the total length) at run time.
#pragma once
#include <vector>

#include <torch/torch.h>

#include "hf/config.h"

namespace hf2onnx::layers {

struct RotaryConfig {
  enum class Scaling { None, Linear, Dynamic, Llama3, LongRope };
  int64_t dim = 0;                      // rotated dims (head_dim)
  double base = 10000.0;                // rope_theta
  int64_t max_position_embeddings = 2048;
  Scaling scaling = Scaling::None;      // rope_scaling.rope_type (or .type)
  double factor = 1.0;                  // rope_scaling.factor
  // llama3: rope_scaling.low_freq_factor, high_freq_factor, original_max_position_embeddings.
  double low_freq_factor = 1.0, high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 0;
  // longrope: per-frequency divisors below and above original_max_position_embeddings, and the factor
  // cos and sin are multiplied by.
  std::vector<double> short_factor, long_factor;
  double attention_factor = 1.0;
  // rope_theta and rope_scaling from a config; an unknown scaling type is an error naming the key.
  // `phi3`: Phi3Config's reading (types su and yarn mean longrope; original_max_position_embeddings is a
  // top-level key).
  static RotaryConfig from(const hf::Config& raw, int64_t head_dim, int64_t default_max_positions = 2048,
                           bool phi3 = false);
  // rope_theta only: families whose rotary embedding never reads rope_scaling (Mistral, Qwen2, Gemma in 4.44).
  static RotaryConfig unscaled(const hf::Config& raw, int64_t head_dim, int64_t default_max_positions);
  // Why a prefill and cached steps may give other logits than one call on the same tokens ("" when they cannot):
  // scalings that choose their frequencies from each call's length, as transformers does.
  std::string per_call_frequencies() const;
};

struct RotaryEmbedding {
  explicit RotaryEmbedding(const RotaryConfig& c);
  // cos, sin: [B, 1, S, dim] for position_ids [B, S]; `attention_mask` [B, T] gives the total length
  // that dynamic scaling depends on.
  std::pair<torch::Tensor, torch::Tensor> cos_sin(const torch::Tensor& position_ids,
                                                  const torch::Tensor& attention_mask) const;
  RotaryConfig config;
  torch::Tensor inv_freq;   // [dim / 2], computed as transformers computes it (float32); llama3: rescaled
  torch::Tensor long_inv_freq;  // longrope: inv_freq with the long factors (inv_freq has the short ones)
  torch::Tensor exponents;  // arange(0, dim, 2) / dim, for dynamic scaling's per-call base
};

// x * cos + rotate_half(x) * sin, with rotate_half(x) = cat(-x[..., d/2:], x[..., :d/2]).
torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

}  // namespace hf2onnx::layers
