// ViT — mirrors transformers/models/vit/modeling_vit.py (v4.44, eager attention): ViTModel and
// ViTForImageClassification. pixel_values [batch, num_channels, image_size, image_size]: the position
// embeddings are learned for that size (interpolate_pos_encoding is off, as in transformers' default).
#include <cmath>

#include <spdlog/spdlog.h>

#include "hf2onnx/error.h"
#include "models/builders.h"
#include "models/layers/common.h"
#include "models/layers/dynamic.h"
#include "models/model.h"

namespace hf2onnx::vit {
namespace {

struct Config {
  int64_t hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, image_size, patch_size, num_channels;
  double layer_norm_eps;
  bool qkv_bias;
  layers::Activation hidden_act;
  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  int64_t num_patches() const { return (image_size / patch_size) * (image_size / patch_size); }

  static Config from(const hf::Config& raw) {
    Config c;
    c.hidden_size = raw.get_int("hidden_size").value_or(768);
    c.num_hidden_layers = raw.get_count("num_hidden_layers").value_or(12);
    c.num_attention_heads = raw.get_int("num_attention_heads").value_or(12);
    c.intermediate_size = raw.get_int("intermediate_size").value_or(3072);
    c.layer_norm_eps = raw.get_double("layer_norm_eps").value_or(1e-12);
    c.qkv_bias = raw.get_bool("qkv_bias").value_or(true);
    c.num_channels = raw.get_int("num_channels").value_or(3);
    // ViTPatchEmbeddings takes an int or a pair; only square images and patches are supported here.
    for (const char* key : {"image_size", "patch_size"})
      if (raw.contains(key) && !raw.get_int(key)) raw.fail(key, "must be one integer (square images and patches)");
    c.image_size = raw.get_int("image_size").value_or(224);
    c.patch_size = raw.get_int("patch_size").value_or(16);
    c.hidden_act = layers::activation_from_config(raw, "hidden_act", "gelu");
    if (c.num_attention_heads <= 0 || c.hidden_size % c.num_attention_heads != 0)
      raw.fail("hidden_size", "must be a multiple of num_attention_heads");
    if (c.patch_size <= 0 || c.image_size % c.patch_size != 0) raw.fail("image_size", "must be a multiple of patch_size");
    return c;
  }
};

// ViTPatchEmbeddings: its `projection` is nn.Conv2d(num_channels, hidden_size, kernel_size=patch, stride=patch).
struct PatchEmbeddingsImpl : torch::nn::Module {
  explicit PatchEmbeddingsImpl(const Config& c) {
    projection = register_module("projection", layers::PatchConv(c.num_channels, c.hidden_size, c.patch_size));
  }
  layers::PatchConv projection{nullptr};
};
TORCH_MODULE(PatchEmbeddings);

// ViTEmbeddings: [CLS] + one token per patch, plus learned positions.
struct EmbeddingsImpl : torch::nn::Module {
  explicit EmbeddingsImpl(const Config& c) {
    cls_token = register_parameter("cls_token", layers::placeholder({1, 1, c.hidden_size}), false);
    position_embeddings =
        register_parameter("position_embeddings", layers::placeholder({1, c.num_patches() + 1, c.hidden_size}), false);
    patch_embeddings = register_module("patch_embeddings", PatchEmbeddings(c));
  }
  torch::Tensor forward(const torch::Tensor& pixel_values) {
    auto patches = patch_embeddings->projection(pixel_values);  // [B, patches, H]
    auto cls = cls_token.expand_as(patches.slice(1, 0, 1));  // [B, 1, H], B read at run time
    return torch::cat({cls, patches}, 1) + position_embeddings;
  }
  torch::Tensor cls_token, position_embeddings;
  PatchEmbeddings patch_embeddings{nullptr};
};
TORCH_MODULE(Embeddings);

// ViTSelfAttention (query/key/value with bias = qkv_bias) and ViTSelfOutput (dense, no residual).
struct SelfAttentionImpl : torch::nn::Module {
  explicit SelfAttentionImpl(const Config& c) : heads(c.num_attention_heads), head_dim(c.head_dim()) {
    query = register_module("query", layers::Linear(c.hidden_size, c.hidden_size, c.qkv_bias));
    key = register_module("key", layers::Linear(c.hidden_size, c.hidden_size, c.qkv_bias));
    value = register_module("value", layers::Linear(c.hidden_size, c.hidden_size, c.qkv_bias));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto q = layers::split_heads(query(x), heads, head_dim);
    auto k = layers::split_heads(key(x), heads, head_dim);
    auto v = layers::split_heads(value(x), heads, head_dim);
    auto probs = torch::softmax(torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(head_dim)), -1);
    return layers::merge_heads(torch::matmul(probs, v));
  }
  int64_t heads, head_dim;
  layers::Linear query{nullptr}, key{nullptr}, value{nullptr};
};
TORCH_MODULE(SelfAttention);

struct DenseImpl : torch::nn::Module {  // ViTSelfOutput / ViTIntermediate / ViTOutput: a module holding `dense`
  DenseImpl(int64_t in, int64_t out) { dense = register_module("dense", layers::Linear(in, out)); }
  layers::Linear dense{nullptr};
};
TORCH_MODULE(Dense);

struct AttentionImpl : torch::nn::Module {
  explicit AttentionImpl(const Config& c) {
    attention = register_module("attention", SelfAttention(c));
    output = register_module("output", Dense(c.hidden_size, c.hidden_size));
  }
  SelfAttention attention{nullptr};
  Dense output{nullptr};
};
TORCH_MODULE(Attention);

// ViTLayer: pre-LayerNorm attention and MLP, each added to its input.
struct LayerImpl : torch::nn::Module {
  explicit LayerImpl(const Config& c) : act(c.hidden_act) {
    attention = register_module("attention", Attention(c));
    intermediate = register_module("intermediate", Dense(c.hidden_size, c.intermediate_size));
    output = register_module("output", Dense(c.intermediate_size, c.hidden_size));
    layernorm_before = register_module("layernorm_before", layers::LayerNorm(c.hidden_size, c.layer_norm_eps));
    layernorm_after = register_module("layernorm_after", layers::LayerNorm(c.hidden_size, c.layer_norm_eps));
  }
  torch::Tensor forward(torch::Tensor h) {
    h = attention->output->dense(attention->attention(layernorm_before(h))) + h;
    return output->dense(layers::activate(act, intermediate->dense(layernorm_after(h)))) + h;
  }
  layers::Activation act;
  Attention attention{nullptr};
  Dense intermediate{nullptr}, output{nullptr};
  layers::LayerNorm layernorm_before{nullptr}, layernorm_after{nullptr};
};
TORCH_MODULE(Layer);

struct EncoderImpl : torch::nn::Module {
  explicit EncoderImpl(const Config& c) {
    layer = register_module("layer", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) layer->push_back(Layer(c));
  }
  torch::nn::ModuleList layer{nullptr};
};
TORCH_MODULE(Encoder);

// ViTModel: embeddings → encoder → layernorm (→ pooler: dense + tanh on [CLS], when the checkpoint has one).
struct ModelImpl : torch::nn::Module {
  ModelImpl(const Config& c, bool pooler) {
    embeddings = register_module("embeddings", Embeddings(c));
    encoder = register_module("encoder", Encoder(c));
    layernorm = register_module("layernorm", layers::LayerNorm(c.hidden_size, c.layer_norm_eps));
    if (pooler) this->pooler = register_module("pooler", Dense(c.hidden_size, c.hidden_size));
  }
  torch::Tensor forward(const torch::Tensor& pixel_values) {
    auto h = embeddings(pixel_values);
    for (const auto& l : *encoder->layer) h = l->as<LayerImpl>()->forward(h);
    return layernorm(h);
  }
  torch::Tensor pool(const torch::Tensor& hidden) { return torch::tanh(pooler->dense(hidden.select(1, 0))); }
  Embeddings embeddings{nullptr};
  Encoder encoder{nullptr};
  layers::LayerNorm layernorm{nullptr};
  Dense pooler{nullptr};
};
TORCH_MODULE(Model);

// ViTForImageClassification: classifier(last_hidden_state[:, 0]) on a ViTModel without pooler.
struct ForImageClassificationImpl : torch::nn::Module {
  ForImageClassificationImpl(const Config& c, int64_t labels) {
    vit = register_module("vit", Model(c, false));
    classifier = register_module("classifier", layers::Linear(c.hidden_size, labels));
  }
  Model vit{nullptr};
  layers::Linear classifier{nullptr};
};
TORCH_MODULE(ForImageClassification);

}  // namespace
}  // namespace hf2onnx::vit

namespace hf2onnx {

std::shared_ptr<ExportModel> build_vit(const BuildContext& ctx) {
  using namespace vit;
  const Config c = Config::from(ctx.config);
  auto m = std::make_shared<ExportModel>();
  m->task = ctx.task;
  m->graph().inputs = {{"pixel_values", torch::kFloat,
                        {"batch_size", std::to_string(c.num_channels), std::to_string(c.image_size), std::to_string(c.image_size)}}};
  m->graph().example_inputs = [c](const DimSizes& d) {
    torch::manual_seed(0);
    return std::vector<torch::Tensor>{torch::randn({d.at("batch_size"), c.num_channels, c.image_size, c.image_size})};
  };
  m->load_rules.ignored_keys = {R"((vit\.)?embeddings\.mask_token)"};  // masked image modeling only

  if (ctx.task == Task::FeatureExtraction) {
    const bool pooler = ctx.has_tensor("pooler.dense.weight") || ctx.has_tensor("vit.pooler.dense.weight");
    auto model = std::make_shared<ModelImpl>(c, pooler);
    m->module = model;
    m->load_rules.optional_prefixes = {"vit."};
    m->load_rules.ignored_keys.push_back(R"(classifier\..*)");
    m->graph().outputs = {{"last_hidden_state", torch::kFloat, {"batch_size", std::to_string(c.num_patches() + 1), ""}}};
    if (pooler) m->graph().outputs.push_back({"pooler_output", torch::kFloat, {"batch_size", ""}});
    m->graph().forward = [model](const std::vector<torch::Tensor>& in) {
      auto hidden = model->forward(in[0]);
      if (!model->pooler) return std::vector<torch::Tensor>{hidden};
      return std::vector<torch::Tensor>{hidden, model->pool(hidden)};
    };
    return m;
  }
  if (ctx.task != Task::ImageClassification)
    throw Error("task '" + std::string(task_name(ctx.task)) + "' is not supported by ViT models");
  auto model = std::make_shared<ForImageClassificationImpl>(c, layers::num_labels(ctx.config));
  m->module = model;
  m->graph().outputs = {{"logits", torch::kFloat, {"batch_size", ""}}};
  m->graph().forward = [model](const std::vector<torch::Tensor>& in) {
    return std::vector<torch::Tensor>{model->classifier(model->vit->forward(in[0]).select(1, 0))};
  };
  return m;
}

}  // namespace hf2onnx
