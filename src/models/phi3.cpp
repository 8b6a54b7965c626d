// Phi-3 — mirrors transformers/models/phi3/modeling_phi3.py (v4.44, eager attention): Llama's layout with fused
// projections, split in the graph (the checkpoint keys stay the initializer names): qkv_proj rows are
// [q (heads·head_dim), k (kv_heads·head_dim), v (kv_heads·head_dim)], gate_up_proj rows [gate, up]. RoPE
// scaling longrope (configs saying su or yarn mean the same in 4.44): short or long factors chosen per call
// from the largest position id, cos/sin scaled by the attention factor (layers/rotary.h).
#include <cmath>
#include <limits>

#include "hf2onnx/error.h"
#include "models/builders.h"
#include "models/layers/common.h"
#include "models/layers/dynamic.h"
#include "models/layers/rotary.h"
#include "models/llama.h"
#include "models/model.h"

namespace hf2onnx::phi3 {
namespace {

using layers::KVCache;
using llama::Config;

// modeling_phi3.Phi3Attention
struct Phi3AttentionImpl : torch::nn::Module {
  explicit Phi3AttentionImpl(const Config& c)
      : heads(c.num_attention_heads), kv_heads(c.num_key_value_heads), head_dim(c.head_dim) {
    qkv_proj = register_module("qkv_proj", layers::Linear(c.hidden_size, (heads + 2 * kv_heads) * head_dim, false));
    o_proj = register_module("o_proj", layers::Linear(heads * head_dim, c.hidden_size, false));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, KVCache& cache,
                        const torch::Tensor& visible) {
    auto qkv = qkv_proj(x);
    const int64_t q_end = heads * head_dim, k_end = q_end + kv_heads * head_dim;
    auto q = layers::apply_rotary(layers::split_heads(qkv.slice(-1, 0, q_end), heads, head_dim), cos, sin);
    auto k = layers::apply_rotary(layers::split_heads(qkv.slice(-1, q_end, k_end), kv_heads, head_dim), cos, sin);
    auto v = layers::split_heads(qkv.slice(-1, k_end), kv_heads, head_dim);
    cache.key = torch::cat({cache.key, k}, 2);
    cache.value = torch::cat({cache.value, v}, 2);
    auto keys = layers::repeat_kv(cache.key, heads / kv_heads);
    auto values = layers::repeat_kv(cache.value, heads / kv_heads);
    auto w = torch::matmul(q, keys.transpose(2, 3)) / std::sqrt(static_cast<double>(head_dim));
    w = torch::where(visible, w, torch::full_like(w, std::numeric_limits<float>::lowest()));
    w = torch::softmax(w, -1, torch::kFloat);
    return o_proj(layers::merge_heads(torch::matmul(w, values)));
  }
  int64_t heads, kv_heads, head_dim;
  layers::Linear qkv_proj{nullptr}, o_proj{nullptr};
};
TORCH_MODULE(Phi3Attention);

// modeling_phi3.Phi3MLP: down(up * act(gate)), gate and up from one projection
struct Phi3MLPImpl : torch::nn::Module {
  explicit Phi3MLPImpl(const Config& c) : act(c.hidden_act), intermediate(c.intermediate_size) {
    gate_up_proj = register_module("gate_up_proj", layers::Linear(c.hidden_size, 2 * c.intermediate_size, false));
    down_proj = register_module("down_proj", layers::Linear(c.intermediate_size, c.hidden_size, false));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto up_states = gate_up_proj(x);
    auto gate = up_states.slice(-1, 0, intermediate), up = up_states.slice(-1, intermediate);
    return down_proj(up * layers::activate(act, gate));
  }
  layers::Activation act;
  int64_t intermediate;
  layers::Linear gate_up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Phi3MLP);

// modeling_phi3.Phi3DecoderLayer
struct Phi3DecoderLayerImpl : torch::nn::Module {
  explicit Phi3DecoderLayerImpl(const Config& c) {
    self_attn = register_module("self_attn", Phi3Attention(c));
    mlp = register_module("mlp", Phi3MLP(c));
    input_layernorm = register_module("input_layernorm", layers::RMSNorm(c.hidden_size, c.rms_norm_eps));
    post_attention_layernorm = register_module("post_attention_layernorm", layers::RMSNorm(c.hidden_size, c.rms_norm_eps));
  }
  torch::Tensor forward(torch::Tensor h, const torch::Tensor& cos, const torch::Tensor& sin, KVCache& cache,
                        const torch::Tensor& visible) {
    h = h + self_attn(input_layernorm(h), cos, sin, cache, visible);
    return h + mlp(post_attention_layernorm(h));
  }
  Phi3Attention self_attn{nullptr};
  Phi3MLP mlp{nullptr};
  layers::RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(Phi3DecoderLayer);

// modeling_phi3.Phi3Model
struct Phi3ModelImpl : torch::nn::Module {
  explicit Phi3ModelImpl(const Config& c) : rotary(c.rope) {
    embed_tokens = register_module("embed_tokens", layers::Embedding(c.vocab_size, c.hidden_size));
    layers_ = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers_->push_back(Phi3DecoderLayer(c));
    norm = register_module("norm", layers::RMSNorm(c.hidden_size, c.rms_norm_eps));
  }
  // in: input_ids, attention_mask, position_ids, then past key/value per layer. Fills `caches` with the presents.
  torch::Tensor forward(const std::vector<torch::Tensor>& in, std::vector<KVCache>& caches) {
    const auto& input_ids = in[0];
    const auto& attention_mask = in[1];
    auto hidden = embed_tokens(input_ids);
    auto [cos, sin] = rotary.cos_sin(in[2], attention_mask);
    auto visible = layers::decoder_visible(input_ids, attention_mask);
    for (size_t i = 0; i < layers_->size(); ++i) {
      caches.push_back({in[3 + 2 * i], in[4 + 2 * i]});
      hidden = layers_[i]->as<Phi3DecoderLayerImpl>()->forward(hidden, cos, sin, caches.back(), visible);
    }
    return norm(hidden);
  }
  layers::RotaryEmbedding rotary;
  layers::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers_;
  layers::RMSNorm norm{nullptr};
};
TORCH_MODULE(Phi3Model);

// Phi3ForCausalLM
struct Phi3ForCausalLMImpl : torch::nn::Module {
  explicit Phi3ForCausalLMImpl(const Config& c) {
    model = register_module("model", Phi3Model(c));
    if (!c.tie_word_embeddings) lm_head = register_module("lm_head", layers::Linear(c.hidden_size, c.vocab_size, false));
  }
  Phi3Model model{nullptr};
  layers::Linear lm_head{nullptr};
};

}  // namespace
}  // namespace hf2onnx::phi3

namespace hf2onnx {

std::shared_ptr<ExportModel> build_phi3(const BuildContext& ctx) {
  using namespace phi3;
  llama::Defaults d;  // Phi3Config's defaults
  d.vocab_size = 32064;
  d.hidden_size = 3072;
  d.intermediate_size = 8192;
  d.max_position_embeddings = 4096;
  d.rms_norm_eps = 1e-5;
  d.phi3_rope = true;
  llama::Config c = llama::Config::from(ctx.config, d);
  // sliding_window: 4.44 applies it only with flash attention; its eager attention (the reference) has no window.
  return llama::build_decoder<Phi3ModelImpl, Phi3ForCausalLMImpl>(ctx, c, "Phi-3");
}

}  // namespace hf2onnx
