// BART-family layers (models/bart.h) — modeling_bart.py and modeling_mbart.py of transformers 4.32.
#include <cmath>

#include "models/bart.h"
#include "models/layers/dynamic.h"

namespace hf2onnx::bart {

BartAttentionImpl::BartAttentionImpl(int64_t d_model, int64_t heads_, bool k_bias)
    : heads(heads_), head_dim(d_model / heads_) {
  k_proj = register_module("k_proj", layers::Linear(d_model, d_model, k_bias));
  v_proj = register_module("v_proj", layers::Linear(d_model, d_model));
  q_proj = register_module("q_proj", layers::Linear(d_model, d_model));
  out_proj = register_module("out_proj", layers::Linear(d_model, d_model));
}

torch::Tensor BartAttentionImpl::attend(const torch::Tensor& x, const torch::Tensor& k, const torch::Tensor& v,
                                        const torch::Tensor& additive_mask) {
  auto q = layers::split_heads(q_proj(x) * std::pow(static_cast<double>(head_dim), -0.5), heads, head_dim);
  auto w = torch::matmul(q, k.transpose(-1, -2));
  if (additive_mask.defined()) w = w + additive_mask;
  return out_proj(layers::merge_heads(torch::matmul(torch::softmax(w, -1), v)));
}

torch::Tensor BartAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& additive_mask) {
  return attend(x, layers::split_heads(k_proj(x), heads, head_dim), layers::split_heads(v_proj(x), heads, head_dim),
                additive_mask);
}

torch::Tensor BartAttentionImpl::self_with_cache(const torch::Tensor& x, layers::KVCache& cache,
                                                 const torch::Tensor& additive_mask) {
  auto k = layers::split_heads(k_proj(x), heads, head_dim), v = layers::split_heads(v_proj(x), heads, head_dim);
  cache.key = cache.key.defined() ? torch::cat({cache.key, k}, 2) : k;
  cache.value = cache.value.defined() ? torch::cat({cache.value, v}, 2) : v;
  return attend(x, cache.key, cache.value, additive_mask);
}

torch::Tensor BartAttentionImpl::cross(const torch::Tensor& x, const torch::Tensor& encoder_states,
                                       layers::KVCache& cache, const torch::Tensor& additive_mask) {
  if (!cache.key.defined()) {
    cache.key = layers::split_heads(k_proj(encoder_states), heads, head_dim);
    cache.value = layers::split_heads(v_proj(encoder_states), heads, head_dim);
  }
  return attend(x, cache.key, cache.value, additive_mask);
}

BartEncoderLayerImpl::BartEncoderLayerImpl(const LayerConfig& c_) : c(c_) {
  self_attn = register_module("self_attn", BartAttention(c.d_model, c.heads, c.k_bias));
  self_attn_layer_norm = register_module("self_attn_layer_norm", layers::LayerNorm(c.d_model, 1e-5));
  fc1 = register_module("fc1", layers::Linear(c.d_model, c.ffn_dim));
  fc2 = register_module("fc2", layers::Linear(c.ffn_dim, c.d_model));
  final_layer_norm = register_module("final_layer_norm", layers::LayerNorm(c.d_model, 1e-5));
}

torch::Tensor BartEncoderLayerImpl::forward(torch::Tensor h, const torch::Tensor& additive_mask) {
  auto mlp = [&](const torch::Tensor& x) { return fc2(layers::activate(c.activation, fc1(x))); };
  if (c.pre_layer_norm) {
    h = h + self_attn(self_attn_layer_norm(h), additive_mask);
    return h + mlp(final_layer_norm(h));
  }
  h = self_attn_layer_norm(h + self_attn(h, additive_mask));
  return final_layer_norm(h + mlp(h));
}

BartDecoderLayerImpl::BartDecoderLayerImpl(const LayerConfig& c_) : c(c_) {
  self_attn = register_module("self_attn", BartAttention(c.d_model, c.heads, c.k_bias));
  self_attn_layer_norm = register_module("self_attn_layer_norm", layers::LayerNorm(c.d_model, 1e-5));
  encoder_attn = register_module("encoder_attn", BartAttention(c.d_model, c.heads, c.k_bias));
  encoder_attn_layer_norm = register_module("encoder_attn_layer_norm", layers::LayerNorm(c.d_model, 1e-5));
  fc1 = register_module("fc1", layers::Linear(c.d_model, c.ffn_dim));
  fc2 = register_module("fc2", layers::Linear(c.ffn_dim, c.d_model));
  final_layer_norm = register_module("final_layer_norm", layers::LayerNorm(c.d_model, 1e-5));
}

torch::Tensor BartDecoderLayerImpl::forward(torch::Tensor h, const torch::Tensor& causal, const torch::Tensor& encoder_states,
                                            const torch::Tensor& encoder_mask, layers::Seq2SeqCache& cache) {
  auto mlp = [&](const torch::Tensor& x) { return fc2(layers::activate(c.activation, fc1(x))); };
  if (c.pre_layer_norm) {
    h = h + self_attn->self_with_cache(self_attn_layer_norm(h), cache.self, causal);
    h = h + encoder_attn->cross(encoder_attn_layer_norm(h), encoder_states, cache.cross, encoder_mask);
    return h + mlp(final_layer_norm(h));
  }
  h = self_attn_layer_norm(h + self_attn->self_with_cache(h, cache.self, causal));
  h = encoder_attn_layer_norm(h + encoder_attn->cross(h, encoder_states, cache.cross, encoder_mask));
  return final_layer_norm(h + mlp(h));
}

Sizes Sizes::from(const hf::Config& raw, const Sizes& d) {
  Sizes s;
  s.vocab_size = raw.get_int("vocab_size").value_or(d.vocab_size);
  s.d_model = raw.get_int("d_model").value_or(d.d_model);
  s.encoder_layers = raw.get_count("encoder_layers").value_or(d.encoder_layers);
  s.decoder_layers = raw.get_count("decoder_layers").value_or(d.decoder_layers);
  s.encoder_heads = raw.get_int("encoder_attention_heads").value_or(d.encoder_heads);
  s.decoder_heads = raw.get_int("decoder_attention_heads").value_or(d.decoder_heads);
  s.encoder_ffn_dim = raw.get_int("encoder_ffn_dim").value_or(d.encoder_ffn_dim);
  s.decoder_ffn_dim = raw.get_int("decoder_ffn_dim").value_or(d.decoder_ffn_dim);
  if (raw.get_bool("tie_encoder_decoder").value_or(false)) raw.fail("tie_encoder_decoder", "= true is not supported");
  if (s.encoder_heads <= 0 || s.d_model % s.encoder_heads != 0)
    raw.fail("d_model", "must be a multiple of encoder_attention_heads");
  if (s.decoder_heads <= 0 || s.d_model % s.decoder_heads != 0)
    raw.fail("d_model", "must be a multiple of decoder_attention_heads");
  return s;
}

LayerConfig Sizes::layer(const hf::Config& raw, bool decoder, bool pre_layer_norm, bool k_bias) const {
  return {d_model, decoder ? decoder_heads : encoder_heads, decoder ? decoder_ffn_dim : encoder_ffn_dim,
          layers::activation_from_config(raw, "activation_function", "gelu"), pre_layer_norm, k_bias};
}

layers::Seq2SeqSpec Sizes::seq2seq_spec() const {
  layers::Seq2SeqSpec spec;
  spec.decoder_layers = decoder_layers;
  spec.decoder_heads = decoder_heads;
  spec.head_dim = d_model / decoder_heads;
  spec.d_model = d_model;
  spec.encoder_vocab_size = spec.decoder_vocab_size = vocab_size;
  return spec;
}

}  // namespace hf2onnx::bart
