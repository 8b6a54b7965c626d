// DistilBERT — mirrors transformers/models/distilbert/modeling_distilbert.py (v4.32): DistilBertModel
// and the SequenceClassification, TokenClassification, QuestionAnswering and MaskedLM heads.
// Sinusoidal position embeddings are stored in the checkpoint like learned ones, so both load the same way.
#include <cmath>
#include <limits>

#include "hf2onnx/error.h"
#include "models/builders.h"
#include "models/layers/common.h"
#include "models/layers/dynamic.h"
#include "models/model.h"

namespace hf2onnx::distilbert {
namespace {

constexpr double kLayerNormEps = 1e-12;  // hard-coded in modeling_distilbert

// transformers DistilBertConfig, resolved.
struct Config {
  int64_t vocab_size, dim, n_layers, n_heads, hidden_dim, max_position_embeddings;
  layers::Activation activation;
  static Config from(const hf::Config& raw) {
    Config c;
    c.vocab_size = raw.require_int("vocab_size");
    c.dim = raw.get_int("dim").value_or(768);
    c.n_layers = raw.get_count("n_layers").value_or(6);
    c.n_heads = raw.get_int("n_heads").value_or(12);
    c.hidden_dim = raw.get_int("hidden_dim").value_or(4 * 768);
    c.max_position_embeddings = raw.get_int("max_position_embeddings").value_or(512);
    c.activation = layers::activation_from_config(raw, "activation", "gelu");
    if (c.n_heads <= 0 || c.dim % c.n_heads != 0) raw.fail("dim", "must be a multiple of n_heads");
    return c;
  }
};

// modeling_distilbert.Embeddings: LayerNorm(word + position)
struct EmbeddingsImpl : torch::nn::Module {
  explicit EmbeddingsImpl(const Config& c) {
    word_embeddings = register_module("word_embeddings", layers::Embedding(c.vocab_size, c.dim));
    position_embeddings = register_module("position_embeddings", layers::Embedding(c.max_position_embeddings, c.dim));
    LayerNorm = register_module("LayerNorm", layers::LayerNorm(c.dim, kLayerNormEps));
  }
  torch::Tensor forward(const torch::Tensor& input_ids) {
    return LayerNorm(word_embeddings(input_ids) + position_embeddings(layers::positions_like(input_ids)));
  }
  layers::Embedding word_embeddings{nullptr}, position_embeddings{nullptr};
  layers::LayerNorm LayerNorm{nullptr};
};
TORCH_MODULE(Embeddings);

// modeling_distilbert.MultiHeadSelfAttention: q scaled before the product, masked_fill with finfo.min.
struct MultiHeadSelfAttentionImpl : torch::nn::Module {
  explicit MultiHeadSelfAttentionImpl(const Config& c) : heads(c.n_heads), head_dim(c.dim / c.n_heads) {
    q_lin = register_module("q_lin", layers::Linear(c.dim, c.dim));
    k_lin = register_module("k_lin", layers::Linear(c.dim, c.dim));
    v_lin = register_module("v_lin", layers::Linear(c.dim, c.dim));
    out_lin = register_module("out_lin", layers::Linear(c.dim, c.dim));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask) {
    auto q = layers::split_heads(q_lin(x), heads, head_dim);
    auto k = layers::split_heads(k_lin(x), heads, head_dim);
    auto v = layers::split_heads(v_lin(x), heads, head_dim);
    q = q / std::sqrt(static_cast<double>(head_dim));
    auto scores = torch::matmul(q, k.transpose(2, 3));
    auto masked = mask.eq(0).unsqueeze(1).unsqueeze(2);  // [B, 1, 1, S], broadcast like expand_as(scores)
    scores = scores.masked_fill(masked, std::numeric_limits<float>::lowest());
    auto weights = torch::softmax(scores, -1);
    return out_lin(layers::merge_heads(torch::matmul(weights, v)));
  }
  int64_t heads, head_dim;
  layers::Linear q_lin{nullptr}, k_lin{nullptr}, v_lin{nullptr}, out_lin{nullptr};
};
TORCH_MODULE(MultiHeadSelfAttention);

// modeling_distilbert.FFN
struct FFNImpl : torch::nn::Module {
  explicit FFNImpl(const Config& c) : activation(c.activation) {
    lin1 = register_module("lin1", layers::Linear(c.dim, c.hidden_dim));
    lin2 = register_module("lin2", layers::Linear(c.hidden_dim, c.dim));
  }
  torch::Tensor forward(const torch::Tensor& x) { return lin2(layers::activate(activation, lin1(x))); }
  layers::Activation activation;
  layers::Linear lin1{nullptr}, lin2{nullptr};
};
TORCH_MODULE(FFN);

// modeling_distilbert.TransformerBlock
struct TransformerBlockImpl : torch::nn::Module {
  explicit TransformerBlockImpl(const Config& c) {
    attention = register_module("attention", MultiHeadSelfAttention(c));
    sa_layer_norm = register_module("sa_layer_norm", layers::LayerNorm(c.dim, kLayerNormEps));
    ffn = register_module("ffn", FFN(c));
    output_layer_norm = register_module("output_layer_norm", layers::LayerNorm(c.dim, kLayerNormEps));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask) {
    auto sa_output = sa_layer_norm(attention(x, mask) + x);
    return output_layer_norm(ffn(sa_output) + sa_output);
  }
  MultiHeadSelfAttention attention{nullptr};
  layers::LayerNorm sa_layer_norm{nullptr}, output_layer_norm{nullptr};
  FFN ffn{nullptr};
};
TORCH_MODULE(TransformerBlock);

// modeling_distilbert.DistilBertModel (embeddings + transformer.layer.N)
struct DistilBertModelImpl : torch::nn::Module {
  explicit DistilBertModelImpl(const Config& c) {
    embeddings = register_module("embeddings", Embeddings(c));
    auto transformer = register_module("transformer", std::make_shared<torch::nn::Module>());
    layer = transformer->register_module("layer", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.n_layers; ++i) layer->push_back(TransformerBlock(c));
  }
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
    auto hidden = embeddings(input_ids);
    for (const auto& l : *layer) hidden = l->as<TransformerBlockImpl>()->forward(hidden, attention_mask);
    return hidden;
  }
  Embeddings embeddings{nullptr};
  torch::nn::ModuleList layer{nullptr};
};
TORCH_MODULE(DistilBertModel);

struct DistilBertWithHeadImpl : torch::nn::Module {
  DistilBertWithHeadImpl(const Config& c, Task task, int64_t labels, bool tied) : activation(c.activation) {
    distilbert = register_module("distilbert", DistilBertModel(c));
    if (task == Task::TextClassification) pre_classifier = register_module("pre_classifier", layers::Linear(c.dim, c.dim));
    if (task == Task::TextClassification || task == Task::TokenClassification)
      classifier = register_module("classifier", layers::Linear(c.dim, labels));
    if (task == Task::QuestionAnswering) qa_outputs = register_module("qa_outputs", layers::Linear(c.dim, 2));
    if (task == Task::FillMask) {
      vocab_transform = register_module("vocab_transform", layers::Linear(c.dim, c.dim));
      vocab_layer_norm = register_module("vocab_layer_norm", layers::LayerNorm(c.dim, kLayerNormEps));
      if (tied) {  // vocab_projector.weight is the word embedding matrix; only its bias is its own
        auto projector = register_module("vocab_projector", std::make_shared<torch::nn::Module>());
        vocab_projector_bias = projector->register_parameter("bias", layers::placeholder({c.vocab_size}), false);
      } else {
        vocab_projector = register_module("vocab_projector", layers::Linear(c.dim, c.vocab_size));
        vocab_projector_bias = vocab_projector->bias;
      }
    }
  }
  layers::Activation activation;
  DistilBertModel distilbert{nullptr};
  layers::Linear pre_classifier{nullptr}, classifier{nullptr}, qa_outputs{nullptr}, vocab_transform{nullptr},
      vocab_projector{nullptr};
  layers::LayerNorm vocab_layer_norm{nullptr};
  torch::Tensor vocab_projector_bias;
};

}  // namespace
}  // namespace hf2onnx::distilbert

namespace hf2onnx {

std::shared_ptr<ExportModel> build_distilbert(const BuildContext& ctx) {
  using namespace distilbert;
  const Config c = Config::from(ctx.config);
  auto m = std::make_shared<ExportModel>();
  m->task = ctx.task;
  layers::set_text_encoder_inputs(*m, /*type_vocab_size=*/1, c.vocab_size);
  m->load_rules.ignored_keys = {R"((distilbert\.)?embeddings\.position_ids)"};

  if (ctx.task == Task::FeatureExtraction) {
    auto model = std::make_shared<DistilBertModelImpl>(c);
    m->module = model;
    m->load_rules.optional_prefixes = {"distilbert."};
    m->graph().outputs = {{"last_hidden_state", torch::kFloat, {"batch_size", "sequence_length", ""}}};
    m->graph().forward = [model](const std::vector<torch::Tensor>& in) {
      return std::vector<torch::Tensor>{model->forward(in[0], in[1])};
    };
    return m;
  }

  const bool tied = ctx.config.get_bool("tie_word_embeddings").value_or(true);
  if (ctx.task == Task::QuestionAnswering && layers::num_labels(ctx.config) != 2)
    ctx.config.fail("num_labels", "must be 2 for question answering");
  const int64_t labels = ctx.task == Task::QuestionAnswering ? 2 : layers::num_labels(ctx.config);
  auto model = std::make_shared<DistilBertWithHeadImpl>(c, ctx.task, labels, tied);
  m->module = model;
  if (tied) m->load_rules.ignored_keys.push_back(R"(vocab_projector\.weight)");
  switch (ctx.task) {
    case Task::TextClassification:  // DistilBertForSequenceClassification: classifier(relu(pre_classifier(h[:, 0])))
      m->graph().outputs = {{"logits", torch::kFloat, {"batch_size", ""}}};
      m->graph().forward = [model](const std::vector<torch::Tensor>& in) {
        auto pooled = model->distilbert(in[0], in[1]).select(1, 0);
        return std::vector<torch::Tensor>{model->classifier(torch::relu(model->pre_classifier(pooled)))};
      };
      return m;
    case Task::TokenClassification:  // DistilBertForTokenClassification
      m->graph().outputs = {{"logits", torch::kFloat, {"batch_size", "sequence_length", ""}}};
      m->graph().forward = [model](const std::vector<torch::Tensor>& in) {
        return std::vector<torch::Tensor>{model->classifier(model->distilbert(in[0], in[1]))};
      };
      return m;
    case Task::QuestionAnswering:  // DistilBertForQuestionAnswering
      m->graph().outputs = {{"start_logits", torch::kFloat, {"batch_size", "sequence_length"}},
                    {"end_logits", torch::kFloat, {"batch_size", "sequence_length"}}};
      m->graph().forward = [model](const std::vector<torch::Tensor>& in) {
        auto logits = model->qa_outputs(model->distilbert(in[0], in[1]));
        return std::vector<torch::Tensor>{logits.select(-1, 0), logits.select(-1, 1)};
      };
      return m;
    case Task::FillMask:  // DistilBertForMaskedLM
      m->graph().outputs = {{"logits", torch::kFloat, {"batch_size", "sequence_length", ""}}};
      m->graph().forward = [model](const std::vector<torch::Tensor>& in) {
        auto h = model->vocab_transform(model->distilbert(in[0], in[1]));
        h = model->vocab_layer_norm(layers::activate(model->activation, h));
        const auto& w = model->vocab_projector ? model->vocab_projector->weight
                                               : model->distilbert->embeddings->word_embeddings->weight;
        return std::vector<torch::Tensor>{layers::linear(h, w, model->vocab_projector_bias)};
      };
      return m;
    default:
      break;
  }
  throw Error("task '" + std::string(task_name(ctx.task)) + "' is not supported by DistilBERT models");
}

}  // namespace hf2onnx
