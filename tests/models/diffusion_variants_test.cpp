// UNet and VAE configurations beyond sd-tiny's (SD 2.x-style linear projections, heads per block as a list,
// upcast attention, deeper UNets with several layers and transformer layers per block, flip_sin_to_cos false with
// freq_shift 1, a VAE without mid-block attention or quant convs): each folder exported on its own and every graph
// compared in ONNX Runtime with the same modules run eagerly in libtorch, at odd latent sizes the exporter did
// not trace (the UNet then upsamples to its skip connections' sizes). The nearest upsampling itself is checked
// against torch's F.interpolate in dynamic_test. Unsupported options are refused with the key named.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/model_util.h"
#include "common/test_util.h"
#include "export/verify_graphs.h"  // to_npy
#include "hf/checkpoint.h"
#include "hf/safetensors.h"
#include "hf2onnx/export.h"
#include "models/loader.h"
#include "models/model.h"
#include "models/registry.h"

namespace hf2onnx::test {
namespace {

struct Variant {
  std::string name, component, patch;
};
void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

fs::path patched_component(const Variant& v) {
  const fs::path dir = temp_dir("sd_variant_" + v.name) / "model";
  fs::create_directories(dir);
  nlohmann::json cfg = nlohmann::json::parse(read_file(models_dir() / "sd-tiny" / v.component / "config.json"));
  cfg.merge_patch(nlohmann::json::parse("{" + v.patch + "}"));
  write_file(dir / "config.json", cfg.dump(2));
  return dir;
}

class DiffusionVariants : public ::testing::TestWithParam<Variant> {};

TEST_P(DiffusionVariants, EveryGraphMatchesEagerAtOddSizes) {
  const Variant& v = GetParam();
  torch::manual_seed(2);
  const fs::path dir = patched_component(v);
  const hf::Checkpoint none;
  auto model = build_model(dir, none);
  std::vector<hf::TensorToWrite> tensors;
  std::vector<torch::Tensor> keep;
  for (const auto& p : model->module->named_parameters()) {
    keep.push_back(torch::randn(p.value().sizes()) * (p.key().find("norm") != std::string::npos ? 0.2 : 0.3));
    if (p.key().size() > 7 && p.key().compare(p.key().size() - 7, 7, ".weight") == 0 && p.key().find("norm") != std::string::npos)
      keep.back() += 1.0;  // norms scale by about 1
    tensors.push_back({p.key(), hf::DType::F32, keep.back().sizes().vec(), keep.back().data_ptr()});
  }
  hf::write_safetensors(dir / "diffusion_pytorch_model.safetensors", tensors);
  ExportOptions opt;
  opt.model_dir = dir;
  opt.out_dir = dir.parent_path() / "onnx";
  opt.opset = 14;  // the lowest supported opset (the fixture test covers 17 as well)
  export_model(opt);

  const auto ck = hf::load_checkpoint(dir);
  auto eager = build_model(dir, ck);
  load_weights(*eager->module, ck, eager->load_rules, true, dir.string());
  // Not a trace shape: batch 3, latents 7 × 11 (odd: 7 → 4 → 2 and 11 → 6 → 3 in a 3-level UNet), 6 text tokens.
  const DimSizes sizes = {{"batch_size", 3}, {"height", 7}, {"width", 11}, {"sequence_length", 6}};
  expect_graphs_match_eager(*eager, opt.out_dir / "onnx", dir.parent_path(), sizes, /*rtol=*/1e-4);
}

const Variant kVariants[] = {
    // SD 2.x: Linear proj_in / proj_out, heads per block (2 and 4 heads of 8), upcast attention.
    {"unet_sd2", "unet", R"("use_linear_projection": true, "attention_head_dim": [2, 4], "upcast_attention": true)"},
    // Three levels, two resnets and two transformer layers per block, a cross-attention width of its own, [sin | cos]
    // with freq_shift 1, a wider time embedding, 1×1 in/out convs.
    {"unet_deep", "unet",
     R"("block_out_channels": [16, 32, 32], "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"], "layers_per_block": 2,
        "transformer_layers_per_block": 2, "attention_head_dim": [2, 4, 4], "cross_attention_dim": 24,
        "flip_sin_to_cos": false, "freq_shift": 1, "time_embedding_dim": 48, "conv_in_kernel": 1, "conv_out_kernel": 1)"},
    // Per-block layer counts as lists.
    {"unet_lists", "unet", R"("layers_per_block": [1, 2], "transformer_layers_per_block": [2, 1])"},
    // Three levels, two resnets per block, no mid-block attention, no quant convs.
    {"vae_deep", "vae",
     R"("block_out_channels": [8, 16, 16], "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
        "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"], "layers_per_block": 2,
        "mid_block_add_attention": false, "use_quant_conv": false, "use_post_quant_conv": false)"},
    {"vae_latent3", "vae", R"("latent_channels": 3, "out_channels": 1, "in_channels": 1)"},
};

INSTANTIATE_TEST_SUITE_P(Configs, DiffusionVariants, ::testing::ValuesIn(kVariants),
                         [](const auto& info) { return info.param.name; });

TEST(DiffusionVariants, UnsupportedOptionsAreRefusedByName) {
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"unet", R"("class_embed_type": "timestep")", "class_embed_type"},
      {"unet", R"("addition_embed_type": "text_time")", "addition_embed_type"},
      {"unet", R"("num_attention_heads": 8)", "num_attention_heads"},
      {"unet", R"("only_cross_attention": true)", "only_cross_attention"},
      {"unet", R"("attention_type": "gated")", "attention_type"},
      {"unet", R"("down_block_types": ["AttnDownBlock2D", "DownBlock2D"])", "down_block_types"},
      {"unet", R"("resnet_time_scale_shift": "scale_shift")", "resnet_time_scale_shift"},
      {"unet", R"("time_cond_proj_dim": 256)", "time_cond_proj_dim"},
      {"unet", R"("attention_head_dim": [2, 2, 2])", "attention_head_dim"},
      {"unet", R"("attention_head_dim": 3)", "attention_head_dim"},
      {"unet", R"("cross_attention_dim": [32, 32])", "cross_attention_dim"},
      {"vae", R"("down_block_types": ["DownEncoderBlock2D", "AttnDownEncoderBlock2D"])", "down_block_types"},
      {"vae", R"("act_fn": "relu")", "act_fn"},
      // Sizes from an untrusted config are bounded before any module is built.
      {"unet", R"("layers_per_block": 1000000000)", "layers_per_block"},
      {"unet", R"("block_out_channels": [16, 4294967296])", "block_out_channels"},
      {"unet", R"("block_out_channels": [16, 1e300])", "block_out_channels"},
      {"unet", R"("conv_in_kernel": -1)", "conv_in_kernel"},
      {"unet", R"("freq_shift": 8)", "freq_shift"},
      {"unet", R"("cross_attention_dim": 0)", "cross_attention_dim"},
      {"vae", R"("layers_per_block": 1000000000)", "layers_per_block"},
      {"vae", R"("latent_channels": -4)", "latent_channels"},
  };
  int i = 0;
  for (const auto& [component, patch, key] : cases) {
    const fs::path dir = patched_component({"refused" + std::to_string(i++), component, patch});
    const hf::Checkpoint none;
    const std::string err = error_of([&] { build_model(dir, none); });
    EXPECT_NE(err.find("config.json"), std::string::npos) << patch << ": " << err;
    EXPECT_NE(err.find(key), std::string::npos) << patch << ": " << err;
  }
}

}  // namespace
}  // namespace hf2onnx::test
