// CLIP — mirrors transformers/models/clip/modeling_clip.py (eager attention; the modules are the same in v4.32,
// which made the clip-text fixture, and v4.44, which made clip-vision):
//  - the text tower: CLIPTextModel (last_hidden_state, pooler_output) and CLIPTextModelWithProjection
//    (text_embeds, last_hidden_state), from a CLIPTextConfig: causal and padding masks, pooled at the EOS token;
//  - the image tower: CLIPVisionModel (last_hidden_state, pooler_output) and CLIPVisionModelWithProjection
//    (image_embeds, last_hidden_state), from a CLIPVisionConfig: pixel_values [batch, channels, image_size,
//    image_size], the learned positions fixing the image size;
//  - CLIPModel (both towers and logit_scale, from a CLIPConfig): logits_per_image, logits_per_text, text_embeds,
//    image_embeds.
#include <cmath>
#include <functional>
#include <limits>

#include "hf2onnx/error.h"
#include "models/builders.h"
#include "models/layers/common.h"
#include "models/layers/dynamic.h"
#include "models/model.h"

namespace hf2onnx::clip {
namespace {

// What both towers' encoders read from their config.
struct EncoderConfig {
  int64_t hidden_size, num_hidden_layers, num_attention_heads, intermediate_size;
  double layer_norm_eps;
  layers::Activation hidden_act;
  int64_t head_dim() const { return hidden_size / num_attention_heads; }

  // CLIPTextConfig's and CLIPVisionConfig's defaults differ only in the sizes passed here.
  static EncoderConfig from(const hf::Config& raw, int64_t hidden, int64_t layers, int64_t heads, int64_t intermediate) {
    EncoderConfig c;
    c.hidden_size = raw.get_int("hidden_size").value_or(hidden);
    c.num_hidden_layers = raw.get_count("num_hidden_layers").value_or(layers);
    c.num_attention_heads = raw.get_int("num_attention_heads").value_or(heads);
    c.intermediate_size = raw.get_int("intermediate_size").value_or(intermediate);
    c.layer_norm_eps = raw.get_double("layer_norm_eps").value_or(1e-5);
    c.hidden_act = layers::activation_from_config(raw, "hidden_act", "quick_gelu");
    if (c.num_attention_heads <= 0 || c.hidden_size % c.num_attention_heads != 0)
      raw.fail("hidden_size", "must be a multiple of num_attention_heads");
    return c;
  }
};

struct TextConfig : EncoderConfig {
  int64_t vocab_size, max_position_embeddings, eos_token_id, projection_dim;
  static TextConfig from(const hf::Config& raw) {  // CLIPTextConfig's defaults
    TextConfig c;
    static_cast<EncoderConfig&>(c) = EncoderConfig::from(raw, 512, 12, 8, 2048);
    c.vocab_size = raw.get_int("vocab_size").value_or(49408);
    c.max_position_embeddings = raw.get_int("max_position_embeddings").value_or(77);
    c.eos_token_id = raw.get_int("eos_token_id").value_or(49407);
    c.projection_dim = raw.get_int("projection_dim").value_or(512);
    return c;
  }
};

struct VisionConfig : EncoderConfig {
  int64_t image_size, patch_size, num_channels, projection_dim;
  int64_t num_positions() const { return (image_size / patch_size) * (image_size / patch_size) + 1; }
  static VisionConfig from(const hf::Config& raw) {  // CLIPVisionConfig's defaults
    VisionConfig c;
    static_cast<EncoderConfig&>(c) = EncoderConfig::from(raw, 768, 12, 12, 3072);
    c.projection_dim = raw.get_int("projection_dim").value_or(512);
    c.num_channels = raw.get_int("num_channels").value_or(3);
    c.image_size = raw.get_int("image_size").value_or(224);
    c.patch_size = raw.get_int("patch_size").value_or(32);
    if (c.patch_size <= 0 || c.image_size % c.patch_size != 0) raw.fail("image_size", "must be a multiple of patch_size");
    return c;
  }
};

// CLIPAttention: q scaled by head_dim^-0.5 before the product. The text tower adds its causal mask and then its
// padding mask to the scores, two separate additions as transformers does (a position masked by both gets
// finfo.min twice, i.e. -inf, which matters only for a row whose every key is masked).
struct AttentionImpl : torch::nn::Module {
  explicit AttentionImpl(const EncoderConfig& c) : heads(c.num_attention_heads), head_dim(c.head_dim()) {
    q_proj = register_module("q_proj", layers::Linear(c.hidden_size, c.hidden_size));
    k_proj = register_module("k_proj", layers::Linear(c.hidden_size, c.hidden_size));
    v_proj = register_module("v_proj", layers::Linear(c.hidden_size, c.hidden_size));
    out_proj = register_module("out_proj", layers::Linear(c.hidden_size, c.hidden_size));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& causal_mask, const torch::Tensor& padding_mask) {
    auto q = layers::split_heads(q_proj(x) * (1.0 / std::sqrt(static_cast<double>(head_dim))), heads, head_dim);
    auto k = layers::split_heads(k_proj(x), heads, head_dim);
    auto v = layers::split_heads(v_proj(x), heads, head_dim);
    auto scores = torch::matmul(q, k.transpose(-1, -2));
    if (causal_mask.defined()) scores = scores + causal_mask;
    if (padding_mask.defined()) scores = scores + padding_mask;
    return out_proj(layers::merge_heads(torch::matmul(torch::softmax(scores, -1), v)));
  }
  int64_t heads, head_dim;
  layers::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {  // CLIPMLP: fc1 → activation → fc2
  explicit MlpImpl(const EncoderConfig& c) : act(c.hidden_act) {
    fc1 = register_module("fc1", layers::Linear(c.hidden_size, c.intermediate_size));
    fc2 = register_module("fc2", layers::Linear(c.intermediate_size, c.hidden_size));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2(layers::activate(act, fc1(x))); }
  layers::Activation act;
  layers::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

// CLIPEncoderLayer: pre-LayerNorm attention and MLP, each added to its input.
struct EncoderLayerImpl : torch::nn::Module {
  explicit EncoderLayerImpl(const EncoderConfig& c) {
    self_attn = register_module("self_attn", Attention(c));
    layer_norm1 = register_module("layer_norm1", layers::LayerNorm(c.hidden_size, c.layer_norm_eps));
    mlp = register_module("mlp", Mlp(c));
    layer_norm2 = register_module("layer_norm2", layers::LayerNorm(c.hidden_size, c.layer_norm_eps));
  }
  torch::Tensor forward(torch::Tensor h, const torch::Tensor& causal_mask, const torch::Tensor& padding_mask) {
    h = h + self_attn(layer_norm1(h), causal_mask, padding_mask);
    return h + mlp(layer_norm2(h));
  }
  Attention self_attn{nullptr};
  layers::LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(EncoderLayer);

struct EncoderImpl : torch::nn::Module {
  explicit EncoderImpl(const EncoderConfig& c) {
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(EncoderLayer(c));
  }
  // `states`, when given, receives the input and every layer's output (transformers' hidden_states).
  torch::Tensor forward(torch::Tensor h, const torch::Tensor& causal_mask = {}, const torch::Tensor& padding_mask = {},
                        std::vector<torch::Tensor>* states = nullptr) {
    for (const auto& l : *layers) {
      if (states) states->push_back(h);
      h = l->as<EncoderLayerImpl>()->forward(h, causal_mask, padding_mask);
    }
    if (states) states->push_back(h);
    return h;
  }
  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(Encoder);

// --- the text tower

// CLIPTextEmbeddings: token + learned position (position_ids = 0..S-1, at most max_position_embeddings).
struct TextEmbeddingsImpl : torch::nn::Module {
  explicit TextEmbeddingsImpl(const TextConfig& c) {
    token_embedding = register_module("token_embedding", layers::Embedding(c.vocab_size, c.hidden_size));
    position_embedding = register_module("position_embedding", layers::Embedding(c.max_position_embeddings, c.hidden_size));
  }
  torch::Tensor forward(const torch::Tensor& input_ids) {
    return token_embedding(input_ids) + position_embedding(layers::positions_like(input_ids));
  }
  layers::Embedding token_embedding{nullptr}, position_embedding{nullptr};
};
TORCH_MODULE(TextEmbeddings);

// CLIPTextTransformer: embeddings → encoder (causal mask: finfo.min above the diagonal; padding mask as BERT's)
// → final_layer_norm = last_hidden_state. pooler_output is one row per sequence: with the legacy eos_token_id 2
// the position of the largest id (where openai's vocabularies keep end-of-text), otherwise the first position
// holding eos_token_id (position 0 when there is none: argmax of all zeros).
struct TextTransformerImpl : torch::nn::Module {
  explicit TextTransformerImpl(const TextConfig& c) : eos_token_id(c.eos_token_id) {
    embeddings = register_module("embeddings", TextEmbeddings(c));
    encoder = register_module("encoder", Encoder(c));
    final_layer_norm = register_module("final_layer_norm", layers::LayerNorm(c.hidden_size, c.layer_norm_eps));
  }
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                                  std::vector<torch::Tensor>* states = nullptr) {
    auto causal = layers::causal_visible(input_ids, input_ids).logical_not().to(torch::kFloat) *
                  std::numeric_limits<float>::lowest();  // [B, 1, S, S]
    auto padding = attention_mask.defined() ? layers::additive_padding_mask(attention_mask) : torch::Tensor();
    auto h = final_layer_norm(encoder(embeddings(input_ids), causal, padding, states));
    auto ids = input_ids.to(torch::kInt);  // ArgMax takes int32 (ONNX Runtime has no int64 kernel), as transformers casts
    auto pooled_at = eos_token_id == 2 ? ids.argmax(-1) : ids.eq(eos_token_id).to(torch::kInt).argmax(-1);  // [B]
    return {h, gather_rows(h, pooled_at)};
  }
  // h [B, S, H], index [B] → h[b, index[b]] [B, H], as one Gather over the flattened rows.
  static torch::Tensor gather_rows(const torch::Tensor& h, const torch::Tensor& index) {
    auto seq = torch::ones_like(h.select(2, 0)).sum(-1).to(torch::kLong);  // [B] = S
    auto row = layers::positions_like(index.unsqueeze(0)).squeeze(0);      // [B] = 0..B-1
    return h.flatten(0, 1).index_select(0, row * seq + index);
  }
  int64_t eos_token_id;
  TextEmbeddings embeddings{nullptr};
  Encoder encoder{nullptr};
  layers::LayerNorm final_layer_norm{nullptr};
};
TORCH_MODULE(TextTransformer);

// --- the image tower

// CLIPVisionEmbeddings: class_embedding [H] before the patches (a conv without bias), learned positions.
struct VisionEmbeddingsImpl : torch::nn::Module {
  explicit VisionEmbeddingsImpl(const VisionConfig& c) {
    class_embedding = register_parameter("class_embedding", layers::placeholder({c.hidden_size}), false);
    patch_embedding = register_module("patch_embedding", layers::PatchConv(c.num_channels, c.hidden_size, c.patch_size, false));
    position_embedding = register_module("position_embedding", layers::Embedding(c.num_positions(), c.hidden_size));
  }
  torch::Tensor forward(const torch::Tensor& pixel_values) {
    auto patches = patch_embedding(pixel_values);  // [B, patches, H]
    auto cls = class_embedding.view({1, 1, -1}).expand_as(patches.slice(1, 0, 1));
    return torch::cat({cls, patches}, 1) + position_embedding->weight;  // position_ids = arange(num_positions)
  }
  torch::Tensor class_embedding;
  layers::PatchConv patch_embedding{nullptr};
  layers::Embedding position_embedding{nullptr};
};
TORCH_MODULE(VisionEmbeddings);

// CLIPVisionTransformer: embeddings → pre_layrnorm (sic) → encoder = last_hidden_state; its [CLS] row through
// post_layernorm = pooler_output.
struct VisionTransformerImpl : torch::nn::Module {
  explicit VisionTransformerImpl(const VisionConfig& c) {
    embeddings = register_module("embeddings", VisionEmbeddings(c));
    pre_layrnorm = register_module("pre_layrnorm", layers::LayerNorm(c.hidden_size, c.layer_norm_eps));
    encoder = register_module("encoder", Encoder(c));
    post_layernorm = register_module("post_layernorm", layers::LayerNorm(c.hidden_size, c.layer_norm_eps));
  }
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& pixel_values) {
    auto h = encoder(pre_layrnorm(embeddings(pixel_values)));
    return {h, post_layernorm(h.select(1, 0))};
  }
  VisionEmbeddings embeddings{nullptr};
  layers::LayerNorm pre_layrnorm{nullptr}, post_layernorm{nullptr};
  Encoder encoder{nullptr};
};
TORCH_MODULE(VisionTransformer);

// --- the exported models (module names = checkpoint keys)

struct TextModelImpl : torch::nn::Module {  // CLIPTextModel(WithProjection)
  TextModelImpl(const TextConfig& c, bool projection) {
    text_model = register_module("text_model", TextTransformer(c));
    if (projection) text_projection = register_module("text_projection", layers::Linear(c.hidden_size, c.projection_dim, false));
  }
  TextTransformer text_model{nullptr};
  layers::Linear text_projection{nullptr};
};

struct VisionModelImpl : torch::nn::Module {  // CLIPVisionModel(WithProjection)
  VisionModelImpl(const VisionConfig& c, bool projection) {
    vision_model = register_module("vision_model", VisionTransformer(c));
    if (projection) visual_projection = register_module("visual_projection", layers::Linear(c.hidden_size, c.projection_dim, false));
  }
  VisionTransformer vision_model{nullptr};
  layers::Linear visual_projection{nullptr};
};

// CLIPModel: both towers projected to CLIPConfig.projection_dim and L2-normalised; logits_per_text = text_embeds ·
// image_embedsᵀ · exp(logit_scale), logits_per_image its transpose.
struct ModelImpl : torch::nn::Module {
  ModelImpl(const TextConfig& t, const VisionConfig& v, int64_t projection_dim) {
    text_model = register_module("text_model", TextTransformer(t));
    vision_model = register_module("vision_model", VisionTransformer(v));
    visual_projection = register_module("visual_projection", layers::Linear(v.hidden_size, projection_dim, false));
    text_projection = register_module("text_projection", layers::Linear(t.hidden_size, projection_dim, false));
    logit_scale = register_parameter("logit_scale", layers::placeholder({}), false);
  }
  // → logits_per_image, logits_per_text, text_embeds, image_embeds (Optimum's order)
  std::vector<torch::Tensor> forward(const torch::Tensor& input_ids, const torch::Tensor& pixel_values,
                                     const torch::Tensor& attention_mask) {
    auto image_embeds = normalized(visual_projection(vision_model->forward(pixel_values).second));
    auto text_embeds = normalized(text_projection(text_model->forward(input_ids, attention_mask).second));
    auto logits_per_text = torch::matmul(text_embeds, image_embeds.t()) * logit_scale.exp();
    return {logits_per_text.t(), logits_per_text, text_embeds, image_embeds};
  }
  static torch::Tensor normalized(const torch::Tensor& x) {  // x / x.norm(p=2, dim=-1, keepdim=True)
    return x / x.pow(2).sum(std::vector<int64_t>{-1}, true).sqrt();
  }
  TextTransformer text_model{nullptr};
  VisionTransformer vision_model{nullptr};
  layers::Linear visual_projection{nullptr}, text_projection{nullptr};
  torch::Tensor logit_scale;
};

hf::Config sub_config(const hf::Config& config, const std::string& key) {
  auto sub = config.get_object(key);
  if (!sub) config.fail(key, "is missing: a CLIPConfig nests text_config and vision_config");
  return *sub;
}

void expect_model_type(const hf::Config& config, const std::string& type, const std::string& config_class) {
  if (auto t = config.get_string("model_type"); t && *t != type)
    config.fail("model_type", "= '" + *t + "': only a " + config_class + " (model_type " + type + ") is supported here");
}

// A tower's outputs as Optimum names and orders them: with a projection (embeds_name, last_hidden_state), the
// projected pooled row first; without, (last_hidden_state, pooler_output); then `hidden_states` outputs
// hidden_states.0..N-1 (every layer's input and the last layer's output, when the tower collects them). `tower` maps
// the graph's inputs to (last_hidden_state, pooled), filling `states` when it is given.
using Tower = std::function<std::pair<torch::Tensor, torch::Tensor>(const std::vector<torch::Tensor>&,
                                                                    std::vector<torch::Tensor>* states)>;
void set_tower_outputs(ExportGraph& g, const Tower& tower, layers::Linear projection, const std::string& embeds_name,
                       const std::vector<std::string>& hidden_dims, int64_t hidden_states = 0) {
  if (projection)
    g.outputs = {{embeds_name, torch::kFloat, {"batch_size", ""}}, {"last_hidden_state", torch::kFloat, hidden_dims}};
  else
    g.outputs = {{"last_hidden_state", torch::kFloat, hidden_dims}, {"pooler_output", torch::kFloat, {"batch_size", ""}}};
  for (int64_t i = 0; i < hidden_states; ++i)
    g.outputs.push_back({"hidden_states." + std::to_string(i), torch::kFloat, hidden_dims});
  g.forward = [tower, projection, hidden_states](const std::vector<torch::Tensor>& in) mutable {
    std::vector<torch::Tensor> states;
    auto [hidden, pooled] = tower(in, hidden_states > 0 ? &states : nullptr);
    std::vector<torch::Tensor> out = projection ? std::vector<torch::Tensor>{projection->forward(pooled), hidden}
                                                : std::vector<torch::Tensor>{hidden, pooled};
    out.insert(out.end(), states.begin(), states.end());
    return out;
  };
}

std::vector<torch::Tensor> example_pixels(const VisionConfig& c, int64_t batch) {
  return {torch::randn({batch, c.num_channels, c.image_size, c.image_size})};
}

}  // namespace
}  // namespace hf2onnx::clip

namespace hf2onnx {

std::shared_ptr<ExportModel> build_clip_text(const BuildContext& ctx) {
  using namespace clip;
  expect_model_type(ctx.config, "clip_text_model", "CLIPTextConfig");
  const TextConfig c = TextConfig::from(ctx.config);
  if (ctx.task != Task::FeatureExtraction && ctx.task != Task::TextToImage)
    throw Error("task '" + std::string(task_name(ctx.task)) + "' is not supported by CLIP text models");
  const bool projection = ctx.config.architecture() == "CLIPTextModelWithProjection";
  auto model = std::make_shared<TextModelImpl>(c, projection);
  auto m = std::make_shared<ExportModel>();
  m->task = ctx.task;
  m->module = model;
  m->load_rules.ignored_keys = {R"(text_model\.embeddings\.position_ids)"};
  if (!projection) m->load_rules.ignored_keys.push_back(R"(text_projection\..*)");  // CLIPTextModel from a WithProjection checkpoint
  const std::vector<std::string> hidden_dims = {"batch_size", "sequence_length", ""};
  if (ctx.task == Task::TextToImage) {
    // A diffusers pipeline's text encoder, as Optimum exports it: input_ids only (the pipelines pass no mask), and
    // every layer's hidden states after the usual outputs (hidden_states.0 = the embeddings; for clip_skip and
    // SDXL, which read the penultimate layer).
    m->graph().inputs = {{"input_ids", torch::kLong, {"batch_size", "sequence_length"}}};
    set_tower_outputs(
        m->graph(),
        [model](const std::vector<torch::Tensor>& in, std::vector<torch::Tensor>* states) {
          return model->text_model->forward(in[0], {}, states);
        },
        model->text_projection, "text_embeds", hidden_dims, c.num_hidden_layers + 1);
  } else {
    m->graph().inputs = {{"input_ids", torch::kLong, {"batch_size", "sequence_length"}},
                         {"attention_mask", torch::kLong, {"batch_size", "sequence_length"}}};
    set_tower_outputs(
        m->graph(),
        [model](const std::vector<torch::Tensor>& in, std::vector<torch::Tensor>*) {
          return model->text_model->forward(in[0], in[1]);
        },
        model->text_projection, "text_embeds", hidden_dims);
  }
  m->graph().example_inputs = [specs = m->graph().inputs, c](const DimSizes& d) {
    return layers::make_text_inputs(specs, c.vocab_size, d);
  };
  return m;
}

std::shared_ptr<ExportModel> build_clip_vision(const BuildContext& ctx) {
  using namespace clip;
  expect_model_type(ctx.config, "clip_vision_model", "CLIPVisionConfig");
  const VisionConfig c = VisionConfig::from(ctx.config);
  if (ctx.task != Task::FeatureExtraction)
    throw Error("task '" + std::string(task_name(ctx.task)) + "' is not supported by CLIP vision models");
  const bool projection = ctx.config.architecture() == "CLIPVisionModelWithProjection";
  auto model = std::make_shared<VisionModelImpl>(c, projection);
  auto m = std::make_shared<ExportModel>();
  m->task = ctx.task;
  m->module = model;
  m->load_rules.ignored_keys = {R"(vision_model\.embeddings\.position_ids)"};
  if (!projection) m->load_rules.ignored_keys.push_back(R"(visual_projection\..*)");  // CLIPVisionModel from a WithProjection checkpoint
  const std::string s = std::to_string(c.image_size);
  m->graph().inputs = {{"pixel_values", torch::kFloat, {"batch_size", std::to_string(c.num_channels), s, s}}};
  m->graph().example_inputs = [c](const DimSizes& d) {
    torch::manual_seed(0);
    return example_pixels(c, d.at("batch_size"));
  };
  set_tower_outputs(
      m->graph(),
      [model](const std::vector<torch::Tensor>& in, std::vector<torch::Tensor>*) { return model->vision_model->forward(in[0]); },
      model->visual_projection, "image_embeds", {"batch_size", std::to_string(c.num_positions()), ""});
  return m;
}

// CLIPModel: text and images in one graph (Optimum's CLIPOnnxConfig: separate text and image batches).
std::shared_ptr<ExportModel> build_clip(const BuildContext& ctx) {
  using namespace clip;
  expect_model_type(ctx.config, "clip", "CLIPConfig");
  for (const char* legacy : {"text_config_dict", "vision_config_dict"})  // transformers merges these over the nested configs
    if (ctx.config.has(legacy)) ctx.config.fail(legacy, "is not supported (a legacy CLIPConfig key): use text_config / vision_config");
  const TextConfig t = TextConfig::from(sub_config(ctx.config, "text_config"));
  const VisionConfig v = VisionConfig::from(sub_config(ctx.config, "vision_config"));
  const int64_t projection_dim = ctx.config.get_int("projection_dim").value_or(512);
  if (ctx.task != Task::ZeroShotImageClassification && ctx.task != Task::FeatureExtraction)
    throw Error("task '" + std::string(task_name(ctx.task)) + "' is not supported by CLIPModel");
  auto model = std::make_shared<ModelImpl>(t, v, projection_dim);
  auto m = std::make_shared<ExportModel>();
  m->task = ctx.task;
  m->module = model;
  m->load_rules.ignored_keys = {R"((text|vision)_model\.embeddings\.position_ids)"};
  const std::string s = std::to_string(v.image_size);
  m->graph().inputs = {{"input_ids", torch::kLong, {"text_batch_size", "sequence_length"}},
                       {"pixel_values", torch::kFloat, {"image_batch_size", std::to_string(v.num_channels), s, s}},
                       {"attention_mask", torch::kLong, {"text_batch_size", "sequence_length"}}};
  m->graph().example_inputs = [specs = m->graph().inputs, t, v](const DimSizes& d) {
    auto ids = layers::make_text_inputs({specs[0], specs[2]}, t.vocab_size, d);
    auto pixels = example_pixels(v, d.at("image_batch_size"));
    return std::vector<torch::Tensor>{ids[0], pixels[0], ids[1]};
  };
  m->graph().outputs = {{"logits_per_image", torch::kFloat, {"image_batch_size", "text_batch_size"}},
                        {"logits_per_text", torch::kFloat, {"text_batch_size", "image_batch_size"}},
                        {"text_embeds", torch::kFloat, {"text_batch_size", std::to_string(projection_dim)}},
                        {"image_embeds", torch::kFloat, {"image_batch_size", std::to_string(projection_dim)}}};
  m->graph().forward = [model](const std::vector<torch::Tensor>& in) { return model->forward(in[0], in[1], in[2]); };
  return m;
}

}  // namespace hf2onnx
