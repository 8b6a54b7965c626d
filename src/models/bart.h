// BART-family building blocks, shared the way transformers shares them ("Copied from
// transformers.models.bart.modeling_bart"): mBART, Marian and Whisper reuse the attention and the
// encoder/decoder layers. Module and member names are the HF names.
#pragma once
#include <torch/torch.h>

#include "models/layers/common.h"
#include "models/layers/seq2seq.h"

namespace hf2onnx::bart {

// modeling_bart.BartAttention: q is scaled by head_dim^-0.5 after its projection; masks are additive.
struct BartAttentionImpl : torch::nn::Module {
  BartAttentionImpl(int64_t d_model, int64_t heads, bool k_bias = true);  // Whisper: k_proj without bias
  // Encoder self-attention.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& additive_mask);
  // Decoder self-attention: `cache` holds the past (or nothing) and gets past + new.
  torch::Tensor self_with_cache(const torch::Tensor& x, layers::KVCache& cache, const torch::Tensor& additive_mask);
  // Cross-attention: keys/values from `cache` when given, else projected from `encoder_states` into it.
  torch::Tensor cross(const torch::Tensor& x, const torch::Tensor& encoder_states, layers::KVCache& cache,
                      const torch::Tensor& additive_mask);

  torch::Tensor attend(const torch::Tensor& x, const torch::Tensor& k, const torch::Tensor& v,
                       const torch::Tensor& additive_mask);
  layers::Linear k_proj{nullptr}, v_proj{nullptr}, q_proj{nullptr}, out_proj{nullptr};
  int64_t heads, head_dim;
};
TORCH_MODULE(BartAttention);

struct LayerConfig {
  int64_t d_model, heads, ffn_dim;
  layers::Activation activation;
  bool pre_layer_norm;  // mBART and Whisper normalise before each block; BART and Marian after
  bool k_bias = true;
};

// The sizes every BART-family config class has (BartConfig, MBartConfig, MarianConfig, WhisperConfig), resolved
// with that class's defaults, and the checks they share (tie_encoder_decoder is refused: not implemented).
struct Sizes {
  int64_t vocab_size, d_model, encoder_layers, decoder_layers, encoder_heads, decoder_heads, encoder_ffn_dim,
      decoder_ffn_dim;
  static Sizes from(const hf::Config& raw, const Sizes& defaults);
  LayerConfig layer(const hf::Config& raw, bool decoder, bool pre_layer_norm, bool k_bias = true) const;
  // Decoder layers, heads and head dim, d_model and the vocabularies, for layers::set_seq2seq_graphs.
  layers::Seq2SeqSpec seq2seq_spec() const;
};

// modeling_bart.BartEncoderLayer / modeling_mbart.MBartEncoderLayer (pre_layer_norm)
struct BartEncoderLayerImpl : torch::nn::Module {
  explicit BartEncoderLayerImpl(const LayerConfig& c);
  torch::Tensor forward(torch::Tensor h, const torch::Tensor& additive_mask);
  BartAttention self_attn{nullptr};
  layers::LayerNorm self_attn_layer_norm{nullptr}, final_layer_norm{nullptr};
  layers::Linear fc1{nullptr}, fc2{nullptr};
  LayerConfig c;
};
TORCH_MODULE(BartEncoderLayer);

// modeling_bart.BartDecoderLayer / modeling_mbart.MBartDecoderLayer (pre_layer_norm)
struct BartDecoderLayerImpl : torch::nn::Module {
  explicit BartDecoderLayerImpl(const LayerConfig& c);
  torch::Tensor forward(torch::Tensor h, const torch::Tensor& causal_mask, const torch::Tensor& encoder_states,
                        const torch::Tensor& encoder_mask, layers::Seq2SeqCache& cache);
  BartAttention self_attn{nullptr}, encoder_attn{nullptr};
  layers::LayerNorm self_attn_layer_norm{nullptr}, encoder_attn_layer_norm{nullptr}, final_layer_norm{nullptr};
  layers::Linear fc1{nullptr}, fc2{nullptr};
  LayerConfig c;
};
TORCH_MODULE(BartDecoderLayer);

}  // namespace hf2onnx::bart
