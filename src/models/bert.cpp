// BERT — mirrors transformers/models/bert/modeling_bert.py (v4.32): BertModel and the
// SequenceClassification, TokenClassification, QuestionAnswering and MaskedLM heads.
#include "models/bert.h"

#include <cmath>

#include <spdlog/spdlog.h>

#include "hf2onnx/error.h"
#include "models/builders.h"
#include "models/layers/dynamic.h"
#include "models/model.h"

namespace hf2onnx::bert {

Config Config::from(const hf::Config& raw) {
  if (auto pet = raw.get_string("position_embedding_type"); pet && *pet != "absolute")
    raw.fail("position_embedding_type", "= '" + *pet + "' is not supported (only absolute position embeddings)");
  if (raw.get_bool("is_decoder").value_or(false)) raw.fail("is_decoder", "= true is not supported (encoder only)");
  if (raw.get_bool("add_cross_attention").value_or(false))
    raw.fail("add_cross_attention", "= true is not supported (encoder only)");
  Config c;
  c.vocab_size = raw.require_int("vocab_size");
  c.hidden_size = raw.get_int("hidden_size").value_or(768);
  c.num_hidden_layers = raw.get_count("num_hidden_layers").value_or(12);
  c.num_attention_heads = raw.get_int("num_attention_heads").value_or(12);
  c.intermediate_size = raw.get_int("intermediate_size").value_or(3072);
  c.max_position_embeddings = raw.get_int("max_position_embeddings").value_or(512);
  c.type_vocab_size = raw.get_int("type_vocab_size").value_or(2);
  c.pad_token_id = raw.get_int("pad_token_id").value_or(0);
  c.layer_norm_eps = raw.get_double("layer_norm_eps").value_or(1e-12);
  c.hidden_act = layers::activation_from_config(raw, "hidden_act", "gelu");
  if (c.num_attention_heads <= 0 || c.hidden_size % c.num_attention_heads != 0)
    raw.fail("hidden_size", "must be a multiple of num_attention_heads");
  return c;
}

BertSelfAttentionImpl::BertSelfAttentionImpl(const Config& c)
    : heads(c.num_attention_heads), head_dim(c.head_dim()) {
  query = register_module("query", layers::Linear(c.hidden_size, c.hidden_size));
  key = register_module("key", layers::Linear(c.hidden_size, c.hidden_size));
  value = register_module("value", layers::Linear(c.hidden_size, c.hidden_size));
}

torch::Tensor BertSelfAttentionImpl::forward(const torch::Tensor& hidden, const torch::Tensor& additive_mask) {
  auto q = layers::split_heads(query(hidden), heads, head_dim);
  auto k = layers::split_heads(key(hidden), heads, head_dim);
  auto v = layers::split_heads(value(hidden), heads, head_dim);
  auto scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(head_dim));
  scores = scores + additive_mask;
  auto probs = torch::softmax(scores, -1);
  return layers::merge_heads(torch::matmul(probs, v));
}

BertDenseResidualNormImpl::BertDenseResidualNormImpl(int64_t in, int64_t out, double eps) {
  dense = register_module("dense", layers::Linear(in, out));
  LayerNorm = register_module("LayerNorm", layers::LayerNorm(out, eps));
}

torch::Tensor BertDenseResidualNormImpl::forward(const torch::Tensor& x, const torch::Tensor& residual) {
  return LayerNorm(dense(x) + residual);
}

BertAttentionImpl::BertAttentionImpl(const Config& c) {
  self = register_module("self", BertSelfAttention(c));
  output = register_module("output", BertDenseResidualNorm(c.hidden_size, c.hidden_size, c.layer_norm_eps));
}

torch::Tensor BertAttentionImpl::forward(const torch::Tensor& hidden, const torch::Tensor& additive_mask) {
  return output(self(hidden, additive_mask), hidden);
}

BertIntermediateImpl::BertIntermediateImpl(const Config& c) : act(c.hidden_act) {
  dense = register_module("dense", layers::Linear(c.hidden_size, c.intermediate_size));
}

torch::Tensor BertIntermediateImpl::forward(const torch::Tensor& x) { return layers::activate(act, dense(x)); }

BertLayerImpl::BertLayerImpl(const Config& c) {
  attention = register_module("attention", BertAttention(c));
  intermediate = register_module("intermediate", BertIntermediate(c));
  output = register_module("output", BertDenseResidualNorm(c.intermediate_size, c.hidden_size, c.layer_norm_eps));
}

torch::Tensor BertLayerImpl::forward(const torch::Tensor& hidden, const torch::Tensor& additive_mask) {
  auto attention_output = attention(hidden, additive_mask);
  return output(intermediate(attention_output), attention_output);
}

BertEncoderImpl::BertEncoderImpl(const Config& c) {
  layer = register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layer->push_back(BertLayer(c));
}

torch::Tensor BertEncoderImpl::forward(torch::Tensor hidden, const torch::Tensor& additive_mask) {
  for (const auto& l : *layer) hidden = l->as<BertLayerImpl>()->forward(hidden, additive_mask);
  return hidden;
}

BertPoolerImpl::BertPoolerImpl(const Config& c) {
  dense = register_module("dense", layers::Linear(c.hidden_size, c.hidden_size));
}

torch::Tensor BertPoolerImpl::forward(const torch::Tensor& hidden) { return torch::tanh(dense(hidden.select(1, 0))); }

BertLMPredictionHeadImpl::TransformImpl::TransformImpl(const Config& c) {
  dense = register_module("dense", layers::Linear(c.hidden_size, c.hidden_size));
  LayerNorm = register_module("LayerNorm", layers::LayerNorm(c.hidden_size, c.layer_norm_eps));
}

BertLMPredictionHeadImpl::BertLMPredictionHeadImpl(const Config& c, bool tied) : act(c.hidden_act) {
  transform = register_module("transform", std::make_shared<TransformImpl>(c));
  if (!tied) decoder = register_module("decoder", layers::Linear(c.hidden_size, c.vocab_size, false));
  bias = register_parameter("bias", layers::placeholder({c.vocab_size}), false);
}

torch::Tensor BertLMPredictionHeadImpl::forward(const torch::Tensor& hidden, const torch::Tensor& word_embeddings) {
  auto h = transform->LayerNorm(layers::activate(act, transform->dense(hidden)));
  return layers::linear(h, decoder ? decoder->weight : word_embeddings, bias);
}

namespace {

// modeling_bert.BertEmbeddings (absolute positions 0..S-1; token types when the model has them)
struct BertEmbeddingsImpl : torch::nn::Module {
  explicit BertEmbeddingsImpl(const Config& c) {
    word_embeddings = register_module("word_embeddings", layers::Embedding(c.vocab_size, c.hidden_size));
    position_embeddings =
        register_module("position_embeddings", layers::Embedding(c.max_position_embeddings, c.hidden_size));
    token_type_embeddings = register_module("token_type_embeddings", layers::Embedding(c.type_vocab_size, c.hidden_size));
    LayerNorm = register_module("LayerNorm", layers::LayerNorm(c.hidden_size, c.layer_norm_eps));
  }
  torch::Tensor forward(const torch::Tensor& input_ids, torch::Tensor token_type_ids) {
    if (!token_type_ids.defined()) token_type_ids = torch::zeros_like(input_ids);
    auto embeddings = word_embeddings(input_ids) + token_type_embeddings(token_type_ids);
    embeddings = embeddings + position_embeddings(layers::positions_like(input_ids));
    return LayerNorm(embeddings);
  }
  layers::Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  layers::LayerNorm LayerNorm{nullptr};
};
TORCH_MODULE(BertEmbeddings);

// modeling_bert.BertModel
struct BertModelImpl : torch::nn::Module {
  BertModelImpl(const Config& c, bool add_pooling_layer) {
    embeddings = register_module("embeddings", BertEmbeddings(c));
    encoder = register_module("encoder", BertEncoder(c));
    if (add_pooling_layer) pooler = register_module("pooler", BertPooler(c));
  }
  // Returns {last_hidden_state, pooler_output (undefined without a pooler)}.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                                  const torch::Tensor& token_type_ids) {
    auto hidden = embeddings(input_ids, token_type_ids);
    hidden = encoder(hidden, layers::additive_padding_mask(attention_mask));
    return {hidden, pooler ? pooler(hidden) : torch::Tensor()};
  }
  BertEmbeddings embeddings{nullptr};
  BertEncoder encoder{nullptr};
  BertPooler pooler{nullptr};
};
TORCH_MODULE(BertModel);

// The task heads: the root module of each holds `bert` plus the head, as the HF classes do.
struct BertWithHeadImpl : torch::nn::Module {
  BertWithHeadImpl(const Config& c, Task task, int64_t labels, bool tied_decoder) {
    bert = register_module("bert", BertModel(c, task == Task::TextClassification));
    if (task == Task::TextClassification || task == Task::TokenClassification)
      classifier = register_module("classifier", layers::Linear(c.hidden_size, labels));
    if (task == Task::QuestionAnswering) qa_outputs = register_module("qa_outputs", layers::Linear(c.hidden_size, 2));
    if (task == Task::FillMask) {
      auto cls = register_module("cls", std::make_shared<torch::nn::Module>());
      predictions = cls->register_module("predictions", BertLMPredictionHead(c, tied_decoder));
    }
  }
  BertModel bert{nullptr};
  layers::Linear classifier{nullptr}, qa_outputs{nullptr};
  BertLMPredictionHead predictions{nullptr};
};

}  // namespace

}  // namespace hf2onnx::bert

namespace hf2onnx {

std::shared_ptr<ExportModel> build_bert(const BuildContext& ctx) {
  using namespace bert;
  const Config c = Config::from(ctx.config);
  auto m = std::make_shared<ExportModel>();
  m->task = ctx.task;
  auto token_type_ids = layers::set_text_encoder_inputs(*m, c.type_vocab_size, c.vocab_size);
  m->load_rules.ignored_keys = {R"((bert\.)?embeddings\.position_ids)"};

  if (ctx.task == Task::FeatureExtraction) {
    const bool pooler = ctx.has_tensor("pooler.dense.weight");
    if (!pooler) spdlog::warn("the checkpoint has no pooler: exporting last_hidden_state only");
    auto model = std::make_shared<BertModelImpl>(c, pooler);
    m->module = model;
    m->load_rules.optional_prefixes = {"bert."};
    m->graph().outputs = {{"last_hidden_state", torch::kFloat, {"batch_size", "sequence_length", ""}}};
    if (pooler) m->graph().outputs.push_back({"pooler_output", torch::kFloat, {"batch_size", ""}});
    m->graph().forward = [model, token_type_ids](const std::vector<torch::Tensor>& in) {
      auto [hidden, pooled] = model->forward(in[0], in[1], token_type_ids(in));
      return pooled.defined() ? std::vector<torch::Tensor>{hidden, pooled} : std::vector<torch::Tensor>{hidden};
    };
    return m;
  }

  const bool tied = ctx.config.get_bool("tie_word_embeddings").value_or(true);
  const int64_t labels = ctx.task == Task::QuestionAnswering ? 2 : layers::num_labels(ctx.config);
  auto model = std::make_shared<BertWithHeadImpl>(c, ctx.task, labels, tied);
  m->module = model;
  // The stored copies of tied weights: decoder.weight is the word embedding matrix, decoder.bias is predictions.bias.
  m->load_rules.ignored_keys.push_back(tied ? R"(cls\.predictions\.decoder\.(weight|bias))" : R"(cls\.predictions\.decoder\.bias)");
  if (ctx.task != Task::TextClassification) m->load_rules.ignored_keys.push_back(R"(bert\.pooler\..*)");
  switch (ctx.task) {
    case Task::TextClassification:  // BertForSequenceClassification: classifier(dropout(pooler_output))
    case Task::TokenClassification:  // BertForTokenClassification: classifier(dropout(last_hidden_state))
      if (ctx.task == Task::TextClassification) {
        m->graph().outputs = {{"logits", torch::kFloat, {"batch_size", ""}}};
        m->graph().forward = [model, token_type_ids](const std::vector<torch::Tensor>& in) {
          auto pooled = model->bert(in[0], in[1], token_type_ids(in)).second;
          return std::vector<torch::Tensor>{model->classifier(pooled)};
        };
      } else {
        m->graph().outputs = {{"logits", torch::kFloat, {"batch_size", "sequence_length", ""}}};
        m->graph().forward = [model, token_type_ids](const std::vector<torch::Tensor>& in) {
          auto hidden = model->bert(in[0], in[1], token_type_ids(in)).first;
          return std::vector<torch::Tensor>{model->classifier(hidden)};
        };
      }
      return m;
    case Task::QuestionAnswering:  // BertForQuestionAnswering: qa_outputs → split into start / end
      if (layers::num_labels(ctx.config) != 2) ctx.config.fail("num_labels", "must be 2 for question answering");
      m->graph().outputs = {{"start_logits", torch::kFloat, {"batch_size", "sequence_length"}},
                    {"end_logits", torch::kFloat, {"batch_size", "sequence_length"}}};
      m->graph().forward = [model, token_type_ids](const std::vector<torch::Tensor>& in) {
        auto logits = model->qa_outputs(model->bert(in[0], in[1], token_type_ids(in)).first);
        return std::vector<torch::Tensor>{logits.select(-1, 0), logits.select(-1, 1)};
      };
      return m;
    case Task::FillMask:  // BertForMaskedLM: cls.predictions with the decoder tied to the word embeddings
      m->graph().outputs = {{"logits", torch::kFloat, {"batch_size", "sequence_length", ""}}};
      m->graph().forward = [model, token_type_ids](const std::vector<torch::Tensor>& in) {
        auto hidden = model->bert(in[0], in[1], token_type_ids(in)).first;
        return std::vector<torch::Tensor>{
            model->predictions(hidden, model->bert->embeddings->word_embeddings->weight)};
      };
      return m;
    default:
      break;
  }
  throw Error("task '" + std::string(task_name(ctx.task)) + "' is not supported by BERT models");
}

}  // namespace hf2onnx
