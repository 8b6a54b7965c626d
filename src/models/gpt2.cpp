// GPT-2 — mirrors transformers/models/gpt2/modeling_gpt2.py (v4.32): GPT2Model and GPT2LMHeadModel with a
// KV cache. Conv1D weights are [in, out] in the checkpoint and are used as such (x @ W + b).
#include <cmath>
#include <limits>

#include "hf2onnx/error.h"
#include "models/builders.h"
#include "models/layers/common.h"
#include "models/layers/dynamic.h"
#include "models/model.h"

namespace hf2onnx::gpt2 {
namespace {

// transformers GPT2Config, resolved.
struct Config {
  int64_t vocab_size, n_positions, n_embd, n_layer, n_head, n_inner;
  double layer_norm_epsilon;
  layers::Activation activation;
  bool scale_attn_weights, scale_attn_by_inverse_layer_idx, tie_word_embeddings;
  static Config from(const hf::Config& raw) {
    Config c;
    c.vocab_size = raw.get_int("vocab_size").value_or(50257);
    c.n_positions = raw.get_int("n_positions").value_or(1024);
    c.n_embd = raw.get_int("n_embd").value_or(768);
    c.n_layer = raw.get_count("n_layer").value_or(12);
    c.n_head = raw.get_int("n_head").value_or(12);
    c.n_inner = raw.get_int("n_inner").value_or(4 * c.n_embd);  // n_inner: null → 4 * n_embd
    c.layer_norm_epsilon = raw.get_double("layer_norm_epsilon").value_or(1e-5);
    c.activation = layers::activation_from_config(raw, "activation_function", "gelu_new");
    c.scale_attn_weights = raw.get_bool("scale_attn_weights").value_or(true);
    c.scale_attn_by_inverse_layer_idx = raw.get_bool("scale_attn_by_inverse_layer_idx").value_or(false);
    c.tie_word_embeddings = raw.get_bool("tie_word_embeddings").value_or(true);
    if (raw.get_bool("add_cross_attention").value_or(false))
      raw.fail("add_cross_attention", "= true is not supported (decoder-only export)");
    if (c.n_head <= 0 || c.n_embd % c.n_head != 0) raw.fail("n_embd", "must be a multiple of n_head");
    return c;
  }
  int64_t head_dim() const { return n_embd / n_head; }
};

// pytorch_utils.Conv1D: y = x @ weight + bias, weight [in, out].
struct Conv1DImpl : torch::nn::Module {
  Conv1DImpl(int64_t out, int64_t in) {
    weight = register_parameter("weight", layers::placeholder({in, out}), false);
    bias = register_parameter("bias", layers::placeholder({out}), false);
  }
  torch::Tensor forward(const torch::Tensor& x) { return torch::matmul(x, weight) + bias; }
  torch::Tensor weight, bias;
};
TORCH_MODULE(Conv1D);

using layers::KVCache;

// modeling_gpt2.GPT2Attention (self-attention with past)
struct GPT2AttentionImpl : torch::nn::Module {
  GPT2AttentionImpl(const Config& c, int64_t layer_idx) : c_(c), layer_idx_(layer_idx) {
    c_attn = register_module("c_attn", Conv1D(3 * c.n_embd, c.n_embd));
    c_proj = register_module("c_proj", Conv1D(c.n_embd, c.n_embd));
  }
  torch::Tensor forward(const torch::Tensor& x, KVCache& cache, const torch::Tensor& causal,
                        const torch::Tensor& padding) {
    const int64_t e = c_.n_embd, d = c_.head_dim();
    auto qkv = c_attn(x);
    auto q = layers::split_heads(qkv.slice(-1, 0, e), c_.n_head, d);
    auto k = layers::split_heads(qkv.slice(-1, e, 2 * e), c_.n_head, d);
    auto v = layers::split_heads(qkv.slice(-1, 2 * e, 3 * e), c_.n_head, d);
    cache.key = torch::cat({cache.key, k}, 2);  // present = past + new
    cache.value = torch::cat({cache.value, v}, 2);
    auto w = torch::matmul(q, cache.key.transpose(-1, -2));
    if (c_.scale_attn_weights) w = w / std::sqrt(static_cast<double>(d));
    if (c_.scale_attn_by_inverse_layer_idx) w = w / static_cast<double>(layer_idx_ + 1);
    w = torch::where(causal, w, torch::full_like(w, std::numeric_limits<float>::lowest()));
    w = torch::softmax(w + padding, -1);
    return c_proj(layers::merge_heads(torch::matmul(w, cache.value)));
  }
  Config c_;
  int64_t layer_idx_;
  Conv1D c_attn{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(GPT2Attention);

// modeling_gpt2.GPT2MLP
struct GPT2MLPImpl : torch::nn::Module {
  explicit GPT2MLPImpl(const Config& c) : act(c.activation) {
    c_fc = register_module("c_fc", Conv1D(c.n_inner, c.n_embd));
    c_proj = register_module("c_proj", Conv1D(c.n_embd, c.n_inner));
  }
  torch::Tensor forward(const torch::Tensor& x) { return c_proj(layers::activate(act, c_fc(x))); }
  layers::Activation act;
  Conv1D c_fc{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(GPT2MLP);

// modeling_gpt2.GPT2Block
struct GPT2BlockImpl : torch::nn::Module {
  GPT2BlockImpl(const Config& c, int64_t layer_idx) {
    ln_1 = register_module("ln_1", layers::LayerNorm(c.n_embd, c.layer_norm_epsilon));
    attn = register_module("attn", GPT2Attention(c, layer_idx));
    ln_2 = register_module("ln_2", layers::LayerNorm(c.n_embd, c.layer_norm_epsilon));
    mlp = register_module("mlp", GPT2MLP(c));
  }
  torch::Tensor forward(torch::Tensor h, KVCache& cache, const torch::Tensor& causal, const torch::Tensor& padding) {
    h = h + attn(ln_1(h), cache, causal, padding);
    return h + mlp(ln_2(h));
  }
  layers::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  GPT2Attention attn{nullptr};
  GPT2MLP mlp{nullptr};
};
TORCH_MODULE(GPT2Block);

// modeling_gpt2.GPT2Model
struct GPT2ModelImpl : torch::nn::Module {
  explicit GPT2ModelImpl(const Config& c) {
    wte = register_module("wte", layers::Embedding(c.vocab_size, c.n_embd));
    wpe = register_module("wpe", layers::Embedding(c.n_positions, c.n_embd));
    h = register_module("h", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.n_layer; ++i) h->push_back(GPT2Block(c, i));
    ln_f = register_module("ln_f", layers::LayerNorm(c.n_embd, c.layer_norm_epsilon));
  }
  // in: input_ids, attention_mask, position_ids, then past key/value per layer. Fills `caches` with the presents.
  torch::Tensor forward(const std::vector<torch::Tensor>& in, std::vector<KVCache>& caches) {
    const auto& input_ids = in[0];
    const auto& attention_mask = in[1];
    auto hidden = wte(input_ids) + wpe(in[2]);
    auto causal = layers::causal_visible(input_ids, attention_mask);      // the registered `bias` buffer's role
    auto padding = layers::additive_padding_mask(attention_mask);          // (1 - mask) * finfo.min
    for (size_t i = 0; i < h->size(); ++i) {
      caches.push_back({in[3 + 2 * i], in[4 + 2 * i]});
      hidden = h[i]->as<GPT2BlockImpl>()->forward(hidden, caches.back(), causal, padding);
    }
    return ln_f(hidden);
  }
  layers::Embedding wte{nullptr}, wpe{nullptr};
  torch::nn::ModuleList h;
  layers::LayerNorm ln_f{nullptr};
};
TORCH_MODULE(GPT2Model);

// GPT2LMHeadModel: `transformer` + lm_head, tied to wte unless tie_word_embeddings is false.
struct GPT2LMHeadModelImpl : torch::nn::Module {
  explicit GPT2LMHeadModelImpl(const Config& c) {
    transformer = register_module("transformer", GPT2Model(c));
    if (!c.tie_word_embeddings) lm_head = register_module("lm_head", layers::Linear(c.n_embd, c.vocab_size, false));
  }
  GPT2Model transformer{nullptr};
  layers::Linear lm_head{nullptr};
};

}  // namespace
}  // namespace hf2onnx::gpt2

namespace hf2onnx {

std::shared_ptr<ExportModel> build_gpt2(const BuildContext& ctx) {
  using namespace gpt2;
  const Config c = Config::from(ctx.config);
  auto m = std::make_shared<ExportModel>();
  m->task = ctx.task;
  // Persisted causal-mask buffers of older checkpoints; the transformer. prefix is absent in GPT2Model ones.
  m->load_rules.ignored_keys = {R"((transformer\.)?h\.\d+\.attn\.(masked_)?bias)"};
  m->load_rules.optional_prefixes = {"transformer."};

  if (ctx.task == Task::FeatureExtraction) {  // GPT2Model: last_hidden_state + presents
    auto model = std::make_shared<GPT2ModelImpl>(c);
    m->module = model;
    m->load_rules.ignored_keys.push_back(R"(lm_head\.weight)");
    layers::set_decoder_io(*m, c.n_layer, c.n_head, c.head_dim(), c.vocab_size, "last_hidden_state", c.n_embd);
    m->graph().forward = layers::hidden_states_forward(model);
    return m;
  }
  if (ctx.task != Task::TextGeneration)
    throw Error("task '" + std::string(task_name(ctx.task)) + "' is not supported by GPT-2 models");
  auto model = std::make_shared<GPT2LMHeadModelImpl>(c);  // GPT2LMHeadModel: logits + presents
  m->module = model;
  if (c.tie_word_embeddings) m->load_rules.ignored_keys.push_back(R"(lm_head\.weight)");  // the stored tied copy
  layers::set_decoder_io(*m, c.n_layer, c.n_head, c.head_dim(), c.vocab_size, "logits", c.vocab_size);
  m->graph().forward = layers::causal_lm_forward(model->transformer.ptr(), model->lm_head, model->transformer->wte->weight);
  return m;
}

}  // namespace hf2onnx
