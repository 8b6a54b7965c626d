// Rotary position embeddings as transformers' LlamaRotaryEmbedding (v4.32) and its linear and dynamic-NTK
// scaled variants, computed from position_ids (and, for dynamic scaling, the total length) at run time.
#pragma once
#include <torch/torch.h>

#include "hf/config.h"

namespace hf2onnx::layers {

struct RotaryConfig {
  enum class Scaling { None, Linear, Dynamic };
  int64_t dim = 0;                      // rotated dims (head_dim)
  double base = 10000.0;                // rope_theta
  int64_t max_position_embeddings = 2048;
  Scaling scaling = Scaling::None;      // rope_scaling.type
  double factor = 1.0;                  // rope_scaling.factor
  // rope_theta and rope_scaling from a config; an unknown scaling type is an error naming the key.
  static RotaryConfig from(const hf::Config& raw, int64_t head_dim);
};

struct RotaryEmbedding {
  explicit RotaryEmbedding(const RotaryConfig& c);
  // cos, sin: [B, 1, S, dim] for position_ids [B, S]; `attention_mask` [B, T] gives the total length
  // that dynamic scaling depends on.
  std::pair<torch::Tensor, torch::Tensor> cos_sin(const torch::Tensor& position_ids,
                                                  const torch::Tensor& attention_mask) const;
  RotaryConfig config;
  torch::Tensor inv_freq;   // [dim / 2], computed as transformers computes it (float32)
  torch::Tensor exponents;  // arange(0, dim, 2) / dim, for dynamic scaling's per-call base
};

// x * cos + rotate_half(x) * sin, with rotate_half(x) = cat(-x[..., d/2:], x[..., :d/2]).
torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

}  // namespace hf2onnx::layers
