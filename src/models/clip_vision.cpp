// CLIP's image tower — mirrors transformers/models/clip/modeling_clip.py (v4.44, eager attention):
// CLIPVisionModelWithProjection (image_embeds, last_hidden_state) and CLIPVisionModel (last_hidden_state,
// pooler_output), from a CLIPVisionConfig. pixel_values [batch, num_channels, image_size, image_size]: the
// learned positions fix the image size.
#include <cmath>

#include "hf2onnx/error.h"
#include "models/builders.h"
#include "models/layers/common.h"
#include "models/layers/dynamic.h"
#include "models/model.h"

namespace hf2onnx::clip {
namespace {

struct VisionConfig {
  int64_t hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, image_size, patch_size, num_channels,
      projection_dim;
  double layer_norm_eps;
  layers::Activation hidden_act;
  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  int64_t num_positions() const { return (image_size / patch_size) * (image_size / patch_size) + 1; }

  static VisionConfig from(const hf::Config& raw) {  // CLIPVisionConfig's defaults
    VisionConfig c;
    c.hidden_size = raw.get_int("hidden_size").value_or(768);
    c.num_hidden_layers = raw.get_int("num_hidden_layers").value_or(12);
    c.num_attention_heads = raw.get_int("num_attention_heads").value_or(12);
    c.intermediate_size = raw.get_int("intermediate_size").value_or(3072);
    c.projection_dim = raw.get_int("projection_dim").value_or(512);
    c.num_channels = raw.get_int("num_channels").value_or(3);
    c.image_size = raw.get_int("image_size").value_or(224);
    c.patch_size = raw.get_int("patch_size").value_or(32);
    c.layer_norm_eps = raw.get_double("layer_norm_eps").value_or(1e-5);
    c.hidden_act = layers::activation_from_config(raw, "hidden_act", "quick_gelu");
    if (c.num_attention_heads <= 0 || c.hidden_size % c.num_attention_heads != 0)
      raw.fail("hidden_size", "must be a multiple of num_attention_heads");
    if (c.patch_size <= 0 || c.image_size % c.patch_size != 0) raw.fail("image_size", "must be a multiple of patch_size");
    return c;
  }
};

// CLIPVisionEmbeddings: class_embedding [H] before the patches (a conv without bias), learned positions.
struct EmbeddingsImpl : torch::nn::Module {
  explicit EmbeddingsImpl(const VisionConfig& c) {
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
TORCH_MODULE(Embeddings);

// CLIPAttention: q scaled by head_dim^-0.5 before the product; no mask for images.
struct AttentionImpl : torch::nn::Module {
  explicit AttentionImpl(const VisionConfig& c) : heads(c.num_attention_heads), head_dim(c.head_dim()) {
    q_proj = register_module("q_proj", layers::Linear(c.hidden_size, c.hidden_size));
    k_proj = register_module("k_proj", layers::Linear(c.hidden_size, c.hidden_size));
    v_proj = register_module("v_proj", layers::Linear(c.hidden_size, c.hidden_size));
    out_proj = register_module("out_proj", layers::Linear(c.hidden_size, c.hidden_size));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto q = layers::split_heads(q_proj(x) * (1.0 / std::sqrt(static_cast<double>(head_dim))), heads, head_dim);
    auto k = layers::split_heads(k_proj(x), heads, head_dim);
    auto v = layers::split_heads(v_proj(x), heads, head_dim);
    auto probs = torch::softmax(torch::matmul(q, k.transpose(-1, -2)), -1);
    return out_proj(layers::merge_heads(torch::matmul(probs, v)));
  }
  int64_t heads, head_dim;
  layers::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {  // CLIPMLP: fc1 → activation → fc2
  explicit MlpImpl(const VisionConfig& c) : act(c.hidden_act) {
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
  explicit EncoderLayerImpl(const VisionConfig& c) {
    self_attn = register_module("self_attn", Attention(c));
    layer_norm1 = register_module("layer_norm1", layers::LayerNorm(c.hidden_size, c.layer_norm_eps));
    mlp = register_module("mlp", Mlp(c));
    layer_norm2 = register_module("layer_norm2", layers::LayerNorm(c.hidden_size, c.layer_norm_eps));
  }
  torch::Tensor forward(torch::Tensor h) {
    h = h + self_attn(layer_norm1(h));
    return h + mlp(layer_norm2(h));
  }
  Attention self_attn{nullptr};
  layers::LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(EncoderLayer);

struct EncoderImpl : torch::nn::Module {
  explicit EncoderImpl(const VisionConfig& c) {
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(EncoderLayer(c));
  }
  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(Encoder);

// CLIPVisionTransformer: embeddings → pre_layrnorm (sic) → encoder = last_hidden_state; its [CLS] row through
// post_layernorm = pooler_output.
struct VisionTransformerImpl : torch::nn::Module {
  explicit VisionTransformerImpl(const VisionConfig& c) {
    embeddings = register_module("embeddings", Embeddings(c));
    pre_layrnorm = register_module("pre_layrnorm", layers::LayerNorm(c.hidden_size, c.layer_norm_eps));
    encoder = register_module("encoder", Encoder(c));
    post_layernorm = register_module("post_layernorm", layers::LayerNorm(c.hidden_size, c.layer_norm_eps));
  }
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& pixel_values) {
    auto h = pre_layrnorm(embeddings(pixel_values));
    for (const auto& l : *encoder->layers) h = l->as<EncoderLayerImpl>()->forward(h);
    return {h, post_layernorm(h.select(1, 0))};
  }
  Embeddings embeddings{nullptr};
  layers::LayerNorm pre_layrnorm{nullptr}, post_layernorm{nullptr};
  Encoder encoder{nullptr};
};
TORCH_MODULE(VisionTransformer);

struct VisionModelImpl : torch::nn::Module {  // CLIPVisionModel(WithProjection)
  VisionModelImpl(const VisionConfig& c, bool projection) {
    vision_model = register_module("vision_model", VisionTransformer(c));
    if (projection) visual_projection = register_module("visual_projection", layers::Linear(c.hidden_size, c.projection_dim, false));
  }
  VisionTransformer vision_model{nullptr};
  layers::Linear visual_projection{nullptr};
};

}  // namespace
}  // namespace hf2onnx::clip

namespace hf2onnx {

std::shared_ptr<ExportModel> build_clip_vision(const BuildContext& ctx) {
  using namespace clip;
  if (auto type = ctx.config.get_string("model_type"); type && *type != "clip_vision_model")
    ctx.config.fail("model_type", "= '" + *type + "': only a CLIPVisionConfig (model_type clip_vision_model) is supported");
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
    return std::vector<torch::Tensor>{torch::randn({d.at("batch_size"), c.num_channels, c.image_size, c.image_size})};
  };
  const std::vector<std::string> hidden_dims = {"batch_size", std::to_string(c.num_positions()), ""};
  if (projection) {  // Optimum's order for CLIPVisionModelWithProjection
    m->graph().outputs = {{"image_embeds", torch::kFloat, {"batch_size", ""}}, {"last_hidden_state", torch::kFloat, hidden_dims}};
    m->graph().forward = [model](const std::vector<torch::Tensor>& in) {
      auto [hidden, pooled] = model->vision_model->forward(in[0]);
      return std::vector<torch::Tensor>{model->visual_projection(pooled), hidden};
    };
  } else {
    m->graph().outputs = {{"last_hidden_state", torch::kFloat, hidden_dims}, {"pooler_output", torch::kFloat, {"batch_size", ""}}};
    m->graph().forward = [model](const std::vector<torch::Tensor>& in) {
      auto [hidden, pooled] = model->vision_model->forward(in[0]);
      return std::vector<torch::Tensor>{hidden, pooled};
    };
  }
  return m;
}

}  // namespace hf2onnx
