// Blocks shared by the diffusers models (UNet2DConditionModel in unet.cpp, AutoencoderKL in vae.cpp), mirroring
// diffusers 0.30.3 (models/resnet.py, models/downsampling.py, models/upsampling.py, models/attention_processor.py).
// Module names are the checkpoint keys. Activations are SiLU (the only act_fn the builders accept).
#pragma once
#include <torch/torch.h>

#include "models/layers/common.h"

namespace hf2onnx::layers {

// ResnetBlock2D ("default" time_embedding_norm):
//   h = conv1(silu(norm1(x))); h += time_emb_proj(silu(temb))[:, :, None, None]; h = conv2(silu(norm2(h)))
//   out = (conv_shortcut(x) or x + h) / output_scale_factor
// conv_shortcut (1×1) exists when in ≠ out; time_emb_proj when temb_channels > 0 (the VAE has none).
struct ResnetBlock2DImpl : torch::nn::Module {
  ResnetBlock2DImpl(int64_t in, int64_t out, int64_t temb_channels, int64_t groups, double eps,
                    double output_scale_factor = 1.0);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb = {});
  GroupNorm norm1{nullptr}, norm2{nullptr};
  Conv2d conv1{nullptr}, conv2{nullptr}, conv_shortcut{nullptr};
  Linear time_emb_proj{nullptr};
  double output_scale_factor;
};
TORCH_MODULE(ResnetBlock2D);

// Downsample2D(use_conv=True): a 3×3 stride-2 conv (key "conv"). padding 1: ceil(H / 2) (the UNet); padding 0:
// F.pad(x, (0, 1, 0, 1)) first, one zero column right and one row below, then floor(H / 2) (the VAE encoder).
struct Downsample2DImpl : torch::nn::Module {
  Downsample2DImpl(int64_t channels, int64_t padding);
  torch::Tensor forward(const torch::Tensor& x);
  Conv2d conv{nullptr};
  int64_t padding;
};
TORCH_MODULE(Downsample2D);

// Upsample2D(use_conv=True): nearest ×2, or to `like`'s height and width when given (the UNet's upsample_size),
// then a 3×3 conv (key "conv").
struct Upsample2DImpl : torch::nn::Module {
  explicit Upsample2DImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& like = {});
  Conv2d conv{nullptr};
};
TORCH_MODULE(Upsample2D);

// diffusers' Attention as AttnProcessor runs it, on [B, S, query_dim] tokens (context [B, T, context_dim], or the
// tokens themselves): heads × head_dim, scores (q kᵀ) · head_dim^-0.5, softmax, to_out.0. q/k/v have biases
// only when `qkv_bias` (the UNet's transformers: none; the VAE: all). upcast_attention / upcast_softmax compute
// in float32, which the float32 export does anyway.
struct CrossAttentionImpl : torch::nn::Module {
  CrossAttentionImpl(int64_t query_dim, int64_t context_dim, int64_t heads, int64_t head_dim, bool qkv_bias);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context = {});
  Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::Sequential to_out{nullptr};  // [0] = Linear(heads·head_dim, query_dim), [1] = Dropout
  int64_t heads, head_dim;
};
TORCH_MODULE(CrossAttention);

// [B, C, H, W] → [B, H·W, C] tokens, and back to the shape of `like` ([B, C, H, W]).
torch::Tensor image_to_tokens(const torch::Tensor& x);
torch::Tensor tokens_to_image(const torch::Tensor& tokens, const torch::Tensor& like);

}  // namespace hf2onnx::layers
