#include "models/layers/diffusion.h"

#include <cmath>

#include "models/layers/dynamic.h"

namespace hf2onnx::layers {

ResnetBlock2DImpl::ResnetBlock2DImpl(int64_t in, int64_t out, int64_t temb_channels, int64_t groups, double eps,
                                     double output_scale_factor)
    : output_scale_factor(output_scale_factor) {
  norm1 = register_module("norm1", GroupNorm(groups, in, eps));
  conv1 = register_module("conv1", Conv2d(in, out, 3, 1, 1));
  if (temb_channels > 0) time_emb_proj = register_module("time_emb_proj", Linear(temb_channels, out));
  norm2 = register_module("norm2", GroupNorm(groups, out, eps));
  conv2 = register_module("conv2", Conv2d(out, out, 3, 1, 1));
  if (in != out) conv_shortcut = register_module("conv_shortcut", Conv2d(in, out, 1));
}

torch::Tensor ResnetBlock2DImpl::forward(const torch::Tensor& x, const torch::Tensor& temb) {
  auto h = conv1(torch::silu(norm1(x)));
  if (time_emb_proj) h = h + time_emb_proj(torch::silu(temb)).unsqueeze(-1).unsqueeze(-1);
  h = conv2(torch::silu(norm2(h)));
  auto out = (conv_shortcut ? conv_shortcut(x) : x) + h;
  return output_scale_factor == 1.0 ? out : out / output_scale_factor;
}

Downsample2DImpl::Downsample2DImpl(int64_t channels, int64_t padding) : padding(padding) {
  conv = register_module("conv", Conv2d(channels, channels, 3, 2, padding));
}

torch::Tensor Downsample2DImpl::forward(const torch::Tensor& x) {
  return conv(padding == 0 ? torch::constant_pad_nd(x, {0, 1, 0, 1}, 0) : x);
}

Upsample2DImpl::Upsample2DImpl(int64_t channels) { conv = register_module("conv", Conv2d(channels, channels, 3, 1, 1)); }

torch::Tensor Upsample2DImpl::forward(const torch::Tensor& x, const torch::Tensor& like) {
  return conv(like.defined() ? upsample_nearest_to(x, like) : upsample_nearest2x(x));
}

CrossAttentionImpl::CrossAttentionImpl(int64_t query_dim, int64_t context_dim, int64_t heads, int64_t head_dim,
                                       bool qkv_bias)
    : heads(heads), head_dim(head_dim) {
  const int64_t inner = heads * head_dim;
  to_q = register_module("to_q", Linear(query_dim, inner, qkv_bias));
  to_k = register_module("to_k", Linear(context_dim, inner, qkv_bias));
  to_v = register_module("to_v", Linear(context_dim, inner, qkv_bias));
  to_out = register_module("to_out", torch::nn::Sequential(Linear(inner, query_dim), torch::nn::Dropout(0.0)));
}

torch::Tensor CrossAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  const auto& ctx = context.defined() ? context : x;
  auto q = split_heads(to_q(x), heads, head_dim);
  auto k = split_heads(to_k(ctx), heads, head_dim);
  auto v = split_heads(to_v(ctx), heads, head_dim);
  auto scores = torch::matmul(q, k.transpose(-1, -2)) * (1.0 / std::sqrt(static_cast<double>(head_dim)));
  auto o = merge_heads(torch::matmul(torch::softmax(scores, -1), v));
  return to_out[0]->as<LinearImpl>()->forward(o);  // to_out[1] is dropout, a no-op in eval
}

torch::Tensor image_to_tokens(const torch::Tensor& x) { return x.flatten(2).transpose(1, 2); }

torch::Tensor tokens_to_image(const torch::Tensor& tokens, const torch::Tensor& like) {
  return tokens.transpose(1, 2).reshape_as(like);
}

}  // namespace hf2onnx::layers
