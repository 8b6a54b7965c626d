// Writes a random, full-size Hugging Face checkpoint (config.json + model.safetensors) for benchmarks.
// The tensor names and shapes come from the project's own model builders, so the checkpoint is exactly
// what the exporter expects.   make_checkpoint PRESET OUT_DIR [--bf16 | --fp16] [--shard-gb N]
// (presets: bert-base, gpt2, llama-1.1b, t5-base, whisper-small, qwen2-0.5b, mistral-7b, wav2vec2-base,
// clip-vit-base-patch32, and the diffusers pipeline sd-1.5: model_index.json, text_encoder/, unet/, vae/,
// scheduler/). --bf16 / --fp16 store 16-bit floats; --shard-gb writes model-0000K-of-0000N.safetensors shards of
// at most N GB with the index file. Memory: one shard's tensors at a time.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <cstring>
#include <map>

#include <nlohmann/json.hpp>

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
    {"qwen2-0.5b", R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 896,
      "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
      "vocab_size": 151936, "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
      "hidden_act": "silu", "tie_word_embeddings": true, "use_sliding_window": false, "bos_token_id": 151643,
      "eos_token_id": 151643})"},
    {"mistral-7b", R"({"architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 4096,
      "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
      "vocab_size": 32000, "max_position_embeddings": 32768, "rms_norm_eps": 1e-5, "rope_theta": 1000000.0,
      "sliding_window": null, "hidden_act": "silu", "tie_word_embeddings": false, "bos_token_id": 1,
      "eos_token_id": 2, "torch_dtype": "bfloat16"})"},
    // facebook/wav2vec2-base-960h's shape (95M)
    {"wav2vec2-base", R"({"architectures": ["Wav2Vec2ForCTC"], "model_type": "wav2vec2", "hidden_size": 768,
      "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072, "hidden_act": "gelu",
      "conv_dim": [512, 512, 512, 512, 512, 512, 512], "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
      "conv_stride": [5, 2, 2, 2, 2, 2, 2], "conv_bias": false, "feat_extract_norm": "group",
      "feat_extract_activation": "gelu", "num_conv_pos_embeddings": 128, "num_conv_pos_embedding_groups": 16,
      "do_stable_layer_norm": false, "layer_norm_eps": 1e-5, "vocab_size": 32, "pad_token_id": 0})"},
    // openai/clip-vit-base-patch32's shape (151M)
    {"clip-vit-base-patch32", R"({"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": 512,
      "logit_scale_init_value": 2.6592,
      "text_config": {"model_type": "clip_text_model", "hidden_size": 512, "intermediate_size": 2048,
        "num_hidden_layers": 12, "num_attention_heads": 8, "max_position_embeddings": 77, "vocab_size": 49408,
        "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1},
      "vision_config": {"model_type": "clip_vision_model", "hidden_size": 768, "intermediate_size": 3072,
        "num_hidden_layers": 12, "num_attention_heads": 12, "image_size": 224, "patch_size": 32,
        "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5}})"},
};

// runwayml/stable-diffusion-v1-5's shapes: CLIP ViT-L/14 text tower (123M), UNet (860M), VAE (84M).
const char* const kSdTextEncoder = R"({"architectures": ["CLIPTextModel"], "model_type": "clip_text_model",
  "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
  "max_position_embeddings": 77, "vocab_size": 49408, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5,
  "projection_dim": 768, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1})";
const char* const kSdUnet = R"({"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.30.3", "act_fn": "silu",
  "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": false,
  "cross_attention_dim": 768, "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  "downsample_padding": 1, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
  "mid_block_scale_factor": 1, "norm_eps": 1e-5, "norm_num_groups": 32, "out_channels": 4, "sample_size": 64,
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]})";
const char* const kSdVae = R"({"_class_name": "AutoencoderKL", "_diffusers_version": "0.30.3", "act_fn": "silu",
  "block_out_channels": [128, 256, 512, 512], "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
  "in_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3,
  "sample_size": 512, "scaling_factor": 0.18215,
  "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]})";
const char* const kSdIndex = R"({"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.30.3",
  "feature_extractor": [null, null], "safety_checker": [null, null], "requires_safety_checker": false,
  "scheduler": ["diffusers", "DDIMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
  "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
  "vae": ["diffusers", "AutoencoderKL"]})";
const char* const kSdScheduler = R"({"_class_name": "DDIMScheduler", "_diffusers_version": "0.30.3",
  "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": false,
  "num_train_timesteps": 1000, "prediction_type": "epsilon", "set_alpha_to_one": false, "steps_offset": 1,
  "timestep_spacing": "leading"})";

// float → bfloat16, round to nearest even.
uint16_t to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return static_cast<uint16_t>((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
}

enum class Store { F32, BF16, F16 };

// config.json (or a diffusers component's) and its random weights in `out`, `stem`.safetensors (sharded above
// shard_gb GB).
void write_checkpoint(const fs::path& out, const std::string& json, Store store, double shard_gb, const std::string& stem) {
  fs::create_directories(out);
  std::ofstream(out / "config.json") << json << "\n";
  auto config = hf::Config::parse(json, "preset");
  const auto& arch = find_architecture(config.architecture(), "preset");
  BuildContext ctx{config, arch.task, [](const std::string&) { return true; }};
  auto model = arch.build(ctx);
  torch::manual_seed(0);
  // The checkpoint's tensors: the parameters, except that a derived one (LoadRules::derived) is stored as the
  // sources of its first spelling (a weight-normed kernel: weight_g [1, 1, K] and weight_v).
  std::vector<std::pair<std::string, std::vector<int64_t>>> entries;
  for (const auto& p : model->module->named_parameters()) {
    const auto& derived = model->load_rules.derived;
    auto d = std::find_if(derived.begin(), derived.end(), [&](const auto& x) { return x.name == p.key(); });
    const std::vector<int64_t> shape = p.value().sizes().vec();
    if (d == derived.end()) {
      entries.emplace_back(p.key(), shape);
      continue;
    }
    for (const std::string& key : d->sources.at(0)) {
      const bool g = key.size() > 9 && key.compare(key.size() - 9, 9, ".weight_g") == 0;
      entries.emplace_back(key, g ? std::vector<int64_t>{1, 1, shape.back()} : shape);
    }
  }
  // Tensors grouped into shards (one shard when --shard-gb is not given), each written and freed in turn.
  const size_t width = store == Store::F32 ? 4 : 2;
  const uint64_t limit = shard_gb > 0 ? static_cast<uint64_t>(shard_gb * 1e9) : UINT64_MAX;
  std::vector<std::vector<size_t>> shards(1);
  uint64_t bytes = 0, total = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    int64_t numel = 1;
    for (int64_t d : entries[i].second) numel *= d;
    const uint64_t n = static_cast<uint64_t>(numel) * width;
    if (bytes > 0 && bytes + n > limit) {
      shards.emplace_back();
      bytes = 0;
    }
    shards.back().push_back(i);
    bytes += n;
    total += n;
  }
  nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", nlohmann::json::object()}};
  for (size_t k = 0; k < shards.size(); ++k) {
    char name[256];
    std::snprintf(name, sizeof name, "%s-%05zu-of-%05zu.safetensors", stem.c_str(), k + 1, shards.size());
    const std::string file = shards.size() == 1 ? stem + ".safetensors" : name;
    std::vector<torch::Tensor> keep;
    std::vector<std::vector<uint16_t>> halves;
    std::vector<hf::TensorToWrite> tensors;
    for (size_t i : shards[k]) {
      const auto& [key, shape] = entries[i];
      bool norm = key.find("LayerNorm.weight") != std::string::npos || key.find("norm.weight") != std::string::npos ||
                  key.find("layer_norm.weight") != std::string::npos || key.find("layernorm.weight") != std::string::npos;
      torch::Tensor t = norm ? torch::ones(shape) : torch::randn(shape) * 0.02;
      if (store == Store::BF16) {
        const float* f = t.data_ptr<float>();
        halves.emplace_back(static_cast<size_t>(t.numel()));
        for (int64_t j = 0; j < t.numel(); ++j) halves.back()[static_cast<size_t>(j)] = to_bf16(f[j]);
        tensors.push_back({key, hf::DType::BF16, t.sizes().vec(), halves.back().data()});
      } else if (store == Store::F16) {
        keep.push_back(t.to(torch::kHalf).contiguous());
        tensors.push_back({key, hf::DType::F16, t.sizes().vec(), keep.back().data_ptr()});
      } else {
        keep.push_back(t);
        tensors.push_back({key, hf::DType::F32, t.sizes().vec(), t.data_ptr()});
      }
      index["weight_map"][key] = file;
    }
    hf::write_safetensors(out / file, tensors);
    std::printf("%s: %zu tensors, %.1f MB\n", (out / file).c_str(), tensors.size(), fs::file_size(out / file) / 1048576.0);
  }
  if (shards.size() > 1) std::ofstream(out / (stem + ".safetensors.index.json")) << index.dump(2) << "\n";
}

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  Store store = Store::F32;
  double shard_gb = 0;
  for (size_t i = 0; i < args.size();) {
    if (args[i] == "--bf16" || args[i] == "--fp16") {
      store = args[i] == "--bf16" ? Store::BF16 : Store::F16;
      args.erase(args.begin() + static_cast<long>(i));
    } else if (args[i] == "--shard-gb" && i + 1 < args.size()) {
      shard_gb = std::stod(args[i + 1]);
      args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i) + 2);
    } else {
      ++i;
    }
  }
  if (args.size() != 2 || (!kPresets.count(args[0]) && args[0] != "sd-1.5")) {
    std::fprintf(stderr, "usage: make_checkpoint PRESET OUT_DIR [--bf16 | --fp16] [--shard-gb N]   (presets:");
    for (const auto& [k, v] : kPresets) std::fprintf(stderr, " %s", k.c_str());
    std::fprintf(stderr, " sd-1.5)\n");
    return 2;
  }
  try {
    const fs::path out = args[1];
    if (args[0] != "sd-1.5") {
      write_checkpoint(out, kPresets.at(args[0]), store, shard_gb, "model");
      return 0;
    }
    // A diffusers pipeline folder: each component in its subfolder with diffusers' file names.
    fs::create_directories(out / "scheduler");
    std::ofstream(out / "model_index.json") << kSdIndex << "\n";
    std::ofstream(out / "scheduler" / "scheduler_config.json") << kSdScheduler << "\n";
    write_checkpoint(out / "text_encoder", kSdTextEncoder, store, shard_gb, "model");
    write_checkpoint(out / "unet", kSdUnet, store, shard_gb, "diffusion_pytorch_model");
    write_checkpoint(out / "vae", kSdVae, store, shard_gb, "diffusion_pytorch_model");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_checkpoint: %s\n", e.what());
    return 1;
  }
  return 0;
}
