// Qwen2 — mirrors transformers/models/qwen2/modeling_qwen2.py (v4.44, eager attention): Llama's modules with
// biases on q_proj, k_proj and v_proj only. use_sliding_window = true is refused (not implemented);
// when false, 4.44 applies no window whatever sliding_window says.
#include "models/builders.h"
#include "models/llama.h"

namespace hf2onnx {

std::shared_ptr<ExportModel> build_qwen2(const BuildContext& ctx) {
  llama::Defaults d;  // Qwen2Config's defaults
  d.vocab_size = 151936;
  d.intermediate_size = 22016;
  d.max_position_embeddings = 32768;
  d.reads_rope_scaling = false;  // 4.44's Qwen2RotaryEmbedding ignores rope_scaling
  llama::Config c = llama::Config::from(ctx.config, d);
  c.qkv_bias = true;  // Qwen2Attention: bias on q/k/v, none on o_proj; Qwen2MLP: none
  c.o_bias = c.mlp_bias = false;
  if (ctx.config.get_bool("use_sliding_window").value_or(false))
    ctx.config.fail("use_sliding_window", "= true is not supported (per-layer windows from max_window_layers)");
  return llama::build(ctx, c, "Qwen2");
}

}  // namespace hf2onnx
