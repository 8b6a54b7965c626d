// RoBERTa and XLM-RoBERTa — mirrors transformers/models/roberta/modeling_roberta.py (v4.32);
// XLMRoberta* are the same classes. The encoder and pooler are BERT's ("Copied from" in transformers).
#include <spdlog/spdlog.h>

#include "hf2onnx/error.h"
#include "models/bert.h"
#include "models/builders.h"
#include "models/layers/dynamic.h"
#include "models/model.h"

namespace hf2onnx::roberta {
namespace {

using bert::Config;

// modeling_roberta.RobertaEmbeddings: positions count only non-padding tokens and start after padding_idx.
struct RobertaEmbeddingsImpl : torch::nn::Module {
  explicit RobertaEmbeddingsImpl(const Config& c) : padding_idx(c.pad_token_id) {
    word_embeddings = register_module("word_embeddings", layers::Embedding(c.vocab_size, c.hidden_size));
    position_embeddings =
        register_module("position_embeddings", layers::Embedding(c.max_position_embeddings, c.hidden_size));
    token_type_embeddings = register_module("token_type_embeddings", layers::Embedding(c.type_vocab_size, c.hidden_size));
    LayerNorm = register_module("LayerNorm", layers::LayerNorm(c.hidden_size, c.layer_norm_eps));
  }
  torch::Tensor forward(const torch::Tensor& input_ids, torch::Tensor token_type_ids) {
    auto position_ids = layers::positions_skipping_padding(input_ids, padding_idx);
    if (!token_type_ids.defined()) token_type_ids = torch::zeros_like(input_ids);
    auto embeddings = word_embeddings(input_ids) + token_type_embeddings(token_type_ids);
    embeddings = embeddings + position_embeddings(position_ids);
    return LayerNorm(embeddings);
  }
  int64_t padding_idx;
  layers::Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  layers::LayerNorm LayerNorm{nullptr};
};
TORCH_MODULE(RobertaEmbeddings);

// modeling_roberta.RobertaModel
struct RobertaModelImpl : torch::nn::Module {
  RobertaModelImpl(const Config& c, bool add_pooling_layer) {
    embeddings = register_module("embeddings", RobertaEmbeddings(c));
    encoder = register_module("encoder", bert::BertEncoder(c));
    if (add_pooling_layer) pooler = register_module("pooler", bert::BertPooler(c));
  }
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                                  const torch::Tensor& token_type_ids) {
    auto hidden = embeddings(input_ids, token_type_ids);
    hidden = encoder(hidden, layers::additive_padding_mask(attention_mask));
    return {hidden, pooler ? pooler(hidden) : torch::Tensor()};
  }
  RobertaEmbeddings embeddings{nullptr};
  bert::BertEncoder encoder{nullptr};
  bert::BertPooler pooler{nullptr};
};
TORCH_MODULE(RobertaModel);

// modeling_roberta.RobertaClassificationHead: out_proj(tanh(dense(hidden[:, 0])))
struct RobertaClassificationHeadImpl : torch::nn::Module {
  RobertaClassificationHeadImpl(const Config& c, int64_t labels) {
    dense = register_module("dense", layers::Linear(c.hidden_size, c.hidden_size));
    out_proj = register_module("out_proj", layers::Linear(c.hidden_size, labels));
  }
  torch::Tensor forward(const torch::Tensor& hidden) { return out_proj(torch::tanh(dense(hidden.select(1, 0)))); }
  layers::Linear dense{nullptr}, out_proj{nullptr};
};
TORCH_MODULE(RobertaClassificationHead);

// modeling_roberta.RobertaLMHead: decoder(layer_norm(gelu(dense(x)))), decoder tied to the word embeddings.
struct RobertaLMHeadImpl : torch::nn::Module {
  RobertaLMHeadImpl(const Config& c, bool tied) {
    dense = register_module("dense", layers::Linear(c.hidden_size, c.hidden_size));
    layer_norm = register_module("layer_norm", layers::LayerNorm(c.hidden_size, c.layer_norm_eps));
    if (!tied) decoder = register_module("decoder", layers::Linear(c.hidden_size, c.vocab_size, false));
    bias = register_parameter("bias", layers::placeholder({c.vocab_size}), false);
  }
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& word_embeddings) {
    auto x = layer_norm(torch::gelu(dense(hidden)));
    return layers::linear(x, decoder ? decoder->weight : word_embeddings, bias);
  }
  layers::Linear dense{nullptr}, decoder{nullptr};
  layers::LayerNorm layer_norm{nullptr};
  torch::Tensor bias;
};
TORCH_MODULE(RobertaLMHead);

struct RobertaWithHeadImpl : torch::nn::Module {
  RobertaWithHeadImpl(const Config& c, Task task, int64_t labels, bool tied) {
    roberta = register_module("roberta", RobertaModel(c, false));
    if (task == Task::TextClassification) classification = register_module("classifier", RobertaClassificationHead(c, labels));
    if (task == Task::TokenClassification) classifier = register_module("classifier", layers::Linear(c.hidden_size, labels));
    if (task == Task::QuestionAnswering) qa_outputs = register_module("qa_outputs", layers::Linear(c.hidden_size, 2));
    if (task == Task::FillMask) lm_head = register_module("lm_head", RobertaLMHead(c, tied));
  }
  RobertaModel roberta{nullptr};
  RobertaClassificationHead classification{nullptr};
  layers::Linear classifier{nullptr}, qa_outputs{nullptr};
  RobertaLMHead lm_head{nullptr};
};

}  // namespace
}  // namespace hf2onnx::roberta

namespace hf2onnx {

std::shared_ptr<ExportModel> build_roberta(const BuildContext& ctx) {
  using namespace roberta;
  Config c = Config::from(ctx.config);
  c.pad_token_id = ctx.config.get_int("pad_token_id").value_or(1);  // RobertaConfig's default
  auto m = std::make_shared<ExportModel>();
  m->task = ctx.task;
  auto token_type_ids = layers::set_text_encoder_inputs(*m, c.type_vocab_size, c.vocab_size);
  m->load_rules.ignored_keys = {R"((roberta\.)?embeddings\.position_ids)"};

  if (ctx.task == Task::FeatureExtraction) {
    const bool pooler = ctx.has_tensor("pooler.dense.weight");
    if (!pooler) spdlog::warn("the checkpoint has no pooler: exporting last_hidden_state only");
    auto model = std::make_shared<RobertaModelImpl>(c, pooler);
    m->module = model;
    m->load_rules.optional_prefixes = {"roberta."};
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
  if (ctx.task == Task::QuestionAnswering && layers::num_labels(ctx.config) != 2)
    ctx.config.fail("num_labels", "must be 2 for question answering");
  auto model = std::make_shared<RobertaWithHeadImpl>(c, ctx.task, labels, tied);
  m->module = model;
  m->load_rules.ignored_keys.push_back(R"(roberta\.pooler\..*)");
  m->load_rules.ignored_keys.push_back(tied ? R"(lm_head\.decoder\.(weight|bias))" : R"(lm_head\.decoder\.bias)");
  auto hidden_of = [model, token_type_ids](const std::vector<torch::Tensor>& in) {
    return model->roberta(in[0], in[1], token_type_ids(in)).first;
  };
  switch (ctx.task) {
    case Task::TextClassification:  // RobertaForSequenceClassification
      m->graph().outputs = {{"logits", torch::kFloat, {"batch_size", ""}}};
      m->graph().forward = [model, hidden_of](const std::vector<torch::Tensor>& in) {
        return std::vector<torch::Tensor>{model->classification(hidden_of(in))};
      };
      return m;
    case Task::TokenClassification:  // RobertaForTokenClassification
      m->graph().outputs = {{"logits", torch::kFloat, {"batch_size", "sequence_length", ""}}};
      m->graph().forward = [model, hidden_of](const std::vector<torch::Tensor>& in) {
        return std::vector<torch::Tensor>{model->classifier(hidden_of(in))};
      };
      return m;
    case Task::QuestionAnswering:  // RobertaForQuestionAnswering
      m->graph().outputs = {{"start_logits", torch::kFloat, {"batch_size", "sequence_length"}},
                    {"end_logits", torch::kFloat, {"batch_size", "sequence_length"}}};
      m->graph().forward = [model, hidden_of](const std::vector<torch::Tensor>& in) {
        auto logits = model->qa_outputs(hidden_of(in));
        return std::vector<torch::Tensor>{logits.select(-1, 0), logits.select(-1, 1)};
      };
      return m;
    case Task::FillMask:  // RobertaForMaskedLM
      m->graph().outputs = {{"logits", torch::kFloat, {"batch_size", "sequence_length", ""}}};
      m->graph().forward = [model, hidden_of](const std::vector<torch::Tensor>& in) {
        return std::vector<torch::Tensor>{
            model->lm_head(hidden_of(in), model->roberta->embeddings->word_embeddings->weight)};
      };
      return m;
    default:
      break;
  }
  throw Error("task '" + std::string(task_name(ctx.task)) + "' is not supported by RoBERTa models");
}

}  // namespace hf2onnx
