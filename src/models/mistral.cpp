// Mistral — mirrors transformers/models/mistral/modeling_mistral.py (v4.44, eager attention): Llama's modules
// with a sliding window. Query i (a cache index, padding included) sees keys j with i - sliding_window < j <= i,
// in the prefill and in cached decoding alike (the cache keeps every key; the mask drops old ones). A padded
// query whose window holds only padding gets finfo.min on every score, so it averages all values, as
// transformers computes it.
#include "models/builders.h"
#include "models/llama.h"

namespace hf2onnx {

std::shared_ptr<ExportModel> build_mistral(const BuildContext& ctx) {
  llama::Defaults d;  // MistralConfig's defaults
  d.intermediate_size = 14336;
  d.num_key_value_heads = 8;
  d.max_position_embeddings = 4096 * 32;
  d.explicit_head_dim = true;
  d.reads_rope_scaling = false;  // 4.44's MistralRotaryEmbedding ignores rope_scaling
  llama::Config c = llama::Config::from(ctx.config, d);
  c.qkv_bias = c.o_bias = c.mlp_bias = false;  // MistralAttention and MistralMLP have no biases
  // sliding_window: 4096 by default, null for none.
  if (!ctx.config.contains("sliding_window")) c.sliding_window = 4096;
  else c.sliding_window = ctx.config.get_int("sliding_window").value_or(0);
  if (c.sliding_window < 0) ctx.config.fail("sliding_window", "must be positive or null");
  return llama::build(ctx, c, "Mistral");
}

}  // namespace hf2onnx
