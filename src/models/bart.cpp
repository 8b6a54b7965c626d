// BART and mBART — mirrors transformers/models/{bart,mbart}/modeling_*.py (v4.32): BartModel,
// BartForConditionalGeneration, MBartForConditionalGeneration as encoder + decoder graphs with a KV cache.
// BART is post-LayerNorm; mBART normalises before each block and adds a final layer_norm per stack.
#include <cmath>

#include "hf2onnx/error.h"
#include "models/bart.h"
#include "models/builders.h"
#include "models/layers/dynamic.h"
#include "models/model.h"

namespace hf2onnx::bart {
namespace {

// transformers BartConfig / MBartConfig, resolved.
struct Config : Sizes {
  int64_t max_position_embeddings;
  double embed_scale;
  bool mbart, tie_word_embeddings;
  LayerConfig encoder_layer, decoder_layer;
  static Config from(const hf::Config& raw, bool mbart) {
    Config c;
    static_cast<Sizes&>(c) = Sizes::from(raw, {50265, 1024, 12, 12, 16, 16, 4096, 4096});
    c.mbart = mbart;
    c.max_position_embeddings = raw.get_int("max_position_embeddings").value_or(1024);
    c.embed_scale = raw.get_bool("scale_embedding").value_or(false) ? std::sqrt(static_cast<double>(c.d_model)) : 1.0;
    // normalize_before, add_final_layer_norm, add_bias_logits, static_position_embeddings: old configs carry
    // them; transformers 4.32 does not read them, and neither do we.
    c.tie_word_embeddings = raw.get_bool("tie_word_embeddings").value_or(true);
    c.encoder_layer = c.layer(raw, false, mbart);  // mBART normalises before each block
    c.decoder_layer = c.layer(raw, true, mbart);
    return c;
  }
};

constexpr int64_t kPositionOffset = 2;  // BartLearnedPositionalEmbedding: positions are looked up at +2

// modeling_bart.BartEncoder (embed_tokens is the model's `shared`)
struct BartEncoderImpl : torch::nn::Module {
  BartEncoderImpl(const Config& c, layers::Embedding shared) : c_(c), embed_tokens(shared) {
    embed_positions = register_module("embed_positions", layers::Embedding(c.max_position_embeddings + kPositionOffset, c.d_model));
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.encoder_layers; ++i) layers->push_back(BartEncoderLayer(c.encoder_layer));
    layernorm_embedding = register_module("layernorm_embedding", layers::LayerNorm(c.d_model, 1e-5));
    if (c.mbart) layer_norm = register_module("layer_norm", layers::LayerNorm(c.d_model, 1e-5));
  }
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
    auto h = embed_tokens(input_ids) * c_.embed_scale + embed_positions(layers::positions_like(input_ids) + kPositionOffset);
    h = layernorm_embedding(h);
    auto mask = layers::additive_padding_mask(attention_mask);
    for (const auto& layer : *layers) h = layer->as<BartEncoderLayerImpl>()->forward(h, mask);
    return layer_norm ? layer_norm(h) : h;
  }
  Config c_;
  layers::Embedding embed_tokens, embed_positions{nullptr};
  torch::nn::ModuleList layers;
  layers::LayerNorm layernorm_embedding{nullptr}, layer_norm{nullptr};
};
TORCH_MODULE(BartEncoder);

// modeling_bart.BartDecoder
struct BartDecoderImpl : torch::nn::Module {
  BartDecoderImpl(const Config& c, layers::Embedding shared) : c_(c), embed_tokens(shared) {
    embed_positions = register_module("embed_positions", layers::Embedding(c.max_position_embeddings + kPositionOffset, c.d_model));
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.decoder_layers; ++i) layers->push_back(BartDecoderLayer(c.decoder_layer));
    layernorm_embedding = register_module("layernorm_embedding", layers::LayerNorm(c.d_model, 1e-5));
    if (c.mbart) layer_norm = register_module("layer_norm", layers::LayerNorm(c.d_model, 1e-5));
  }
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& encoder_states,
                        const torch::Tensor& encoder_attention_mask, std::vector<layers::Seq2SeqCache>& caches) {
    auto positions = layers::decoder_positions(input_ids, caches[0]) + kPositionOffset;
    auto h = layernorm_embedding(embed_tokens(input_ids) * c_.embed_scale + embed_positions(positions));
    auto causal = layers::decoder_causal_mask(input_ids, caches[0]);
    auto encoder_mask = layers::additive_padding_mask(encoder_attention_mask);
    for (size_t i = 0; i < layers->size(); ++i)
      h = layers[i]->as<BartDecoderLayerImpl>()->forward(h, causal, encoder_states, encoder_mask, caches[i]);
    return layer_norm ? layer_norm(h) : h;
  }
  Config c_;
  layers::Embedding embed_tokens, embed_positions{nullptr};
  torch::nn::ModuleList layers;
  layers::LayerNorm layernorm_embedding{nullptr}, layer_norm{nullptr};
};
TORCH_MODULE(BartDecoder);

// modeling_bart.BartModel: `shared` is the token embedding of both stacks.
struct BartModelImpl : torch::nn::Module {
  explicit BartModelImpl(const Config& c) {
    shared = register_module("shared", layers::Embedding(c.vocab_size, c.d_model));
    encoder = register_module("encoder", BartEncoder(c, shared));
    decoder = register_module("decoder", BartDecoder(c, shared));
  }
  layers::Embedding shared{nullptr};
  BartEncoder encoder{nullptr};
  BartDecoder decoder{nullptr};
};
TORCH_MODULE(BartModel);

// BartForConditionalGeneration: lm_head tied to `shared`, plus the final_logits_bias buffer [1, vocab].
struct BartForConditionalGenerationImpl : torch::nn::Module {
  explicit BartForConditionalGenerationImpl(const Config& c) {
    model = register_module("model", BartModel(c));
    if (!c.tie_word_embeddings) lm_head = register_module("lm_head", layers::Linear(c.d_model, c.vocab_size, false));
    final_logits_bias = register_parameter("final_logits_bias", layers::placeholder({1, c.vocab_size}), false);
  }
  BartModel model{nullptr};
  layers::Linear lm_head{nullptr};
  torch::Tensor final_logits_bias;
};

}  // namespace
}  // namespace hf2onnx::bart

namespace hf2onnx {

std::shared_ptr<ExportModel> build_bart(const BuildContext& ctx) {
  using namespace bart;
  const bool mbart = ctx.config.get_string("model_type").value_or("bart") == "mbart";
  const Config c = Config::from(ctx.config, mbart);
  auto m = std::make_shared<ExportModel>();
  m->task = ctx.task;
  // The stacks' embed_tokens and lm_head are stored copies of `shared` (tied).
  m->load_rules.ignored_keys = {R"((model\.)?(encoder|decoder)\.embed_tokens\.weight)"};
  if (c.tie_word_embeddings || ctx.task == Task::FeatureExtraction) m->load_rules.ignored_keys.push_back(R"(lm_head\.weight)");
  m->load_rules.optional_prefixes = {"model."};
  layers::Seq2SeqSpec spec = c.seq2seq_spec();

  std::shared_ptr<BartModelImpl> base;
  if (ctx.task == Task::FeatureExtraction) {  // BartModel: the decoder's last_hidden_state
    base = std::make_shared<BartModelImpl>(c);
    m->module = base;
    m->load_rules.ignored_keys.push_back("final_logits_bias");
    spec.first_output = "last_hidden_state";
    spec.first_output_size = c.d_model;
    layers::set_seq2seq_graphs(*m, spec, [base](const auto& ids, const auto& mask) { return base->encoder(ids, mask); },
                               [base](const auto& ids, const auto& states, const auto& mask, auto& caches) {
                                 return base->decoder(ids, states, mask, caches);
                               });
    return m;
  }
  if (ctx.task != Task::Text2TextGeneration)
    throw Error("task '" + std::string(task_name(ctx.task)) + "' is not supported by BART models");
  auto model = std::make_shared<BartForConditionalGenerationImpl>(c);
  m->module = model;
  base = model->model.ptr();
  spec.first_output_size = c.vocab_size;
  layers::set_seq2seq_graphs(
      *m, spec, [base](const auto& ids, const auto& mask) { return base->encoder(ids, mask); },
      [model, base](const auto& ids, const auto& states, const auto& mask, auto& caches) {
        auto h = base->decoder(ids, states, mask, caches);
        const auto& head = model->lm_head ? model->lm_head->weight : base->shared->weight;  // tied by default
        return layers::linear(h, head) + model->final_logits_bias;
      });
  return m;
}

}  // namespace hf2onnx
