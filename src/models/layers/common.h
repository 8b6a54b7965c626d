// Layers shared by the model files. Parameters are registered with their HF names and shapes;
// their storage comes from the checkpoint at load time (models/loader.h), never initialised here.
#pragma once
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "hf/config.h"

namespace hf2onnx::layers {

// An uninitialised parameter of the given shape (memory is not touched until the checkpoint replaces it).
torch::Tensor placeholder(torch::IntArrayRef shape);

// F.linear(x, weight, bias): x @ weight.T + bias (bias undefined: none). Every model calls this one, not
// torch::linear: while the exporter traces with its zero weights in place of the real ones (export/pipeline.cpp),
// the product is known to be the bias (or 0), so the call is recorded in the trace without multiplying every
// weight at every traced position.
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias = {});

// nn.Linear: weight [out, in], bias [out].
struct LinearImpl : torch::nn::Module {
  LinearImpl(int64_t in, int64_t out, bool bias = true);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
};
TORCH_MODULE(Linear);

// nn.Embedding: weight [num, dim].
struct EmbeddingImpl : torch::nn::Module {
  EmbeddingImpl(int64_t num, int64_t dim);
  torch::Tensor forward(const torch::Tensor& ids);
  torch::Tensor weight;
};
TORCH_MODULE(Embedding);

// A ViT-style patch embedding, nn.Conv2d(in, out, kernel_size=patch, stride=patch): weight [out, in, patch,
// patch], bias [out] when `has_bias`. Images [B, in, S, S] → [B, (S / patch)², out], one token per patch.
struct PatchConvImpl : torch::nn::Module {
  PatchConvImpl(int64_t in, int64_t out, int64_t patch, bool has_bias = true);
  torch::Tensor forward(const torch::Tensor& pixel_values);
  torch::Tensor weight, bias;
  int64_t patch;
};
TORCH_MODULE(PatchConv);

// nn.Conv1d(in, out, kernel, stride, padding, groups, bias): weight [out, in / groups, kernel], bias [out] when
// `has_bias`. [B, in, T] → [B, out, T'].
struct Conv1dImpl : torch::nn::Module {
  Conv1dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t padding = 0, int64_t groups = 1,
             bool has_bias = true);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
  int64_t stride, padding, groups;
};
TORCH_MODULE(Conv1d);

// nn.Conv2d(in, out, kernel, stride, padding) with square kernels: weight [out, in, k, k], bias [out].
struct Conv2dImpl : torch::nn::Module {
  Conv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t padding = 0);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
  int64_t stride, padding;
};
TORCH_MODULE(Conv2d);

// nn.GroupNorm(groups, channels, eps, affine=True) over [B, C, *]: weight, bias [C].
struct GroupNormImpl : torch::nn::Module {
  GroupNormImpl(int64_t groups, int64_t channels, double eps = 1e-5);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
  int64_t groups;
  double eps;
};
TORCH_MODULE(GroupNorm);

// nn.LayerNorm over the last dim: weight, bias [dim].
struct LayerNormImpl : torch::nn::Module {
  LayerNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
  int64_t dim;
  double eps;
};
TORCH_MODULE(LayerNorm);

// LlamaRMSNorm: weight * x / sqrt(mean(x²) + eps), over the last dim; GemmaRMSNorm (plus_one): (1 + weight) * ….
struct RMSNormImpl : torch::nn::Module {
  RMSNormImpl(int64_t dim, double eps, bool plus_one = false);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;
  double eps;
  bool plus_one;
};
TORCH_MODULE(RMSNorm);

// transformers' ACT2FN subset: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, quick_gelu, relu, silu/swish, tanh.
enum class Activation { Gelu, GeluNew, GeluPytorchTanh, GeluFast, QuickGelu, Relu, Silu, Tanh };
// Reads `key` from the config (e.g. "hidden_act"); an unknown name is an error naming the file and key.
Activation activation_from_config(const hf::Config& config, const std::string& key, const std::string& fallback);
std::optional<Activation> activation_named(const std::string& name);  // ACT2FN name → activation
std::string supported_activations();                                   // "gelu, gelu_new, ..." for messages
torch::Tensor activate(Activation act, const torch::Tensor& x);

}  // namespace hf2onnx::layers

namespace hf2onnx {
struct TensorSpec;
struct ExportModel;
}
namespace hf2onnx::layers {
// Example text inputs for the given specs at the given dims: random ids below `vocab_size`, masks of
// ones with the last row padded by two, zeros for token_type_ids, 0..S-1 for position_ids.
std::vector<torch::Tensor> make_text_inputs(const std::vector<TensorSpec>& specs, int64_t vocab_size,
                                            const std::map<std::string, int64_t>& dims);
// The inputs of a text encoder (input_ids, attention_mask, and token_type_ids when the model has more
// than one token type) with their example-input factory. Returns how the forward finds token_type_ids
// among its inputs (undefined when absent).
using TokenTypeIds = std::function<torch::Tensor(const std::vector<torch::Tensor>&)>;
TokenTypeIds set_text_encoder_inputs(ExportModel& model, int64_t type_vocab_size, int64_t vocab_size);
// The inputs and outputs of a decoder with a KV cache (DESIGN.md §4): input_ids, attention_mask over past + new
// tokens, position_ids, past_key_values.{i}.key/value [batch, kv_heads, past, head_dim] → `first_output`
// ("logits" [.., vocab] or "last_hidden_state" [.., hidden]), present.{i}.key/value. The forward receives the
// inputs in this order and returns the first output, then the presents.
void set_decoder_io(ExportModel& model, int64_t layers, int64_t kv_heads, int64_t head_dim, int64_t vocab_size,
                    const std::string& first_output, int64_t first_output_size);

// One layer's cache: past on input, past + new (the present) after the layer ran.
struct KVCache {
  torch::Tensor key, value;
};
// A decoder forward's outputs in set_decoder_io order: the first output, then each layer's present key, value.
std::vector<torch::Tensor> with_presents(torch::Tensor first, const std::vector<KVCache>& caches);

// The two forwards of a decoder-only family, for a base model with forward(inputs, caches) → hidden:
// feature-extraction (last_hidden_state + presents) and text-generation (lm_head, or the tied
// embedding when the model has no lm_head, → logits + presents).
template <typename Base>
std::function<std::vector<torch::Tensor>(const std::vector<torch::Tensor>&)> hidden_states_forward(
    std::shared_ptr<Base> base) {
  return [base](const std::vector<torch::Tensor>& in) {
    std::vector<KVCache> caches;
    auto hidden = base->forward(in, caches);
    return with_presents(hidden, caches);
  };
}
template <typename Base>
std::function<std::vector<torch::Tensor>(const std::vector<torch::Tensor>&)> causal_lm_forward(
    std::shared_ptr<Base> base, Linear lm_head, torch::Tensor tied_embedding) {
  return [base, lm_head, tied_embedding](const std::vector<torch::Tensor>& in) {
    std::vector<KVCache> caches;
    auto hidden = base->forward(in, caches);
    return with_presents(layers::linear(hidden, lm_head ? lm_head->weight : tied_embedding), caches);
  };
}

// Number of labels of a classification head: num_labels, else the size of id2label, else 2.
int64_t num_labels(const hf::Config& config);
}  // namespace hf2onnx::layers
