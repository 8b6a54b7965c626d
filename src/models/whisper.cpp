// Whisper — mirrors transformers/models/whisper/modeling_whisper.py (v4.32): WhisperModel and
// WhisperForConditionalGeneration as encoder + decoder graphs with a KV cache. The encoder reads
// input_features [batch, num_mel_bins, 3000] through two Conv1d + GELU and adds its stored positions
// (1500 rows, so the frame count is fixed); neither the encoder nor the cross-attention has a mask.
// Layers are mBART's (pre-LayerNorm) with k_proj without bias.
#include "hf2onnx/error.h"
#include "models/bart.h"
#include "models/builders.h"
#include "models/layers/dynamic.h"
#include "models/model.h"

namespace hf2onnx::whisper {
namespace {

using bart::BartDecoderLayer;
using bart::BartDecoderLayerImpl;
using bart::BartEncoderLayer;
using bart::BartEncoderLayerImpl;

// transformers WhisperConfig, resolved.
struct Config : bart::Sizes {
  int64_t num_mel_bins, max_source_positions, max_target_positions;
  bart::LayerConfig encoder_layer, decoder_layer;
  static Config from(const hf::Config& raw) {
    Config c;
    static_cast<bart::Sizes&>(c) = bart::Sizes::from(raw, {51865, 256, 4, 4, 4, 4, 1536, 1536});
    c.num_mel_bins = raw.get_int("num_mel_bins").value_or(80);
    c.max_source_positions = raw.get_int("max_source_positions").value_or(1500);
    c.max_target_positions = raw.get_int("max_target_positions").value_or(448);
    if (c.max_source_positions * 2 != 3000)
      raw.fail("max_source_positions", "must be 1500 (the encoder reads 3000 frames, halved by conv2)");
    if (raw.get_bool("use_weighted_layer_sum").value_or(false))
      raw.fail("use_weighted_layer_sum", "= true is not supported (audio classification head)");
    c.encoder_layer = c.layer(raw, false, /*pre_layer_norm=*/true, /*k_bias=*/false);
    c.decoder_layer = c.layer(raw, true, /*pre_layer_norm=*/true, /*k_bias=*/false);
    return c;
  }
};

// modeling_whisper.WhisperEncoder
struct WhisperEncoderImpl : torch::nn::Module {
  explicit WhisperEncoderImpl(const Config& c) {
    conv1 = register_module("conv1", layers::Conv1d(c.num_mel_bins, c.d_model, 3, 1, 1));
    conv2 = register_module("conv2", layers::Conv1d(c.d_model, c.d_model, 3, 2, 1));
    embed_positions = register_module("embed_positions", layers::Embedding(c.max_source_positions, c.d_model));
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.encoder_layers; ++i) layers->push_back(BartEncoderLayer(c.encoder_layer));
    layer_norm = register_module("layer_norm", layers::LayerNorm(c.d_model, 1e-5));
  }
  torch::Tensor forward(const torch::Tensor& input_features) {
    auto h = torch::gelu(conv2(torch::gelu(conv1(input_features)))).permute({0, 2, 1});
    // All 1500 stored positions for the 3000 frames the graph declares (one per position; traced at fewer).
    h = h + embed_positions(layers::positions_like(h.select(-1, 0).to(torch::kLong)));
    for (const auto& layer : *layers) h = layer->as<BartEncoderLayerImpl>()->forward(h, torch::Tensor());
    return layer_norm(h);
  }
  layers::Conv1d conv1{nullptr}, conv2{nullptr};
  layers::Embedding embed_positions{nullptr};
  torch::nn::ModuleList layers;
  layers::LayerNorm layer_norm{nullptr};
};
TORCH_MODULE(WhisperEncoder);

// modeling_whisper.WhisperDecoder: learned positions from the past length, no embedding scale.
struct WhisperDecoderImpl : torch::nn::Module {
  explicit WhisperDecoderImpl(const Config& c) {
    embed_tokens = register_module("embed_tokens", layers::Embedding(c.vocab_size, c.d_model));
    embed_positions = register_module("embed_positions", layers::Embedding(c.max_target_positions, c.d_model));
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.decoder_layers; ++i) layers->push_back(BartDecoderLayer(c.decoder_layer));
    layer_norm = register_module("layer_norm", layers::LayerNorm(c.d_model, 1e-5));
  }
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& encoder_states,
                        std::vector<layers::Seq2SeqCache>& caches) {
    auto h = embed_tokens(input_ids) + embed_positions(layers::decoder_positions(input_ids, caches[0]));
    auto causal = layers::decoder_causal_mask(input_ids, caches[0]);
    for (size_t i = 0; i < layers->size(); ++i)
      h = layers[i]->as<BartDecoderLayerImpl>()->forward(h, causal, encoder_states, torch::Tensor(), caches[i]);
    return layer_norm(h);
  }
  layers::Embedding embed_tokens{nullptr}, embed_positions{nullptr};
  torch::nn::ModuleList layers;
  layers::LayerNorm layer_norm{nullptr};
};
TORCH_MODULE(WhisperDecoder);

// modeling_whisper.WhisperModel
struct WhisperModelImpl : torch::nn::Module {
  explicit WhisperModelImpl(const Config& c) {
    encoder = register_module("encoder", WhisperEncoder(c));
    decoder = register_module("decoder", WhisperDecoder(c));
  }
  WhisperEncoder encoder{nullptr};
  WhisperDecoder decoder{nullptr};
};
TORCH_MODULE(WhisperModel);

// WhisperForConditionalGeneration: proj_out tied to the decoder's embed_tokens.
struct WhisperForConditionalGenerationImpl : torch::nn::Module {
  explicit WhisperForConditionalGenerationImpl(const Config& c) { model = register_module("model", WhisperModel(c)); }
  WhisperModel model{nullptr};
};

}  // namespace
}  // namespace hf2onnx::whisper

namespace hf2onnx {

std::shared_ptr<ExportModel> build_whisper(const BuildContext& ctx) {
  using namespace whisper;
  const Config c = Config::from(ctx.config);
  auto m = std::make_shared<ExportModel>();
  m->task = ctx.task;
  m->load_rules.ignored_keys = {R"(proj_out\.weight)"};  // the stored copy of the tied decoder embedding
  m->load_rules.optional_prefixes = {"model."};
  layers::Seq2SeqSpec spec = c.seq2seq_spec();
  spec.num_mel_bins = c.num_mel_bins;

  std::shared_ptr<WhisperModelImpl> base;
  bool lm = ctx.task == Task::AutomaticSpeechRecognition;
  if (ctx.task == Task::FeatureExtraction) {
    base = std::make_shared<WhisperModelImpl>(c);
    m->module = base;
    spec.first_output = "last_hidden_state";
    spec.first_output_size = c.d_model;
  } else if (lm) {
    auto model = std::make_shared<WhisperForConditionalGenerationImpl>(c);
    m->module = model;
    base = model->model.ptr();
    spec.first_output_size = c.vocab_size;
  } else {
    throw Error("task '" + std::string(task_name(ctx.task)) + "' is not supported by Whisper models");
  }
  layers::set_seq2seq_graphs(
      *m, spec, [base](const auto& features, const auto&) { return base->encoder(features); },
      [base, lm](const auto& ids, const auto& states, const auto&, auto& caches) {
        auto h = base->decoder(ids, states, caches);
        return lm ? layers::linear(h, base->decoder->embed_tokens->weight) : h;  // proj_out, tied
      });
  return m;
}

}  // namespace hf2onnx
