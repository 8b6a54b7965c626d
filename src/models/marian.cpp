// Marian — mirrors transformers/models/marian/modeling_marian.py (v4.32): MarianModel and MarianMTModel as
// encoder + decoder graphs with a KV cache. BART's post-LayerNorm layers without layernorm_embedding; the
// positions are a fixed sinusoidal table (not interleaved: sines in the first half of the columns), which
// checkpoints usually leave out — computed here exactly as transformers does, or read when stored.
#include <cmath>

#include "hf2onnx/error.h"
#include "models/bart.h"
#include "models/builders.h"
#include "models/layers/dynamic.h"
#include "models/model.h"

namespace hf2onnx::marian {
namespace {

using bart::BartDecoderLayer;
using bart::BartDecoderLayerImpl;
using bart::BartEncoderLayer;
using bart::BartEncoderLayerImpl;

// transformers MarianConfig, resolved.
struct Config : bart::Sizes {
  int64_t decoder_vocab_size, max_position_embeddings;
  double embed_scale;
  bool share_embeddings, tie_word_embeddings;
  bart::LayerConfig encoder_layer, decoder_layer;
  static Config from(const hf::Config& raw) {
    Config c;
    static_cast<bart::Sizes&>(c) = bart::Sizes::from(raw, {58101, 1024, 12, 12, 16, 16, 4096, 4096});
    c.decoder_vocab_size = raw.get_int("decoder_vocab_size").value_or(c.vocab_size);
    c.max_position_embeddings = raw.get_int("max_position_embeddings").value_or(1024);
    c.embed_scale = raw.get_bool("scale_embedding").value_or(false) ? std::sqrt(static_cast<double>(c.d_model)) : 1.0;
    c.share_embeddings = raw.get_bool("share_encoder_decoder_embeddings").value_or(true);
    c.tie_word_embeddings = raw.get_bool("tie_word_embeddings").value_or(true);
    // transformers ties lm_head [decoder_vocab_size, d] to the decoder embedding [vocab_size, d] (4.32 copies
    // `shared` into it), which only works when the sizes agree.
    if (c.tie_word_embeddings && c.decoder_vocab_size != c.vocab_size)
      raw.fail("decoder_vocab_size", "differs from vocab_size while tie_word_embeddings is true");
    c.encoder_layer = c.layer(raw, false, /*pre_layer_norm=*/false);
    c.decoder_layer = c.layer(raw, true, /*pre_layer_norm=*/false);
    return c;
  }
};

// MarianSinusoidalPositionalEmbedding._init_weight, in float64 as numpy computes it, then float32:
// column j < half is sin(p / 10000^(2j/dim)), column half + j is cos of the same angle.
torch::Tensor sinusoidal_table(int64_t positions, int64_t dim) {
  const int64_t half = dim % 2 == 0 ? dim / 2 : dim / 2 + 1;
  auto table = torch::zeros({positions, dim}, torch::kDouble);
  auto a = table.accessor<double, 2>();
  for (int64_t p = 0; p < positions; ++p)
    for (int64_t j = 0; j < dim; ++j) {
      const double angle = static_cast<double>(p) / std::pow(10000.0, 2.0 * static_cast<double>(j / 2) / static_cast<double>(dim));
      if (j % 2 == 0) a[p][j / 2] = std::sin(angle);
      else a[p][half + j / 2] = std::cos(angle);
    }
  return table.to(torch::kFloat);
}

// The positions table: the stored weight when the checkpoint has it, else the computed constant.
struct MarianPositionsImpl : torch::nn::Module {
  MarianPositionsImpl(int64_t positions, int64_t dim, bool stored) {
    weight = stored ? register_parameter("weight", layers::placeholder({positions, dim}), false) : sinusoidal_table(positions, dim);
  }
  torch::Tensor forward(const torch::Tensor& positions) { return torch::embedding(weight, positions); }
  torch::Tensor weight;
};
TORCH_MODULE(MarianPositions);

// modeling_marian.MarianEncoder
struct MarianEncoderImpl : torch::nn::Module {
  MarianEncoderImpl(const Config& c, layers::Embedding tokens, bool stored_positions) : c_(c) {
    embed_tokens = tokens ? tokens : register_module("embed_tokens", layers::Embedding(c.vocab_size, c.d_model));
    embed_positions = register_module("embed_positions", MarianPositions(c.max_position_embeddings, c.d_model, stored_positions));
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.encoder_layers; ++i) layers->push_back(BartEncoderLayer(c.encoder_layer));
  }
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
    auto h = embed_tokens(input_ids) * c_.embed_scale + embed_positions(layers::positions_like(input_ids));
    auto mask = layers::additive_padding_mask(attention_mask);
    for (const auto& layer : *layers) h = layer->as<BartEncoderLayerImpl>()->forward(h, mask);
    return h;
  }
  Config c_;
  layers::Embedding embed_tokens{nullptr};
  MarianPositions embed_positions{nullptr};
  torch::nn::ModuleList layers;
};
TORCH_MODULE(MarianEncoder);

// modeling_marian.MarianDecoder
struct MarianDecoderImpl : torch::nn::Module {
  MarianDecoderImpl(const Config& c, layers::Embedding tokens, bool stored_positions) : c_(c) {
    // Unshared: 4.32 deep-copies the vocab_size embedding into the decoder.
    embed_tokens = tokens ? tokens : register_module("embed_tokens", layers::Embedding(c.vocab_size, c.d_model));
    embed_positions = register_module("embed_positions", MarianPositions(c.max_position_embeddings, c.d_model, stored_positions));
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.decoder_layers; ++i) layers->push_back(BartDecoderLayer(c.decoder_layer));
  }
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& encoder_states,
                        const torch::Tensor& encoder_attention_mask, std::vector<layers::Seq2SeqCache>& caches) {
    auto h = embed_tokens(input_ids) * c_.embed_scale + embed_positions(layers::decoder_positions(input_ids, caches[0]));
    auto causal = layers::decoder_causal_mask(input_ids, caches[0]);
    auto encoder_mask = layers::additive_padding_mask(encoder_attention_mask);
    for (size_t i = 0; i < layers->size(); ++i)
      h = layers[i]->as<BartDecoderLayerImpl>()->forward(h, causal, encoder_states, encoder_mask, caches[i]);
    return h;
  }
  Config c_;
  layers::Embedding embed_tokens{nullptr};
  MarianPositions embed_positions{nullptr};
  torch::nn::ModuleList layers;
};
TORCH_MODULE(MarianDecoder);

// modeling_marian.MarianModel: `shared` when share_encoder_decoder_embeddings, else one embedding per stack.
struct MarianModelImpl : torch::nn::Module {
  MarianModelImpl(const Config& c, const BuildContext& ctx) {
    auto stored = [&](const char* stack) {
      const std::string key = std::string(stack) + ".embed_positions.weight";
      return ctx.has_tensor(key) || ctx.has_tensor("model." + key);
    };
    if (c.share_embeddings) shared = register_module("shared", layers::Embedding(c.vocab_size, c.d_model));
    encoder = register_module("encoder", MarianEncoder(c, shared, stored("encoder")));
    decoder = register_module("decoder", MarianDecoder(c, shared, stored("decoder")));
  }
  layers::Embedding shared{nullptr};
  MarianEncoder encoder{nullptr};
  MarianDecoder decoder{nullptr};
};
TORCH_MODULE(MarianModel);

// MarianMTModel: lm_head [decoder_vocab_size, d] tied to the decoder embedding, plus final_logits_bias.
struct MarianMTModelImpl : torch::nn::Module {
  MarianMTModelImpl(const Config& c, const BuildContext& ctx) {
    model = register_module("model", MarianModel(c, ctx));
    if (!c.tie_word_embeddings) lm_head = register_module("lm_head", layers::Linear(c.d_model, c.decoder_vocab_size, false));
    final_logits_bias = register_parameter("final_logits_bias", layers::placeholder({1, c.decoder_vocab_size}), false);
  }
  MarianModel model{nullptr};
  layers::Linear lm_head{nullptr};
  torch::Tensor final_logits_bias;
};

}  // namespace
}  // namespace hf2onnx::marian

namespace hf2onnx {

std::shared_ptr<ExportModel> build_marian(const BuildContext& ctx) {
  using namespace marian;
  const Config c = Config::from(ctx.config);
  auto m = std::make_shared<ExportModel>();
  m->task = ctx.task;
  m->load_rules.optional_prefixes = {"model."};
  if (c.share_embeddings)  // the stacks' stored copies of `shared`
    m->load_rules.ignored_keys.push_back(R"((model\.)?(encoder|decoder)\.embed_tokens\.weight)");
  if (c.tie_word_embeddings || ctx.task == Task::FeatureExtraction) m->load_rules.ignored_keys.push_back(R"(lm_head\.weight)");
  layers::Seq2SeqSpec spec = c.seq2seq_spec();
  spec.decoder_vocab_size = std::min(c.vocab_size, c.decoder_vocab_size);

  std::shared_ptr<MarianModelImpl> base;
  std::shared_ptr<MarianMTModelImpl> mt;
  if (ctx.task == Task::FeatureExtraction) {
    base = std::make_shared<MarianModelImpl>(c, ctx);
    m->module = base;
    m->load_rules.ignored_keys.push_back("final_logits_bias");
    spec.first_output = "last_hidden_state";
    spec.first_output_size = c.d_model;
  } else if (ctx.task == Task::Text2TextGeneration) {
    mt = std::make_shared<MarianMTModelImpl>(c, ctx);
    m->module = mt;
    base = mt->model.ptr();
    spec.first_output_size = c.decoder_vocab_size;
  } else {
    throw Error("task '" + std::string(task_name(ctx.task)) + "' is not supported by Marian models");
  }
  layers::set_seq2seq_graphs(
      *m, spec, [base](const auto& ids, const auto& mask) { return base->encoder(ids, mask); },
      [base, mt](const auto& ids, const auto& states, const auto& mask, auto& caches) {
        auto h = base->decoder(ids, states, mask, caches);
        if (!mt) return h;
        const auto& head = mt->lm_head ? mt->lm_head->weight : base->decoder->embed_tokens->weight;  // tied by default
        return layers::linear(h, head) + mt->final_logits_bias;
      });
  return m;
}

}  // namespace hf2onnx
