#include "models/layers/common.h"

#include <cmath>

#include <torch/csrc/jit/frontend/tracer.h>

#include "common/scratch.h"

namespace hf2onnx::layers {

torch::Tensor placeholder(torch::IntArrayRef shape) { return torch::empty(shape, torch::kFloat); }

LinearImpl::LinearImpl(int64_t in, int64_t out, bool has_bias) {
  weight = register_parameter("weight", placeholder({out, in}), false);
  if (has_bias) bias = register_parameter("bias", placeholder({out}), false);
}
torch::Tensor LinearImpl::forward(const torch::Tensor& x) { return layers::linear(x, weight, bias); }

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  namespace tracer = torch::jit::tracer;
  const bool zero = tracer::isTracing() && weight.dim() == 2 && x.dim() >= 1 && x.size(-1) == weight.size(1) &&
                    x.scalar_type() == torch::kFloat && weight.scalar_type() == torch::kFloat &&
                    is_zero_floats(weight.storage().data(), weight.storage().nbytes());
  if (!zero) return torch::linear(x, weight, bias);
  // What the tracer records for torch::linear (its generated TraceType kernel), with the result computed as the
  // product is: x @ 0 = 0, plus the bias.
  auto state = tracer::getTracingState();
  torch::jit::Node* node = state->createNode(c10::Symbol::fromQualString("aten::linear"), /*num_outputs=*/0);
  tracer::recordSourceLocation(node);
  tracer::addInputs(node, "input", x);
  tracer::addInputs(node, "weight", weight);
  tracer::addInputs(node, "bias", bias.defined() ? c10::optional<torch::Tensor>(bias) : c10::nullopt);
  state->insertNode(node);
  tracer::setTracingState(nullptr);
  std::vector<int64_t> sizes = x.sizes().vec();
  sizes.back() = weight.size(0);
  torch::Tensor out = bias.defined() ? bias.expand(sizes).contiguous() : torch::zeros(sizes, x.options());
  tracer::setTracingState(std::move(state));
  tracer::addOutput(node, out);
  return out;
}

PatchConvImpl::PatchConvImpl(int64_t in, int64_t out, int64_t patch, bool has_bias) : patch(patch) {
  weight = register_parameter("weight", placeholder({out, in, patch, patch}), false);
  if (has_bias) bias = register_parameter("bias", placeholder({out}), false);
}
torch::Tensor PatchConvImpl::forward(const torch::Tensor& pixel_values) {
  return torch::conv2d(pixel_values, weight, bias, patch).flatten(2).transpose(1, 2);
}

EmbeddingImpl::EmbeddingImpl(int64_t num, int64_t dim) {
  weight = register_parameter("weight", placeholder({num, dim}), false);
}
torch::Tensor EmbeddingImpl::forward(const torch::Tensor& ids) { return torch::embedding(weight, ids); }

Conv1dImpl::Conv1dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, int64_t groups,
                       bool has_bias)
    : stride(stride), padding(padding), groups(groups) {
  weight = register_parameter("weight", placeholder({out, in / groups, kernel}), false);
  if (has_bias) bias = register_parameter("bias", placeholder({out}), false);
}
torch::Tensor Conv1dImpl::forward(const torch::Tensor& x) { return torch::conv1d(x, weight, bias, stride, padding, 1, groups); }

Conv2dImpl::Conv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding)
    : stride(stride), padding(padding) {
  weight = register_parameter("weight", placeholder({out, in, kernel, kernel}), false);
  bias = register_parameter("bias", placeholder({out}), false);
}
torch::Tensor Conv2dImpl::forward(const torch::Tensor& x) { return torch::conv2d(x, weight, bias, stride, padding); }

GroupNormImpl::GroupNormImpl(int64_t groups, int64_t channels, double eps) : groups(groups), eps(eps) {
  weight = register_parameter("weight", placeholder({channels}), false);
  bias = register_parameter("bias", placeholder({channels}), false);
}
torch::Tensor GroupNormImpl::forward(const torch::Tensor& x) { return torch::group_norm(x, groups, weight, bias, eps); }

LayerNormImpl::LayerNormImpl(int64_t dim_, double eps_) : dim(dim_), eps(eps_) {
  weight = register_parameter("weight", placeholder({dim}), false);
  bias = register_parameter("bias", placeholder({dim}), false);
}
torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) {
  return torch::layer_norm(x, {dim}, weight, bias, eps);
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_, bool plus_one_) : eps(eps_), plus_one(plus_one_) {
  weight = register_parameter("weight", placeholder({dim}), false);
}
torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  auto variance = x.pow(2).mean(-1, /*keepdim=*/true);
  auto normed = x * torch::rsqrt(variance + eps);
  return plus_one ? normed * (weight + 1.0) : weight * normed;
}

namespace {
const std::pair<const char*, Activation> kActivationNames[] = {
    {"gelu", Activation::Gelu},       {"gelu_new", Activation::GeluNew},
    {"gelu_pytorch_tanh", Activation::GeluPytorchTanh}, {"gelu_fast", Activation::GeluFast},
    {"quick_gelu", Activation::QuickGelu}, {"relu", Activation::Relu},
    {"silu", Activation::Silu},       {"swish", Activation::Silu},
    {"tanh", Activation::Tanh}};
}  // namespace

std::optional<Activation> activation_named(const std::string& name) {
  for (const auto& [n, a] : kActivationNames)
    if (name == n) return a;
  return std::nullopt;
}

std::string supported_activations() {
  std::string list;
  for (const auto& [n, a] : kActivationNames) list += (list.empty() ? "" : ", ") + std::string(n);
  return list;
}

Activation activation_from_config(const hf::Config& config, const std::string& key, const std::string& fallback) {
  std::string name = config.get_string(key).value_or(fallback);
  if (auto a = activation_named(name)) return *a;
  config.fail(key, "= '" + name + "' is not a supported activation (supported: " + supported_activations() + ")");
}

torch::Tensor activate(Activation act, const torch::Tensor& x) {
  switch (act) {
    case Activation::Gelu: return torch::gelu(x);  // GELUActivation: exact erf form
    case Activation::GeluPytorchTanh: return torch::gelu(x, "tanh");
    case Activation::GeluNew:  // NewGELUActivation
      return 0.5 * x * (1.0 + torch::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * torch::pow(x, 3.0))));
    case Activation::GeluFast:  // FastGELUActivation
      return 0.5 * x * (1.0 + torch::tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)));
    case Activation::QuickGelu: return x * torch::sigmoid(1.702 * x);
    case Activation::Relu: return torch::relu(x);
    case Activation::Silu: return torch::silu(x);
    case Activation::Tanh: return torch::tanh(x);
  }
  return x;
}

}  // namespace hf2onnx::layers

#include <algorithm>

#include "hf2onnx/error.h"
#include "models/model.h"

namespace hf2onnx::layers {

namespace {
// A dim spec: a number (static), a name, or "a + b" (past_sequence_length + sequence_length).
int64_t dim_size(const std::string& spec, const std::map<std::string, int64_t>& dims, const std::string& input) {
  if (!spec.empty() && std::all_of(spec.begin(), spec.end(), ::isdigit)) return std::stoll(spec);
  auto plus = spec.find(" + ");
  if (plus != std::string::npos)
    return dim_size(spec.substr(0, plus), dims, input) + dim_size(spec.substr(plus + 3), dims, input);
  auto it = dims.find(spec);
  if (it == dims.end()) throw Error("example input '" + input + "': no size for dim '" + spec + "'");
  return it->second;
}
}  // namespace

std::vector<torch::Tensor> make_text_inputs(const std::vector<TensorSpec>& specs, int64_t vocab_size,
                                            const std::map<std::string, int64_t>& dims) {
  torch::manual_seed(0);  // the same inputs every run: the INT8 check's figures are reproducible
  std::vector<torch::Tensor> out;
  for (const auto& s : specs) {
    std::vector<int64_t> shape;
    for (const auto& d : s.dims) shape.push_back(dim_size(d, dims, s.name));
    torch::Tensor t;
    if (s.name == "input_ids") {
      t = torch::randint(0, vocab_size, shape, torch::kLong);
    } else if (s.name == "attention_mask") {
      t = torch::ones(shape, torch::kLong);
      if (shape.size() == 2 && shape[1] > 2) t.index_put_({-1, torch::indexing::Slice(-2)}, 0);
    } else if (s.name == "position_ids") {
      t = torch::arange(shape.back(), torch::kLong).expand(shape).contiguous();
    } else if (s.dtype == torch::kLong) {
      t = torch::zeros(shape, torch::kLong);
    } else {
      t = torch::randn(shape, s.dtype);
    }
    out.push_back(t);
  }
  return out;
}

TokenTypeIds set_text_encoder_inputs(ExportModel& m, int64_t type_vocab_size, int64_t vocab_size) {
  const bool token_types = type_vocab_size > 1;
  m.graph().inputs = {{"input_ids", torch::kLong, {"batch_size", "sequence_length"}},
              {"attention_mask", torch::kLong, {"batch_size", "sequence_length"}}};
  if (token_types) m.graph().inputs.push_back({"token_type_ids", torch::kLong, {"batch_size", "sequence_length"}});
  m.graph().example_inputs = [inputs = m.graph().inputs, vocab_size](const DimSizes& dims) {
    return make_text_inputs(inputs, vocab_size, dims);
  };
  return [token_types](const std::vector<torch::Tensor>& in) { return token_types ? in[2] : torch::Tensor(); };
}

void set_decoder_io(ExportModel& m, int64_t layers, int64_t kv_heads, int64_t head_dim, int64_t vocab_size,
                    const std::string& first_output, int64_t first_output_size) {
  const std::string total = "past_sequence_length + sequence_length";
  m.graph().inputs = {{"input_ids", torch::kLong, {"batch_size", "sequence_length"}},
              {"attention_mask", torch::kLong, {"batch_size", total}},
              {"position_ids", torch::kLong, {"batch_size", "sequence_length"}}};
  m.graph().outputs = {{first_output, torch::kFloat, {"batch_size", "sequence_length", std::to_string(first_output_size)}}};
  for (int64_t i = 0; i < layers; ++i)
    for (const char* kv : {"key", "value"}) {
      const std::string suffix = std::to_string(i) + "." + kv;
      m.graph().inputs.push_back({"past_key_values." + suffix, torch::kFloat,
                          {"batch_size", std::to_string(kv_heads), "past_sequence_length", std::to_string(head_dim)}});
      m.graph().outputs.push_back({"present." + suffix, torch::kFloat,
                           {"batch_size", std::to_string(kv_heads), total, std::to_string(head_dim)}});
    }
  m.graph().example_inputs = [inputs = m.graph().inputs, vocab_size](const DimSizes& dims) {
    return make_text_inputs(inputs, vocab_size, dims);
  };
}

std::vector<torch::Tensor> with_presents(torch::Tensor first, const std::vector<KVCache>& caches) {
  std::vector<torch::Tensor> out{std::move(first)};
  for (const auto& kv : caches) {
    out.push_back(kv.key);
    out.push_back(kv.value);
  }
  return out;
}

int64_t num_labels(const hf::Config& config) {
  if (auto n = config.get_int("num_labels")) return *n;
  if (size_t n = config.object_size("id2label")) return static_cast<int64_t>(n);
  return 2;
}

}  // namespace hf2onnx::layers
