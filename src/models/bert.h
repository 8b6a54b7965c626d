// BERT building blocks, shared with RoBERTa / XLM-RoBERTa the way transformers shares them
// ("Copied from transformers.models.bert.modeling_bert"). Module and member names are the HF names.
#pragma once
#include <torch/torch.h>

#include "hf/config.h"
#include "models/layers/common.h"

namespace hf2onnx::bert {

// transformers BertConfig, resolved: every field has its value.
struct Config {
  int64_t vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size;
  int64_t max_position_embeddings, type_vocab_size, pad_token_id;
  double layer_norm_eps;
  layers::Activation hidden_act;
  static Config from(const hf::Config& raw);
  int64_t head_dim() const { return hidden_size / num_attention_heads; }
};

// modeling_bert.BertSelfAttention (absolute positions, no cross-attention)
struct BertSelfAttentionImpl : torch::nn::Module {
  explicit BertSelfAttentionImpl(const Config& c);
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& additive_mask);
  layers::Linear query{nullptr}, key{nullptr}, value{nullptr};
  int64_t heads, head_dim;
};
TORCH_MODULE(BertSelfAttention);

// modeling_bert.BertSelfOutput and BertOutput: dense, then LayerNorm(dense(x) + residual)
struct BertDenseResidualNormImpl : torch::nn::Module {
  BertDenseResidualNormImpl(int64_t in, int64_t out, double eps);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual);
  layers::Linear dense{nullptr};
  layers::LayerNorm LayerNorm{nullptr};
};
TORCH_MODULE(BertDenseResidualNorm);

// modeling_bert.BertAttention
struct BertAttentionImpl : torch::nn::Module {
  explicit BertAttentionImpl(const Config& c);
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& additive_mask);
  BertSelfAttention self{nullptr};
  BertDenseResidualNorm output{nullptr};
};
TORCH_MODULE(BertAttention);

// modeling_bert.BertIntermediate
struct BertIntermediateImpl : torch::nn::Module {
  explicit BertIntermediateImpl(const Config& c);
  torch::Tensor forward(const torch::Tensor& x);
  layers::Linear dense{nullptr};
  layers::Activation act;
};
TORCH_MODULE(BertIntermediate);

// modeling_bert.BertLayer
struct BertLayerImpl : torch::nn::Module {
  explicit BertLayerImpl(const Config& c);
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& additive_mask);
  BertAttention attention{nullptr};
  BertIntermediate intermediate{nullptr};
  BertDenseResidualNorm output{nullptr};
};
TORCH_MODULE(BertLayer);

// modeling_bert.BertEncoder
struct BertEncoderImpl : torch::nn::Module {
  explicit BertEncoderImpl(const Config& c);
  torch::Tensor forward(torch::Tensor hidden, const torch::Tensor& additive_mask);
  torch::nn::ModuleList layer;
};
TORCH_MODULE(BertEncoder);

// modeling_bert.BertPooler: tanh(dense(hidden[:, 0]))
struct BertPoolerImpl : torch::nn::Module {
  explicit BertPoolerImpl(const Config& c);
  torch::Tensor forward(const torch::Tensor& hidden);
  layers::Linear dense{nullptr};
};
TORCH_MODULE(BertPooler);

// modeling_bert.BertPredictionHeadTransform + BertLMPredictionHead. With tie_word_embeddings (the default)
// the decoder weight is the word embedding matrix and its bias is `cls.predictions.bias`.
struct BertLMPredictionHeadImpl : torch::nn::Module {
  BertLMPredictionHeadImpl(const Config& c, bool tied);
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& word_embeddings);
  struct TransformImpl : torch::nn::Module {
    explicit TransformImpl(const Config& c);
    layers::Linear dense{nullptr};
    layers::LayerNorm LayerNorm{nullptr};
  };
  std::shared_ptr<TransformImpl> transform;
  layers::Linear decoder{nullptr};  // only when tie_word_embeddings is false
  torch::Tensor bias;
  layers::Activation act;
};
TORCH_MODULE(BertLMPredictionHead);

}  // namespace hf2onnx::bert
