#include "models/layers/dynamic.h"

#include <limits>

namespace hf2onnx::layers {

torch::Tensor positions_like(const torch::Tensor& input_ids) {
  return torch::ones_like(input_ids).cumsum(-1) - 1;
}

torch::Tensor positions_skipping_padding(const torch::Tensor& input_ids, int64_t padding_idx) {
  auto mask = input_ids.ne(padding_idx).to(torch::kInt);
  auto incremental = mask.cumsum(1).to(torch::kInt) * mask;
  return incremental.to(torch::kLong) + padding_idx;
}

torch::Tensor split_heads(const torch::Tensor& x, int64_t heads, int64_t head_dim) {
  return x.unflatten(-1, {heads, head_dim}).transpose(1, 2);
}

torch::Tensor merge_heads(const torch::Tensor& x) { return x.transpose(1, 2).flatten(-2); }

torch::Tensor additive_padding_mask(const torch::Tensor& attention_mask) {
  auto mask = attention_mask.unsqueeze(1).unsqueeze(2).to(torch::kFloat);
  return torch::rsub(mask, 1.0) * std::numeric_limits<float>::lowest();
}

torch::Tensor upsample_nearest2x(const torch::Tensor& x) {
  return x.unsqueeze(3).unsqueeze(5).expand({-1, -1, -1, 2, -1, 2}).flatten(4, 5).flatten(2, 3);
}

torch::Tensor upsample_nearest_to(const torch::Tensor& x, const torch::Tensor& like) {
  // Source index floor(i / 2) of each target position i, as float (exact) truncated to int64.
  auto source = [](const torch::Tensor& line) {  // line: [N] of any values
    return ((torch::ones_like(line, torch::kFloat).cumsum(0) - 1) * 0.5).to(torch::kLong);
  };
  auto plane = like.select(0, 0).select(0, 0);  // [H', W']
  return x.index_select(2, source(plane.select(1, 0))).index_select(3, source(plane.select(0, 0)));
}

}  // namespace hf2onnx::layers

namespace hf2onnx::layers {

torch::Tensor key_positions(const torch::Tensor& attention_mask) { return positions_like(attention_mask); }

torch::Tensor query_positions(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  auto total = torch::ones_like(attention_mask).sum(-1, /*keepdim=*/true);  // [B, 1] = T
  auto fresh = torch::ones_like(input_ids).sum(-1, /*keepdim=*/true);       // [B, 1] = S
  return positions_like(input_ids) + (total - fresh);
}

torch::Tensor causal_visible(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  auto k = key_positions(attention_mask).unsqueeze(1).unsqueeze(2);        // [B, 1, 1, T]
  auto q = query_positions(input_ids, attention_mask).unsqueeze(1).unsqueeze(-1);  // [B, 1, S, 1]
  return k.le(q);
}

torch::Tensor decoder_visible(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                              int64_t sliding_window) {
  auto visible = causal_visible(input_ids, attention_mask).logical_and(attention_mask.ne(0).unsqueeze(1).unsqueeze(2));
  if (sliding_window > 0) {
    auto k = key_positions(attention_mask).unsqueeze(1).unsqueeze(2);
    auto q = query_positions(input_ids, attention_mask).unsqueeze(1).unsqueeze(-1);
    visible = visible.logical_and(k.gt(q - sliding_window));
  }
  return visible;
}

torch::Tensor repeat_kv(const torch::Tensor& x, int64_t n_rep) {
  if (n_rep == 1) return x;
  return x.unsqueeze(2).expand({-1, -1, n_rep, -1, -1}).flatten(1, 2);
}

}  // namespace hf2onnx::layers
