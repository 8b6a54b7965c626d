// Gemma — mirrors transformers/models/gemma/modeling_gemma.py (v4.44): Llama's modules with head_dim from the
// config (not hidden_size / heads), RMSNorm scaling by (1 + weight) in float32, embeddings multiplied by
// sqrt(hidden_size) (a float32 tensor, as the activations are), the activation from hidden_activation
// (4.44 ignores hidden_act; gelu_pytorch_tanh when it is absent), and lm_head tied by default.
#include <cmath>

#include "models/builders.h"
#include "models/llama.h"

namespace hf2onnx {

std::shared_ptr<ExportModel> build_gemma(const BuildContext& ctx) {
  llama::Defaults d;  // GemmaConfig's defaults
  d.vocab_size = 256000;
  d.hidden_size = 3072;
  d.intermediate_size = 24576;
  d.num_hidden_layers = 28;
  d.num_attention_heads = 16;
  d.max_position_embeddings = 8192;
  d.activation_key = "hidden_activation";
  d.activation = "gelu_pytorch_tanh";
  d.tie_word_embeddings = true;
  d.explicit_head_dim = true;
  d.reads_rope_scaling = false;  // 4.44's GemmaRotaryEmbedding ignores rope_scaling
  llama::Config c = llama::Config::from(ctx.config, d);
  if (!ctx.config.has("head_dim")) {  // GemmaConfig's default, whatever hidden_size / heads is
    c.head_dim = 256;
    c.rope = layers::RotaryConfig::unscaled(ctx.config, c.head_dim, d.max_position_embeddings);
  }
  c.o_bias = c.qkv_bias;  // GemmaAttention: attention_bias on all four projections
  c.mlp_bias = false;
  c.norm_plus_one = true;
  c.embed_scale = std::sqrt(static_cast<double>(c.hidden_size));
  return llama::build(ctx, c, "Gemma");
}

}  // namespace hf2onnx
