// T5 and mT5 — mirrors transformers/models/{t5,mt5}/modeling_*.py (v4.32): T5ForConditionalGeneration as
// encoder + decoder graphs with a KV cache, T5EncoderModel as one graph. No absolute positions: block 0 of
// each stack owns a relative-position bias table (bidirectional buckets in the encoder, causal in the
// decoder), computed from the positions at run time and shared, mask included, by every later block.
// Scores are not scaled by 1/sqrt(d); norms are RMS norms without bias.
#include <cmath>

#include "hf2onnx/error.h"
#include "models/builders.h"
#include "models/layers/dynamic.h"
#include "models/layers/seq2seq.h"
#include "models/model.h"

namespace hf2onnx::t5 {
namespace {

// transformers T5Config / MT5Config, resolved.
struct Config {
  int64_t vocab_size, d_model, d_kv, d_ff, num_layers, num_decoder_layers, num_heads, num_buckets, max_distance;
  double layer_norm_epsilon;
  bool gated, tie_word_embeddings;
  layers::Activation activation;
  static Config from(const hf::Config& raw, bool mt5) {
    Config c;
    c.vocab_size = raw.get_int("vocab_size").value_or(mt5 ? 250112 : 32128);
    c.d_model = raw.get_int("d_model").value_or(512);
    c.d_kv = raw.get_int("d_kv").value_or(64);
    c.d_ff = raw.get_int("d_ff").value_or(mt5 ? 1024 : 2048);
    c.num_layers = raw.get_count("num_layers").value_or(mt5 ? 8 : 6);
    c.num_decoder_layers = raw.get_count("num_decoder_layers").value_or(c.num_layers);
    c.num_heads = raw.get_int("num_heads").value_or(mt5 ? 6 : 8);
    c.num_buckets = raw.get_int("relative_attention_num_buckets").value_or(32);
    c.max_distance = raw.get_int("relative_attention_max_distance").value_or(128);
    c.layer_norm_epsilon = raw.get_double("layer_norm_epsilon").value_or(1e-6);
    c.tie_word_embeddings = raw.get_bool("tie_word_embeddings").value_or(!mt5);
    // feed_forward_proj: "<act>" or "gated-<act>"; "gated-gelu" means gelu_new (T5Config.__init__).
    const std::string proj = raw.get_string("feed_forward_proj").value_or(mt5 ? "gated-gelu" : "relu");
    const auto dash = proj.find('-');
    c.gated = dash != std::string::npos && proj.substr(0, dash) == "gated";
    if ((dash != std::string::npos && !c.gated) || (c.gated && proj.find('-', dash + 1) != std::string::npos))
      raw.fail("feed_forward_proj", "= '" + proj + "' is not a valid activation (use '<act>' or 'gated-<act>')");
    const std::string act = proj == "gated-gelu" ? "gelu_new" : proj.substr(dash == std::string::npos ? 0 : dash + 1);
    auto activation = layers::activation_named(act);
    if (!activation)
      raw.fail("feed_forward_proj", "= '" + proj + "': '" + act + "' is not a supported activation (supported: " +
                                        layers::supported_activations() + ")");
    c.activation = *activation;
    if (raw.get_bool("tie_encoder_decoder").value_or(false)) raw.fail("tie_encoder_decoder", "= true is not supported");
    if (c.num_buckets < 2) raw.fail("relative_attention_num_buckets", "must be at least 2");
    return c;
  }
  int64_t inner() const { return num_heads * d_kv; }
};

// T5Attention._relative_position_bucket, on int64 relative positions (key - query).
torch::Tensor relative_position_bucket(torch::Tensor rel, bool bidirectional, int64_t num_buckets, int64_t max_distance) {
  auto buckets = torch::zeros_like(rel);
  if (bidirectional) {
    num_buckets /= 2;
    buckets = buckets + rel.gt(0).to(torch::kLong) * num_buckets;
    rel = rel.abs();
  } else {
    rel = rel.clamp_max(0).neg();  // -min(rel, 0)
  }
  const int64_t max_exact = num_buckets / 2;
  auto is_small = rel.lt(max_exact);
  auto large = (torch::log(rel.to(torch::kFloat) / static_cast<double>(max_exact)) /
                std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)) *
                static_cast<double>(num_buckets - max_exact))
                   .to(torch::kLong) +
               max_exact;
  large = large.clamp_max(num_buckets - 1);
  return buckets + torch::where(is_small, rel, large);
}

// modeling_t5.T5Attention (q, k, v, o without bias; relative_attention_bias in block 0's self-attention)
struct T5AttentionImpl : torch::nn::Module {
  T5AttentionImpl(const Config& c, bool has_relative_attention_bias, bool is_decoder)
      : c_(c), is_decoder_(is_decoder) {
    q = register_module("q", layers::Linear(c.d_model, c.inner(), false));
    k = register_module("k", layers::Linear(c.d_model, c.inner(), false));
    v = register_module("v", layers::Linear(c.d_model, c.inner(), false));
    o = register_module("o", layers::Linear(c.inner(), c.d_model, false));
    if (has_relative_attention_bias)
      relative_attention_bias = register_module("relative_attention_bias", layers::Embedding(c.num_buckets, c.num_heads));
  }
  // compute_bias: [B, H, S, T] for queries at `query_pos` [B, S] and keys at `key_pos` [B, T].
  torch::Tensor compute_bias(const torch::Tensor& query_pos, const torch::Tensor& key_pos) {
    auto rel = key_pos.unsqueeze(1) - query_pos.unsqueeze(2);  // [B, S, T] memory - context
    auto bucket = relative_position_bucket(rel, !is_decoder_, c_.num_buckets, c_.max_distance);
    return relative_attention_bias(bucket).permute({0, 3, 1, 2});
  }
  torch::Tensor attend(const torch::Tensor& x, const torch::Tensor& key, const torch::Tensor& value,
                       const torch::Tensor& position_bias) {
    auto query = layers::split_heads(q(x), c_.num_heads, c_.d_kv);
    auto scores = torch::matmul(query, key.transpose(-1, -2)) + position_bias;  // no 1/sqrt(d)
    return o(layers::merge_heads(torch::matmul(torch::softmax(scores, -1), value)));
  }
  torch::Tensor self_attention(const torch::Tensor& x, const torch::Tensor& position_bias, layers::KVCache* cache) {
    auto key = layers::split_heads(k(x), c_.num_heads, c_.d_kv), value = layers::split_heads(v(x), c_.num_heads, c_.d_kv);
    if (cache) {
      cache->key = cache->key.defined() ? torch::cat({cache->key, key}, 2) : key;
      cache->value = cache->value.defined() ? torch::cat({cache->value, value}, 2) : value;
      key = cache->key;
      value = cache->value;
    }
    return attend(x, key, value, position_bias);
  }
  torch::Tensor cross_attention(const torch::Tensor& x, const torch::Tensor& encoder_states, const torch::Tensor& mask,
                                layers::KVCache& cache) {
    if (!cache.key.defined()) {
      cache.key = layers::split_heads(k(encoder_states), c_.num_heads, c_.d_kv);
      cache.value = layers::split_heads(v(encoder_states), c_.num_heads, c_.d_kv);
    }
    return attend(x, cache.key, cache.value, mask);  // a zero position bias plus the encoder mask
  }
  Config c_;
  bool is_decoder_;
  layers::Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
  layers::Embedding relative_attention_bias{nullptr};
};
TORCH_MODULE(T5Attention);

// T5LayerSelfAttention / T5LayerCrossAttention: x + attention(layer_norm(x)).
struct T5LayerAttentionImpl : torch::nn::Module {
  T5LayerAttentionImpl(const Config& c, const char* name, bool has_bias, bool is_decoder) {
    attention = register_module(name, T5Attention(c, has_bias, is_decoder));
    layer_norm = register_module("layer_norm", layers::RMSNorm(c.d_model, c.layer_norm_epsilon));
  }
  T5Attention attention{nullptr};
  layers::RMSNorm layer_norm{nullptr};
};
TORCH_MODULE(T5LayerAttention);

// T5LayerFF: x + DenseReluDense(layer_norm(x)), T5DenseActDense or T5DenseGatedActDense.
struct T5DenseImpl : torch::nn::Module {
  explicit T5DenseImpl(const Config& c) : act(c.activation) {
    if (c.gated) {
      wi_0 = register_module("wi_0", layers::Linear(c.d_model, c.d_ff, false));
      wi_1 = register_module("wi_1", layers::Linear(c.d_model, c.d_ff, false));
    } else {
      wi = register_module("wi", layers::Linear(c.d_model, c.d_ff, false));
    }
    wo = register_module("wo", layers::Linear(c.d_ff, c.d_model, false));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return wo(wi ? layers::activate(act, wi(x)) : layers::activate(act, wi_0(x)) * wi_1(x));
  }
  layers::Activation act;
  layers::Linear wi{nullptr}, wi_0{nullptr}, wi_1{nullptr}, wo{nullptr};
};
TORCH_MODULE(T5Dense);

struct T5LayerFFImpl : torch::nn::Module {
  explicit T5LayerFFImpl(const Config& c) {
    DenseReluDense = register_module("DenseReluDense", T5Dense(c));
    layer_norm = register_module("layer_norm", layers::RMSNorm(c.d_model, c.layer_norm_epsilon));
  }
  torch::Tensor forward(const torch::Tensor& x) { return x + DenseReluDense(layer_norm(x)); }
  T5Dense DenseReluDense{nullptr};
  layers::RMSNorm layer_norm{nullptr};
};
TORCH_MODULE(T5LayerFF);

// modeling_t5.T5Block: `layer` = [self-attention, (cross-attention,) feed-forward].
struct T5BlockImpl : torch::nn::Module {
  T5BlockImpl(const Config& c, bool has_bias, bool is_decoder) {
    layer = register_module("layer", torch::nn::ModuleList());
    self_attn = T5LayerAttention(c, "SelfAttention", has_bias, is_decoder);
    layer->push_back(self_attn);
    if (is_decoder) {
      cross_attn = T5LayerAttention(c, "EncDecAttention", false, true);
      layer->push_back(cross_attn);
    }
    ff = T5LayerFF(c);
    layer->push_back(ff);
  }
  torch::Tensor forward(torch::Tensor h, const torch::Tensor& position_bias, const torch::Tensor& encoder_states,
                        const torch::Tensor& encoder_mask, layers::Seq2SeqCache* cache) {
    h = h + self_attn->attention->self_attention(self_attn->layer_norm(h), position_bias, cache ? &cache->self : nullptr);
    if (cross_attn)
      h = h + cross_attn->attention->cross_attention(cross_attn->layer_norm(h), encoder_states, encoder_mask, cache->cross);
    return ff(h);
  }
  torch::nn::ModuleList layer;
  T5LayerAttention self_attn{nullptr}, cross_attn{nullptr};
  T5LayerFF ff{nullptr};
};
TORCH_MODULE(T5Block);

// modeling_t5.T5Stack (embed_tokens is the model's `shared`)
struct T5StackImpl : torch::nn::Module {
  T5StackImpl(const Config& c, layers::Embedding shared, bool is_decoder) : embed_tokens(shared) {
    block = register_module("block", torch::nn::ModuleList());
    for (int64_t i = 0; i < (is_decoder ? c.num_decoder_layers : c.num_layers); ++i)
      block->push_back(T5Block(c, i == 0, is_decoder));
    final_layer_norm = register_module("final_layer_norm", layers::RMSNorm(c.d_model, c.layer_norm_epsilon));
  }
  T5BlockImpl& at(size_t i) { return *block[i]->as<T5BlockImpl>(); }
  // The encoder: bidirectional bias + padding mask.
  torch::Tensor encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
    auto h = embed_tokens(input_ids);
    auto pos = layers::positions_like(input_ids);
    auto bias = at(0).self_attn->attention->compute_bias(pos, pos) + layers::additive_padding_mask(attention_mask);
    for (size_t i = 0; i < block->size(); ++i) h = at(i).forward(h, bias, {}, {}, nullptr);
    return final_layer_norm(h);
  }
  // The decoder: causal bias over past + new keys, the encoder mask on the cross-attention.
  torch::Tensor decode(const torch::Tensor& input_ids, const torch::Tensor& encoder_states,
                       const torch::Tensor& encoder_attention_mask, std::vector<layers::Seq2SeqCache>& caches) {
    auto h = embed_tokens(input_ids);
    auto query_pos = layers::decoder_positions(input_ids, caches[0]);  // [B, S]
    auto key_pos = layers::decoder_key_positions(input_ids, caches[0]);  // [B, T]
    auto bias = at(0).self_attn->attention->compute_bias(query_pos, key_pos) + layers::decoder_causal_mask(input_ids, caches[0]);
    auto encoder_mask = layers::additive_padding_mask(encoder_attention_mask);
    for (size_t i = 0; i < block->size(); ++i) h = at(i).forward(h, bias, encoder_states, encoder_mask, &caches[i]);
    return final_layer_norm(h);
  }
  layers::Embedding embed_tokens;
  torch::nn::ModuleList block;
  layers::RMSNorm final_layer_norm{nullptr};
};
TORCH_MODULE(T5Stack);

// T5ForConditionalGeneration / T5EncoderModel: `shared`, the stacks, lm_head unless tied.
struct T5ModelImpl : torch::nn::Module {
  T5ModelImpl(const Config& c, bool with_decoder) {
    shared = register_module("shared", layers::Embedding(c.vocab_size, c.d_model));
    encoder = register_module("encoder", T5Stack(c, shared, false));
    if (with_decoder) {
      decoder = register_module("decoder", T5Stack(c, shared, true));
      if (!c.tie_word_embeddings) lm_head = register_module("lm_head", layers::Linear(c.d_model, c.vocab_size, false));
    }
  }
  layers::Embedding shared{nullptr};
  T5Stack encoder{nullptr}, decoder{nullptr};
  layers::Linear lm_head{nullptr};
};

}  // namespace
}  // namespace hf2onnx::t5

namespace hf2onnx {

std::shared_ptr<ExportModel> build_t5(const BuildContext& ctx) {
  using namespace t5;
  const Config c = Config::from(ctx.config, ctx.config.get_string("model_type").value_or("t5") == "mt5");
  auto m = std::make_shared<ExportModel>();
  m->task = ctx.task;
  // The stacks' embed_tokens are stored copies of `shared`; 4.32 ignores the decoder's unused cross bias.
  m->load_rules.ignored_keys = {R"((encoder|decoder)\.embed_tokens\.weight)",
                                R"(decoder\.block\.0\.layer\.1\.EncDecAttention\.relative_attention_bias\.weight)"};
  if (ctx.task == Task::FeatureExtraction) {  // T5EncoderModel: input_ids, attention_mask → last_hidden_state
    auto model = std::make_shared<T5ModelImpl>(c, false);
    m->module = model;
    m->load_rules.ignored_keys.push_back(R"((decoder\..*|lm_head\.weight))");  // a full checkpoint's other half
    ExportGraph& g = m->graph();
    g.inputs = {{"input_ids", torch::kLong, {"batch_size", "sequence_length"}},
                {"attention_mask", torch::kLong, {"batch_size", "sequence_length"}}};
    g.outputs = {{"last_hidden_state", torch::kFloat, {"batch_size", "sequence_length", std::to_string(c.d_model)}}};
    g.example_inputs = [inputs = g.inputs, vocab = c.vocab_size](const DimSizes& d) {
      return layers::make_text_inputs(inputs, vocab, d);
    };
    g.forward = [model](const std::vector<torch::Tensor>& in) {
      return std::vector<torch::Tensor>{model->encoder->encode(in[0], in[1])};
    };
    return m;
  }
  if (ctx.task != Task::Text2TextGeneration)
    throw Error("task '" + std::string(task_name(ctx.task)) + "' is not supported by T5 models");
  auto model = std::make_shared<T5ModelImpl>(c, true);
  m->module = model;
  if (c.tie_word_embeddings) m->load_rules.ignored_keys.push_back(R"(lm_head\.weight)");
  layers::Seq2SeqSpec spec;
  spec.decoder_layers = c.num_decoder_layers;
  spec.decoder_heads = c.num_heads;
  spec.head_dim = c.d_kv;
  spec.d_model = c.d_model;
  spec.encoder_vocab_size = spec.decoder_vocab_size = c.vocab_size;
  spec.first_output_size = c.vocab_size;
  const double rescale = c.tie_word_embeddings ? std::pow(static_cast<double>(c.d_model), -0.5) : 1.0;
  layers::set_seq2seq_graphs(
      *m, spec, [model](const auto& ids, const auto& mask) { return model->encoder->encode(ids, mask); },
      [model, rescale](const auto& ids, const auto& states, const auto& mask, auto& caches) {
        auto h = model->decoder->decode(ids, states, mask, caches);
        if (!model->lm_head) return layers::linear(h * rescale, model->shared->weight);  // tied: d_model^-0.5 first
        return model->lm_head(h);
      });
  return m;
}

}  // namespace hf2onnx
