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

}  // namespace hf2onnx::layers
