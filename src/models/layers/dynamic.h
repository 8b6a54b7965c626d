// Shape-agnostic building blocks (DESIGN.md §2). The C++ tracer records every int as a constant, so
// everything here derives sizes from tensors, never from .size(). Each helper is unit-tested at
// shapes other than the trace's (tests/models/dynamic_test.cpp).
#pragma once
#include <torch/torch.h>

namespace hf2onnx::layers {

// [B, S] int64 → [B, S] positions 0..S-1 (what transformers uses when no position_ids are given).
torch::Tensor positions_like(const torch::Tensor& input_ids);

// RoBERTa's create_position_ids_from_input_ids: padding tokens get `padding_idx`, the others
// padding_idx + 1 + their index among the non-padding tokens.
torch::Tensor positions_skipping_padding(const torch::Tensor& input_ids, int64_t padding_idx);

// [B, S, H*D] → [B, H, S, D]
torch::Tensor split_heads(const torch::Tensor& x, int64_t heads, int64_t head_dim);
// [B, H, S, D] → [B, S, H*D]
torch::Tensor merge_heads(const torch::Tensor& x);

// [B, S] 1/0 mask → [B, 1, 1, S] additive float mask: 0 where attended, finfo(float).min where masked
// (transformers' get_extended_attention_mask for encoders).
torch::Tensor additive_padding_mask(const torch::Tensor& attention_mask);

// --- images [B, C, H, W]

// F.interpolate(x, scale_factor=2, mode="nearest"): each pixel repeated 2×2 (Unsqueeze + Expand + Reshape).
torch::Tensor upsample_nearest2x(const torch::Tensor& x);
// F.interpolate(x, size=like.shape[2:], mode="nearest"): row i reads floor(i · H / H') for H' = like's height,
// the same for columns, with the sizes read at run time (two Gathers). For H' ∈ {2H - 1, 2H} this is
// floor(i / 2), which is what it computes: a UNet upsamples each level to its skip connection's size, which
// the stride-2 convs made ceil(H' / 2) (diffusers' upsample_size for sizes not divisible by 2^levels; for the
// others the same values as ×2).
torch::Tensor upsample_nearest_to(const torch::Tensor& x, const torch::Tensor& like);

}  // namespace hf2onnx::layers

namespace hf2onnx::layers {

// --- decoders with a KV cache: `attention_mask` covers past + new tokens ([B, T]), `input_ids` the new ones ([B, S]).

// [B, T] positions 0..T-1 of the keys (past and new).
torch::Tensor key_positions(const torch::Tensor& attention_mask);
// [B, S] absolute positions of the new tokens: past_length .. T-1, with past_length = T - S taken from
// the tensors' sizes at run time.
torch::Tensor query_positions(const torch::Tensor& input_ids, const torch::Tensor& attention_mask);
// [B, 1, S, T] bool: key j is visible to new token i (causal: j <= past_length + i).
torch::Tensor causal_visible(const torch::Tensor& input_ids, const torch::Tensor& attention_mask);
// causal_visible, and the key is not padding, and (sliding_window > 0) j > past_length + i - sliding_window.
torch::Tensor decoder_visible(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                              int64_t sliding_window = 0);
// [B, KV, T, D] → [B, KV * n_rep, T, D] (transformers' repeat_kv for grouped-query attention).
torch::Tensor repeat_kv(const torch::Tensor& x, int64_t n_rep);

}  // namespace hf2onnx::layers
