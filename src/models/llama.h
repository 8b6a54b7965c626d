// The Llama modules' configuration, shared by the families transformers copies from Llama. Each family
// file resolves its own config class (its keys and defaults) into llama::Config and calls llama::build.
#pragma once
#include <memory>
#include <string>

#include "hf/config.h"
#include "hf2onnx/error.h"
#include "models/layers/common.h"
#include "models/layers/rotary.h"
#include "models/model.h"
#include "models/registry.h"

namespace hf2onnx::llama {

// A config class's defaults for the keys every Llama-like config has (LlamaConfig's when not set).
struct Defaults {
  int64_t vocab_size = 32000, hidden_size = 4096, intermediate_size = 11008, num_hidden_layers = 32,
          num_attention_heads = 32, num_key_value_heads = 0;  // 0: num_attention_heads
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  const char* activation_key = "hidden_act";  // Gemma 4.44 reads hidden_activation
  const char* activation = "silu";
  bool tie_word_embeddings = false;
  bool explicit_head_dim = false;  // the config's head_dim key is honoured (Mistral 4.44, Gemma)
  bool reads_rope_scaling = true;  // false: the family's rotary embedding ignores rope_scaling
  bool phi3_rope = false;          // Phi3Config's reading of rope_scaling (su / yarn mean longrope)
};

// llama::Config, resolved: every field has its value.
struct Config {
  int64_t vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads;
  int64_t head_dim;
  double rms_norm_eps;
  layers::Activation hidden_act;
  layers::RotaryConfig rope;
  bool tie_word_embeddings;
  bool qkv_bias = false, o_bias = false, mlp_bias = false;  // attention_bias sets the first two; Qwen2: q/k/v only
  int64_t sliding_window = 0;   // 0: full causal attention (Mistral sets a window)
  bool norm_plus_one = false;   // Gemma: RMSNorm scales by 1 + weight
  double embed_scale = 1.0;     // Gemma: embeddings times sqrt(hidden_size)
  // The keys LlamaConfig has (rope_theta and rope_scaling included), with the given defaults.
  static Config from(const hf::Config& raw, const Defaults& defaults);
};

// The Llama module tree for `c`: LlamaModel (feature-extraction) or LlamaForCausalLM (text-generation).
std::shared_ptr<ExportModel> build(const BuildContext& ctx, const Config& c, const std::string& family);

// The export of a Llama-like decoder with a KV cache (DESIGN.md §4 I/O): `Base` is the model
// (forward(inputs, caches) → hidden, member embed_tokens), `Head` the *ForCausalLM (members model, lm_head,
// the latter empty when tied); both are built from `c`.
template <typename Base, typename Head>
std::shared_ptr<ExportModel> build_decoder(const BuildContext& ctx, const Config& c, const std::string& family) {
  auto m = std::make_shared<ExportModel>();
  m->task = ctx.task;
  m->load_rules.ignored_keys = {R"((model\.)?layers\.\d+\.self_attn\.rotary_emb\.inv_freq)"};  // persisted buffers
  m->load_rules.optional_prefixes = {"model."};
  if (ctx.task == Task::FeatureExtraction) {  // *Model: last_hidden_state + presents
    auto model = std::make_shared<Base>(c);
    m->module = model;
    m->load_rules.ignored_keys.push_back(R"(lm_head\.weight)");
    layers::set_decoder_io(*m, c.num_hidden_layers, c.num_key_value_heads, c.head_dim, c.vocab_size,
                           "last_hidden_state", c.hidden_size);
    m->graph().forward = layers::hidden_states_forward(model);
    m->graph().steps_may_differ = c.rope.per_call_frequencies();
    return m;
  }
  if (ctx.task != Task::TextGeneration)
    throw Error("task '" + std::string(task_name(ctx.task)) + "' is not supported by " + family + " models");
  auto model = std::make_shared<Head>(c);
  m->module = model;
  if (c.tie_word_embeddings) m->load_rules.ignored_keys.push_back(R"(lm_head\.weight)");
  layers::set_decoder_io(*m, c.num_hidden_layers, c.num_key_value_heads, c.head_dim, c.vocab_size, "logits",
                         c.vocab_size);
  m->graph().forward = layers::causal_lm_forward(model->model.ptr(), model->lm_head, model->model->embed_tokens->weight);
  m->graph().steps_may_differ = c.rope.per_call_frequencies();
  return m;
}

}  // namespace hf2onnx::llama
