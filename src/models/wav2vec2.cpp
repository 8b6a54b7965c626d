// Wav2Vec2 and HuBERT — mirrors transformers/models/{wav2vec2,hubert}/modeling_*.py (v4.32; HuBERT's modules are
// "Copied from" wav2vec2's): Wav2Vec2ForCTC / HubertForCTC (CTC logits) and Wav2Vec2Model / HubertModel
// (last_hidden_state), on raw audio input_values [batch_size, sequence_length] (both dims dynamic); the number of
// output frames follows the input length through the strided convolutions. Inference only: no attention_mask
// (transformers then attends to every frame), no SpecAugment.
#include "hf/tensor_data.h"
#include "hf2onnx/error.h"
#include "models/bart.h"
#include "models/builders.h"
#include "models/layers/common.h"
#include "models/model.h"

namespace hf2onnx::wav2vec2 {
namespace {

struct Config {
  std::vector<int64_t> conv_dim, conv_kernel, conv_stride;
  bool conv_bias, layer_norm_convs;  // feat_extract_norm "layer" (every conv) or "group" (the first only)
  layers::Activation feat_extract_activation, hidden_act;
  int64_t hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, num_conv_pos_embeddings,
      num_conv_pos_embedding_groups, vocab_size;
  double layer_norm_eps;
  bool do_stable_layer_norm, feat_proj_layer_norm;

  // Samples that give `frames` output frames: the receptive field of the conv stack plus one total stride per
  // further frame, plus a few samples that the floor of each stride drops.
  int64_t samples_for(int64_t frames) const {
    int64_t receptive = 1, stride = 1;
    for (size_t i = 0; i < conv_kernel.size(); ++i) {
      receptive += (conv_kernel[i] - 1) * stride;
      stride *= conv_stride[i];
    }
    return receptive + stride * (frames - 1) + stride / 3;
  }

  // Wav2Vec2Config's / HubertConfig's defaults; options that change the graph and are not implemented are refused.
  static Config from(const hf::Config& raw, bool hubert) {
    Config c;
    auto ints = [&](const char* key, std::vector<int64_t> fallback) {
      std::vector<double> v = raw.get_doubles(key);
      if (v.empty()) return fallback;
      if (static_cast<int64_t>(v.size()) > hf::Config::kMaxCount)  // one conv layer per entry
        raw.fail(key, "has more than " + std::to_string(hf::Config::kMaxCount) + " entries");
      std::vector<int64_t> out;
      for (double d : v) {
        if (!(d >= 1 && d <= 2147483647.0) || d != static_cast<double>(static_cast<int64_t>(d)))
          raw.fail(key, "must be a list of positive integers");
        out.push_back(static_cast<int64_t>(d));
      }
      return out;
    };
    c.conv_dim = ints("conv_dim", std::vector<int64_t>(7, 512));
    c.conv_kernel = ints("conv_kernel", {10, 3, 3, 3, 3, 2, 2});
    c.conv_stride = ints("conv_stride", {5, 2, 2, 2, 2, 2, 2});
    const auto layers_n = raw.get_count("num_feat_extract_layers").value_or(static_cast<int64_t>(c.conv_dim.size()));
    if (c.conv_dim.size() != c.conv_kernel.size() || c.conv_dim.size() != c.conv_stride.size() ||
        static_cast<int64_t>(c.conv_dim.size()) != layers_n)
      raw.fail("conv_dim", "conv_dim, conv_kernel and conv_stride must each have num_feat_extract_layers entries");
    c.conv_bias = raw.get_bool("conv_bias").value_or(false);
    const std::string norm = raw.get_string("feat_extract_norm").value_or("group");
    if (norm != "group" && norm != "layer") raw.fail("feat_extract_norm", "must be 'group' or 'layer', got '" + norm + "'");
    c.layer_norm_convs = norm == "layer";
    c.feat_extract_activation = layers::activation_from_config(raw, "feat_extract_activation", "gelu");
    c.hidden_act = layers::activation_from_config(raw, "hidden_act", "gelu");
    c.hidden_size = raw.get_int("hidden_size").value_or(768);
    c.num_hidden_layers = raw.get_count("num_hidden_layers").value_or(12);
    c.num_attention_heads = raw.get_int("num_attention_heads").value_or(12);
    c.intermediate_size = raw.get_int("intermediate_size").value_or(3072);
    c.num_conv_pos_embeddings = raw.get_int("num_conv_pos_embeddings").value_or(128);
    c.num_conv_pos_embedding_groups = raw.get_int("num_conv_pos_embedding_groups").value_or(16);
    c.vocab_size = raw.get_int("vocab_size").value_or(32);
    c.layer_norm_eps = raw.get_double("layer_norm_eps").value_or(1e-5);
    c.do_stable_layer_norm = raw.get_bool("do_stable_layer_norm").value_or(false);
    c.feat_proj_layer_norm = hubert ? raw.get_bool("feat_proj_layer_norm").value_or(true) : true;
    if (c.num_attention_heads <= 0 || c.hidden_size % c.num_attention_heads != 0)
      raw.fail("hidden_size", "must be a multiple of num_attention_heads");
    if (c.num_conv_pos_embedding_groups <= 0 || c.hidden_size % c.num_conv_pos_embedding_groups != 0)
      raw.fail("num_conv_pos_embedding_groups", "must divide hidden_size");
    if (raw.get_bool("add_adapter").value_or(false)) raw.fail("add_adapter", "= true is not supported (the adapter after the encoder)");
    if (raw.has("adapter_attn_dim")) raw.fail("adapter_attn_dim", "is not supported (MMS attention adapters)");
    if (raw.get_bool("conv_pos_batch_norm").value_or(false))
      raw.fail("conv_pos_batch_norm", "= true is not supported (the positional convolution's batch norm)");
    return c;
  }
};

// Wav2Vec2{NoLayerNorm,GroupNorm,LayerNorm}ConvLayer: conv (no padding) → norm → activation. GroupNorm has one
// group per channel (each channel normalised over time) and only in layer 0; the LayerNorm normalises the
// channels of each frame, with nn.LayerNorm's default eps (not layer_norm_eps).
struct ConvLayerImpl : torch::nn::Module {
  ConvLayerImpl(const Config& c, size_t i) : act(c.feat_extract_activation) {
    const int64_t in = i == 0 ? 1 : c.conv_dim[i - 1], out = c.conv_dim[i];
    conv = register_module("conv", layers::Conv1d(in, out, c.conv_kernel[i], c.conv_stride[i], 0, 1, c.conv_bias));
    if (c.layer_norm_convs) layer_norm = register_module("layer_norm", layers::LayerNorm(out, 1e-5));
    else if (i == 0) group_norm = register_module("layer_norm", layers::GroupNorm(out, out, 1e-5));
  }
  torch::Tensor forward(torch::Tensor x) {  // [B, C, T]
    x = conv(x);
    if (layer_norm) x = layer_norm(x.transpose(-2, -1)).transpose(-2, -1);
    if (group_norm) x = group_norm(x);
    return layers::activate(act, x);
  }
  layers::Activation act;
  layers::Conv1d conv{nullptr};
  layers::LayerNorm layer_norm{nullptr};
  layers::GroupNorm group_norm{nullptr};
};
TORCH_MODULE(ConvLayer);

struct FeatureEncoderImpl : torch::nn::Module {  // Wav2Vec2FeatureEncoder: [B, samples] → [B, conv_dim[-1], frames]
  explicit FeatureEncoderImpl(const Config& c) {
    conv_layers = register_module("conv_layers", torch::nn::ModuleList());
    for (size_t i = 0; i < c.conv_dim.size(); ++i) conv_layers->push_back(ConvLayer(c, i));
  }
  torch::Tensor forward(const torch::Tensor& input_values) {
    auto x = input_values.unsqueeze(1);
    for (const auto& l : *conv_layers) x = l->as<ConvLayerImpl>()->forward(x);
    return x;
  }
  torch::nn::ModuleList conv_layers{nullptr};
};
TORCH_MODULE(FeatureEncoder);

struct FeatureProjectionImpl : torch::nn::Module {  // layer_norm (HuBERT: when feat_proj_layer_norm) → projection
  explicit FeatureProjectionImpl(const Config& c) {
    if (c.feat_proj_layer_norm) layer_norm = register_module("layer_norm", layers::LayerNorm(c.conv_dim.back(), c.layer_norm_eps));
    projection = register_module("projection", layers::Linear(c.conv_dim.back(), c.hidden_size));
  }
  torch::Tensor forward(const torch::Tensor& x) { return projection(layer_norm ? layer_norm(x) : x); }
  layers::LayerNorm layer_norm{nullptr};
  layers::Linear projection{nullptr};
};
TORCH_MODULE(FeatureProjection);

// Wav2Vec2PositionalConvEmbedding: a grouped conv over time padded by kernel / 2 on both sides (an even kernel
// makes one frame too many: Wav2Vec2SamePadLayer drops the last), then the activation. The checkpoint stores the
// kernel weight-normed (dim 2): the loader combines weight_g and weight_v into conv.weight (see derived_weight).
struct PositionalConvEmbeddingImpl : torch::nn::Module {
  explicit PositionalConvEmbeddingImpl(const Config& c)
      : act(c.feat_extract_activation), drop_last(c.num_conv_pos_embeddings % 2 == 0) {
    conv = register_module("conv", layers::Conv1d(c.hidden_size, c.hidden_size, c.num_conv_pos_embeddings, 1,
                                                  c.num_conv_pos_embeddings / 2, c.num_conv_pos_embedding_groups));
  }
  torch::Tensor forward(const torch::Tensor& h) {  // [B, T, H] → [B, T, H]
    auto x = conv(h.transpose(1, 2));
    if (drop_last) x = x.slice(2, 0, -1);
    return layers::activate(act, x).transpose(1, 2);
  }
  layers::Activation act;
  bool drop_last;
  layers::Conv1d conv{nullptr};
};
TORCH_MODULE(PositionalConvEmbedding);

struct FeedForwardImpl : torch::nn::Module {  // Wav2Vec2FeedForward: intermediate_dense → hidden_act → output_dense
  explicit FeedForwardImpl(const Config& c) : act(c.hidden_act) {
    intermediate_dense = register_module("intermediate_dense", layers::Linear(c.hidden_size, c.intermediate_size));
    output_dense = register_module("output_dense", layers::Linear(c.intermediate_size, c.hidden_size));
  }
  torch::Tensor forward(const torch::Tensor& x) { return output_dense(layers::activate(act, intermediate_dense(x))); }
  layers::Activation act;
  layers::Linear intermediate_dense{nullptr}, output_dense{nullptr};
};
TORCH_MODULE(FeedForward);

// Wav2Vec2EncoderLayer (post-LN) and Wav2Vec2EncoderLayerStableLayerNorm (pre-LN). The attention is BART's.
struct EncoderLayerImpl : torch::nn::Module {
  explicit EncoderLayerImpl(const Config& c) : pre_ln(c.do_stable_layer_norm) {
    attention = register_module("attention", bart::BartAttention(c.hidden_size, c.num_attention_heads));
    layer_norm = register_module("layer_norm", layers::LayerNorm(c.hidden_size, c.layer_norm_eps));
    feed_forward = register_module("feed_forward", FeedForward(c));
    final_layer_norm = register_module("final_layer_norm", layers::LayerNorm(c.hidden_size, c.layer_norm_eps));
  }
  torch::Tensor forward(torch::Tensor h) {
    if (pre_ln) {
      h = h + attention->forward(layer_norm(h), torch::Tensor());
      return h + feed_forward(final_layer_norm(h));
    }
    h = layer_norm(h + attention->forward(h, torch::Tensor()));
    return final_layer_norm(h + feed_forward(h));
  }
  bool pre_ln;
  bart::BartAttention attention{nullptr};
  layers::LayerNorm layer_norm{nullptr}, final_layer_norm{nullptr};
  FeedForward feed_forward{nullptr};
};
TORCH_MODULE(EncoderLayer);

// Wav2Vec2Encoder: h + positions → layer_norm → layers. Wav2Vec2EncoderStableLayerNorm: h + positions → layers →
// layer_norm.
struct EncoderImpl : torch::nn::Module {
  explicit EncoderImpl(const Config& c) : pre_ln(c.do_stable_layer_norm) {
    pos_conv_embed = register_module("pos_conv_embed", PositionalConvEmbedding(c));
    layer_norm = register_module("layer_norm", layers::LayerNorm(c.hidden_size, c.layer_norm_eps));
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(EncoderLayer(c));
  }
  torch::Tensor forward(torch::Tensor h) {
    h = h + pos_conv_embed(h);
    if (!pre_ln) h = layer_norm(h);
    for (const auto& l : *layers) h = l->as<EncoderLayerImpl>()->forward(h);
    return pre_ln ? layer_norm(h) : h;
  }
  bool pre_ln;
  PositionalConvEmbedding pos_conv_embed{nullptr};
  layers::LayerNorm layer_norm{nullptr};
  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(Encoder);

// Wav2Vec2Model / HubertModel: conv features [B, C, frames] → [B, frames, C] → projection → encoder.
struct ModelImpl : torch::nn::Module {
  explicit ModelImpl(const Config& c) {
    feature_extractor = register_module("feature_extractor", FeatureEncoder(c));
    feature_projection = register_module("feature_projection", FeatureProjection(c));
    encoder = register_module("encoder", Encoder(c));
  }
  torch::Tensor forward(const torch::Tensor& input_values) {
    return encoder(feature_projection(feature_extractor(input_values).transpose(1, 2)));
  }
  FeatureEncoder feature_extractor{nullptr};
  FeatureProjection feature_projection{nullptr};
  Encoder encoder{nullptr};
};
TORCH_MODULE(Model);

// Wav2Vec2ForCTC / HubertForCTC: lm_head over every frame (dropout is inactive at inference).
struct ForCTCImpl : torch::nn::Module {
  ForCTCImpl(const Config& c, const std::string& base) {
    model = register_module(base, Model(c));
    lm_head = register_module("lm_head", layers::Linear(c.hidden_size, c.vocab_size));
  }
  Model model{nullptr};
  layers::Linear lm_head{nullptr};
};

// torch's weight_norm(dim=2) as stored by nn.utils.weight_norm (weight_g, weight_v) or by the parametrization API
// (parametrizations.weight.original0 = g, original1 = v): w = g * v / ‖v‖, the norm over all dims but the kernel
// tap's — torch._weight_norm, what the reference computes at every forward.
LoadRules::Derived derived_weight(const std::string& conv) {
  return {conv + ".weight",
          {{conv + ".weight_g", conv + ".weight_v"},
           {conv + ".parametrizations.weight.original0", conv + ".parametrizations.weight.original1"}},
          [](const std::vector<torch::Tensor>& gv) {
            const torch::Tensor &g = gv[0], &v = gv[1];
            if (v.dim() != 3 || g.dim() != 3 || g.size(0) != 1 || g.size(1) != 1 || g.size(2) != v.size(2))
              throw Error("weight_g must be [1, 1, kernel] and weight_v [out, in / groups, kernel], got " +
                          hf::shape_str(g.sizes().vec()) + " and " + hf::shape_str(v.sizes().vec()));
            return torch::_weight_norm(v, g, 2);
          }};
}

}  // namespace
}  // namespace hf2onnx::wav2vec2

namespace hf2onnx {

std::shared_ptr<ExportModel> build_wav2vec2(const BuildContext& ctx) {
  using namespace wav2vec2;
  const std::string type = ctx.config.model_type();
  const bool hubert = type == "hubert";
  if (!hubert && type != "wav2vec2" && !type.empty())
    ctx.config.fail("model_type", "= '" + type + "': only wav2vec2 and hubert configs are supported here");
  const std::string base = hubert ? "hubert" : "wav2vec2";
  const Config c = Config::from(ctx.config, hubert);
  auto m = std::make_shared<ExportModel>();
  m->task = ctx.task;
  m->graph().inputs = {{"input_values", torch::kFloat, {"batch_size", "sequence_length"}}};
  m->graph().example_inputs = [c](const DimSizes& d) {  // sequence_length counts output frames here
    torch::manual_seed(0);
    return std::vector<torch::Tensor>{torch::randn({d.at("batch_size"), c.samples_for(d.at("sequence_length"))})};
  };
  m->load_rules.ignored_keys = {"(" + base + R"(\.)?masked_spec_embed)"};  // SpecAugment's mask vector (training)
  const std::string conv = "encoder.pos_conv_embed.conv";
  if (ctx.task == Task::FeatureExtraction) {
    auto model = std::make_shared<ModelImpl>(c);
    m->module = model;
    m->load_rules.optional_prefixes = {base + "."};
    m->load_rules.ignored_keys.push_back(R"(lm_head\..*)");
    m->load_rules.derived = {derived_weight(conv)};
    m->graph().outputs = {{"last_hidden_state", torch::kFloat, {"batch_size", "num_frames", std::to_string(c.hidden_size)}}};
    m->graph().forward = [model](const std::vector<torch::Tensor>& in) { return std::vector<torch::Tensor>{model->forward(in[0])}; };
    return m;
  }
  if (ctx.task != Task::AutomaticSpeechRecognition)
    throw Error("task '" + std::string(task_name(ctx.task)) + "' is not supported by " + base + " models");
  auto model = std::make_shared<ForCTCImpl>(c, base);
  m->module = model;
  m->load_rules.derived = {derived_weight(base + "." + conv)};
  m->graph().outputs = {{"logits", torch::kFloat, {"batch_size", "num_frames", std::to_string(c.vocab_size)}}};
  m->graph().forward = [model](const std::vector<torch::Tensor>& in) {
    return std::vector<torch::Tensor>{model->lm_head(model->model->forward(in[0]))};
  };
  return m;
}

}  // namespace hf2onnx
