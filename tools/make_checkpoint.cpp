// Writes a random, full-size Hugging Face checkpoint (config.json + model.safetensors) for benchmarks.
// The tensor names and shapes come from the project's own model builders, so the checkpoint is exactly
// what the exporter expects.   make_checkpoint PRESET OUT_DIR      (presets: bert-base, gpt2, llama-1.1b,
// t5-base, whisper-small)
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "hf/safetensors.h"
#include "hf2onnx/error.h"
#include "models/model.h"
#include "models/registry.h"

namespace fs = std::filesystem;
using namespace hf2onnx;

static const std::map<std::string, std::string> kPresets = {
    {"bert-base", R"({"architectures": ["BertForSequenceClassification"], "model_type": "bert",
      "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
      "vocab_size": 30522, "max_position_embeddings": 512, "type_vocab_size": 2, "hidden_act": "gelu",
      "layer_norm_eps": 1e-12, "pad_token_id": 0, "position_embedding_type": "absolute",
      "id2label": {"0": "NEGATIVE", "1": "POSITIVE"}, "label2id": {"NEGATIVE": 0, "POSITIVE": 1}})"},
    {"gpt2", R"({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 768, "n_layer": 12,
      "n_head": 12, "n_inner": null, "n_positions": 1024, "vocab_size": 50257, "activation_function": "gelu_new",
      "layer_norm_epsilon": 1e-5, "bos_token_id": 50256, "eos_token_id": 50256})"},
    {"llama-1.1b", R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
      "intermediate_size": 5632, "num_hidden_layers": 22, "num_attention_heads": 32, "num_key_value_heads": 4,
      "vocab_size": 32000, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
      "hidden_act": "silu", "tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2})"},
    {"t5-base", R"({"architectures": ["T5ForConditionalGeneration"], "model_type": "t5", "d_model": 768,
      "d_kv": 64, "d_ff": 3072, "num_layers": 12, "num_decoder_layers": 12, "num_heads": 12, "vocab_size": 32128,
      "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128, "feed_forward_proj": "relu",
      "layer_norm_epsilon": 1e-6, "tie_word_embeddings": true, "is_encoder_decoder": true,
      "decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0})"},
    {"whisper-small", R"({"architectures": ["WhisperForConditionalGeneration"], "model_type": "whisper",
      "d_model": 768, "encoder_layers": 12, "decoder_layers": 12, "encoder_attention_heads": 12,
      "decoder_attention_heads": 12, "encoder_ffn_dim": 3072, "decoder_ffn_dim": 3072, "vocab_size": 51865,
      "num_mel_bins": 80, "max_source_positions": 1500, "max_target_positions": 448, "activation_function": "gelu",
      "is_encoder_decoder": true, "decoder_start_token_id": 50258, "eos_token_id": 50257, "pad_token_id": 50257})"},
};

int main(int argc, char** argv) {
  if (argc != 3 || !kPresets.count(argv[1])) {
    std::fprintf(stderr, "usage: make_checkpoint PRESET OUT_DIR   (presets:");
    for (const auto& [k, v] : kPresets) std::fprintf(stderr, " %s", k.c_str());
    std::fprintf(stderr, ")\n");
    return 2;
  }
  try {
    fs::path out = argv[2];
    fs::create_directories(out);
    const std::string& json = kPresets.at(argv[1]);
    std::ofstream(out / "config.json") << json << "\n";
    auto config = hf::Config::parse(json, "preset");
    const auto& arch = find_architecture(config.architecture(), "preset");
    BuildContext ctx{config, arch.task, [](const std::string&) { return true; }};
    auto model = arch.build(ctx);
    torch::manual_seed(0);
    std::vector<torch::Tensor> keep;
    std::vector<hf::TensorToWrite> tensors;
    for (const auto& p : model->module->named_parameters()) {
      const std::string& name = p.key();
      bool norm = name.find("LayerNorm.weight") != std::string::npos || name.find("norm.weight") != std::string::npos;
      torch::Tensor t = norm ? torch::ones(p.value().sizes()) : torch::randn(p.value().sizes()) * 0.02;
      keep.push_back(t);
      tensors.push_back({name, hf::DType::F32, t.sizes().vec(), t.data_ptr()});
    }
    hf::write_safetensors(out / "model.safetensors", tensors);
    std::printf("%s: %zu tensors, %.1f MB\n", (out / "model.safetensors").c_str(), tensors.size(),
                fs::file_size(out / "model.safetensors") / 1048576.0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_checkpoint: %s\n", e.what());
    return 1;
  }
  return 0;
}
