// Llama — mirrors transformers/models/llama/modeling_llama.py (v4.32; rope_scaling llama3 as 4.44):
// LlamaModel and LlamaForCausalLM with a KV cache, grouped-query attention, rotary embeddings. The modules
// are shared by the families transformers copies from Llama, each resolving its own config class into
// llama::Config (llama.h): Mistral (sliding window), Qwen2 (biases on q/k/v only), Gemma (explicit head_dim,
// RMSNorm with 1 + weight, scaled embeddings).
#include <cmath>
#include <limits>

#include "hf2onnx/error.h"
#include "models/builders.h"
#include "models/layers/common.h"
#include "models/layers/dynamic.h"
#include "models/layers/rotary.h"
#include "models/llama.h"
#include "models/model.h"

namespace hf2onnx::llama {

Config Config::from(const hf::Config& raw, const Defaults& d) {
  Config c;
  c.vocab_size = raw.get_int("vocab_size").value_or(d.vocab_size);
  c.hidden_size = raw.get_int("hidden_size").value_or(d.hidden_size);
  c.intermediate_size = raw.get_int("intermediate_size").value_or(d.intermediate_size);
  c.num_hidden_layers = raw.get_count("num_hidden_layers").value_or(d.num_hidden_layers);
  c.num_attention_heads = raw.get_int("num_attention_heads").value_or(d.num_attention_heads);
  c.num_key_value_heads = raw.get_int("num_key_value_heads").value_or(d.num_key_value_heads > 0 ? d.num_key_value_heads : c.num_attention_heads);
  c.rms_norm_eps = raw.get_double("rms_norm_eps").value_or(d.rms_norm_eps);
  c.hidden_act = layers::activation_from_config(raw, d.activation_key, d.activation);
  c.tie_word_embeddings = raw.get_bool("tie_word_embeddings").value_or(d.tie_word_embeddings);
  c.qkv_bias = c.o_bias = raw.get_bool("attention_bias").value_or(false);
  c.mlp_bias = raw.get_bool("mlp_bias").value_or(false);
  if (c.num_attention_heads <= 0) raw.fail("num_attention_heads", "must be positive");
  if (c.num_key_value_heads <= 0 || c.num_attention_heads % c.num_key_value_heads != 0)
    raw.fail("num_key_value_heads", "must divide num_attention_heads");
  if (d.explicit_head_dim && raw.has("head_dim")) {
    c.head_dim = *raw.get_int("head_dim");
  } else {
    if (c.hidden_size % c.num_attention_heads != 0) raw.fail("hidden_size", "must be a multiple of num_attention_heads");
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.head_dim <= 0 || c.head_dim % 2 != 0) raw.fail("head_dim", "must be a positive even number");
  c.rope = d.reads_rope_scaling ? layers::RotaryConfig::from(raw, c.head_dim, d.max_position_embeddings, d.phi3_rope)
                                : layers::RotaryConfig::unscaled(raw, c.head_dim, d.max_position_embeddings);
  return c;
}

namespace {

using layers::KVCache;

// modeling_llama.LlamaAttention
struct LlamaAttentionImpl : torch::nn::Module {
  explicit LlamaAttentionImpl(const Config& c)
      : heads(c.num_attention_heads), kv_heads(c.num_key_value_heads), head_dim(c.head_dim) {
    // Biases: Llama's attention_bias sets all four; Qwen2 has them on q/k/v only.
    q_proj = register_module("q_proj", layers::Linear(c.hidden_size, heads * head_dim, c.qkv_bias));
    k_proj = register_module("k_proj", layers::Linear(c.hidden_size, kv_heads * head_dim, c.qkv_bias));
    v_proj = register_module("v_proj", layers::Linear(c.hidden_size, kv_heads * head_dim, c.qkv_bias));
    o_proj = register_module("o_proj", layers::Linear(heads * head_dim, c.hidden_size, c.o_bias));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, KVCache& cache,
                        const torch::Tensor& visible) {
    auto q = layers::apply_rotary(layers::split_heads(q_proj(x), heads, head_dim), cos, sin);
    auto k = layers::apply_rotary(layers::split_heads(k_proj(x), kv_heads, head_dim), cos, sin);
    auto v = layers::split_heads(v_proj(x), kv_heads, head_dim);
    cache.key = torch::cat({cache.key, k}, 2);  // the cache holds kv_heads, after the rotation
    cache.value = torch::cat({cache.value, v}, 2);
    auto keys = layers::repeat_kv(cache.key, heads / kv_heads);
    auto values = layers::repeat_kv(cache.value, heads / kv_heads);
    auto w = torch::matmul(q, keys.transpose(2, 3)) / std::sqrt(static_cast<double>(head_dim));
    // transformers adds a finfo.min mask and clamps at finfo.min: masked scores are exactly finfo.min.
    w = torch::where(visible, w, torch::full_like(w, std::numeric_limits<float>::lowest()));
    w = torch::softmax(w, -1, torch::kFloat);
    return o_proj(layers::merge_heads(torch::matmul(w, values)));
  }
  int64_t heads, kv_heads, head_dim;
  layers::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
};
TORCH_MODULE(LlamaAttention);

// modeling_llama.LlamaMLP: down(act(gate(x)) * up(x))
struct LlamaMLPImpl : torch::nn::Module {
  explicit LlamaMLPImpl(const Config& c) : act(c.hidden_act) {
    gate_proj = register_module("gate_proj", layers::Linear(c.hidden_size, c.intermediate_size, c.mlp_bias));
    up_proj = register_module("up_proj", layers::Linear(c.hidden_size, c.intermediate_size, c.mlp_bias));
    down_proj = register_module("down_proj", layers::Linear(c.intermediate_size, c.hidden_size, c.mlp_bias));
  }
  torch::Tensor forward(const torch::Tensor& x) { return down_proj(layers::activate(act, gate_proj(x)) * up_proj(x)); }
  layers::Activation act;
  layers::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(LlamaMLP);

// modeling_llama.LlamaDecoderLayer
struct LlamaDecoderLayerImpl : torch::nn::Module {
  explicit LlamaDecoderLayerImpl(const Config& c) {
    self_attn = register_module("self_attn", LlamaAttention(c));
    mlp = register_module("mlp", LlamaMLP(c));
    input_layernorm = register_module("input_layernorm", layers::RMSNorm(c.hidden_size, c.rms_norm_eps, c.norm_plus_one));
    post_attention_layernorm =
        register_module("post_attention_layernorm", layers::RMSNorm(c.hidden_size, c.rms_norm_eps, c.norm_plus_one));
  }
  torch::Tensor forward(torch::Tensor h, const torch::Tensor& cos, const torch::Tensor& sin, KVCache& cache,
                        const torch::Tensor& visible) {
    h = h + self_attn(input_layernorm(h), cos, sin, cache, visible);
    return h + mlp(post_attention_layernorm(h));
  }
  LlamaAttention self_attn{nullptr};
  LlamaMLP mlp{nullptr};
  layers::RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(LlamaDecoderLayer);

// modeling_llama.LlamaModel
struct LlamaModelImpl : torch::nn::Module {
  explicit LlamaModelImpl(const Config& c) : rotary(c.rope), sliding_window(c.sliding_window), embed_scale(c.embed_scale) {
    embed_tokens = register_module("embed_tokens", layers::Embedding(c.vocab_size, c.hidden_size));
    layers_ = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers_->push_back(LlamaDecoderLayer(c));
    norm = register_module("norm", layers::RMSNorm(c.hidden_size, c.rms_norm_eps, c.norm_plus_one));
  }
  // in: input_ids, attention_mask, position_ids, then past key/value per layer. Fills `caches` with the presents.
  torch::Tensor forward(const std::vector<torch::Tensor>& in, std::vector<KVCache>& caches) {
    const auto& input_ids = in[0];
    const auto& attention_mask = in[1];
    auto hidden = embed_tokens(input_ids);
    if (embed_scale != 1.0) hidden = hidden * embed_scale;  // Gemma: sqrt(hidden_size) as a float32 tensor
    auto [cos, sin] = rotary.cos_sin(in[2], attention_mask);
    auto visible = layers::decoder_visible(input_ids, attention_mask, sliding_window);
    for (size_t i = 0; i < layers_->size(); ++i) {
      caches.push_back({in[3 + 2 * i], in[4 + 2 * i]});
      hidden = layers_[i]->as<LlamaDecoderLayerImpl>()->forward(hidden, cos, sin, caches.back(), visible);
    }
    return norm(hidden);
  }
  layers::RotaryEmbedding rotary;
  int64_t sliding_window;
  double embed_scale;
  layers::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers_;
  layers::RMSNorm norm{nullptr};
};
TORCH_MODULE(LlamaModel);

// LlamaForCausalLM: `model` + lm_head (tied to embed_tokens when tie_word_embeddings).
struct LlamaForCausalLMImpl : torch::nn::Module {
  explicit LlamaForCausalLMImpl(const Config& c) {
    model = register_module("model", LlamaModel(c));
    if (!c.tie_word_embeddings) lm_head = register_module("lm_head", layers::Linear(c.hidden_size, c.vocab_size, false));
  }
  LlamaModel model{nullptr};
  layers::Linear lm_head{nullptr};
};

}  // namespace
}  // namespace hf2onnx::llama

namespace hf2onnx {

std::shared_ptr<ExportModel> llama::build(const BuildContext& ctx, const Config& c, const std::string& family) {
  return llama::build_decoder<llama::LlamaModelImpl, llama::LlamaForCausalLMImpl>(ctx, c, family);
}

std::shared_ptr<ExportModel> build_llama(const BuildContext& ctx) {
  // LlamaConfig's defaults.
  return llama::build(ctx, llama::Config::from(ctx.config, {}), "Llama");
}

}  // namespace hf2onnx
