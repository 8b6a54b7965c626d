// CLIP beyond the fixtures' own outputs (those are in e2e/fixtures_test.cpp): where the text tower pools
// under each eos_token_id rule of transformers' CLIPTextTransformer, and CLIPModel end to end, whose
// expected outputs are computed from the two towers' transformers references.
#include <cmath>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "hf/safetensors.h"

namespace hf2onnx::test {
namespace {

// pooler_output is last_hidden_state at one position per row: eos_token_id 2 (openai's configs) → the first
// largest id; any other eos_token_id → its first occurrence, or position 0 when the row has none.
TEST(ClipText, PoolsAtThePositionTransformersUses) {
  const std::vector<int64_t> ids = {5, 9, 2, 9, 1, 0,   // eos 2: first max at 1; eos 3: none → 0
                                    7, 3, 3, 8, 8, 4,   // eos 2: 3;              eos 3: 1
                                    1, 2, 3, 4, 5, 6};  // eos 2: 5;              eos 3: 2
  const std::map<int64_t, std::vector<int64_t>> expected = {{2, {1, 3, 5}}, {3, {0, 1, 2}}};
  for (const auto& [eos, positions] : expected) {
    const fs::path dir = copy_fixture("clip-text", "clip_pool_eos" + std::to_string(eos));
    auto config = nlohmann::json::parse(read_file(dir / "config.json"));
    config["eos_token_id"] = eos;
    write_file(dir / "config.json", config.dump(2));
    auto r = run_cli("export -q '" + dir.string() + "' '" + (dir / "out").string() + "'");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const fs::path in = dir / "in", out = dir / "ort";
    fs::create_directories(in);
    write_npy(in / "input_ids.npy", make_i64({3, 6}, ids.data()));
    const std::vector<int64_t> ones(18, 1);
    write_npy(in / "attention_mask.npy", make_i64({3, 6}, ones.data()));
    run_ort(dir / "out" / "onnx" / "model.onnx", in, out);
    const Array hidden = read_npy(out / "last_hidden_state.npy"), pooled = read_npy(out / "pooler_output.npy");
    ASSERT_EQ(pooled.shape, (std::vector<int64_t>{3, 32}));
    for (int64_t b = 0; b < 3; ++b)
      for (int64_t k = 0; k < 32; ++k)
        ASSERT_EQ(pooled.f32()[b * 32 + k], hidden.f32()[(b * 6 + positions[b]) * 32 + k]) << "eos " << eos << " row " << b;
  }
}

// CLIPModel from the clip-text body (transformers 4.32 references) and the clip-vision body and projection
// (4.44 references), plus a random text_projection and logit_scale: text_embeds = normalize(pooler_output ·
// text_projectionᵀ), image_embeds = normalize(the vision reference's image_embeds), logits_per_text =
// text_embeds · image_embedsᵀ · exp(logit_scale), logits_per_image its transpose — all from the references.
// Three texts against five images (batches the traces did not use), so a swapped batch dim cannot pass. Then the
// INT8 twin on both CPUs.
TEST(ClipModel, EndToEndAgainstBothTowersReferences) {
  const fs::path dir = temp_dir("clip_model"), model = dir / "model";
  fs::create_directories(model);
  const nlohmann::json text = nlohmann::json::parse(read_file(models_dir() / "clip-text" / "config.json"));
  const nlohmann::json vision = nlohmann::json::parse(read_file(models_dir() / "clip-vision" / "config.json"));
  const int64_t hidden = 32, proj = vision["projection_dim"];
  const nlohmann::json config = {{"architectures", {"CLIPModel"}}, {"model_type", "clip"}, {"projection_dim", proj},
                                 {"logit_scale_init_value", 2.6592}, {"text_config", text}, {"vision_config", vision}};
  write_file(model / "config.json", config.dump(2));
  const auto text_ck = hf::read_safetensors(models_dir() / "clip-text" / "model.safetensors");
  const auto vision_ck = hf::read_safetensors(models_dir() / "clip-vision" / "model.safetensors");
  std::vector<hf::TensorToWrite> tensors;
  for (const auto* ck : {&text_ck, &vision_ck})
    for (const auto& [name, t] : *ck) tensors.push_back({name, t.dtype, t.shape, t.data});
  std::vector<float> text_projection(static_cast<size_t>(proj * hidden));
  for (size_t i = 0; i < text_projection.size(); ++i) text_projection[i] = static_cast<float>(std::sin(0.7 * i + 0.3));
  const float logit_scale = 2.6592f;
  tensors.push_back({"text_projection.weight", hf::DType::F32, {proj, hidden}, text_projection.data()});
  tensors.push_back({"logit_scale", hf::DType::F32, {}, &logit_scale});
  hf::write_safetensors(model / "model.safetensors", tensors);

  auto r = run_cli("export -q '" + model.string() + "' '" + (dir / "out").string() + "' --quantize");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path in = dir / "in";
  fs::create_directories(in);
  const fs::path text_ref = models_dir() / "clip-text" / "ref" / "b", vision_ref = models_dir() / "clip-vision" / "ref" / "a";
  for (const char* f : {"input_ids.npy", "attention_mask.npy"}) fs::copy_file(text_ref / f, in / f);
  // Five images: the vision reference's sets a (2) and b (3) together, a batch neither trace used.
  auto concat = [](const Array& x, const Array& y) {
    Array c = x;
    c.shape[0] += y.shape[0];
    c.bytes.insert(c.bytes.end(), y.bytes.begin(), y.bytes.end());
    return c;
  };
  const fs::path vision_b = models_dir() / "clip-vision" / "ref" / "b";
  write_npy(in / "pixel_values.npy", concat(read_npy(vision_ref / "pixel_values.npy"), read_npy(vision_b / "pixel_values.npy")));
  run_ort({{dir / "out" / "onnx" / "model.onnx", in, dir / "fp32"}, {dir / "out" / "onnx" / "model_quantized.onnx", in, dir / "int8"}});

  auto normalized = [](std::vector<double> v, int64_t rows, int64_t n) {
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0;
      for (int64_t k = 0; k < n; ++k) s += v[r * n + k] * v[r * n + k];
      for (int64_t k = 0; k < n; ++k) v[r * n + k] /= std::sqrt(s);
    }
    return v;
  };
  const Array pooled = read_npy(text_ref / "pooler_output.npy");
  const Array image_ref = concat(read_npy(vision_ref / "image_embeds.npy"), read_npy(vision_b / "image_embeds.npy"));
  const int64_t texts = pooled.shape[0], images = image_ref.shape[0];
  ASSERT_EQ(texts, 3);
  ASSERT_EQ(images, 5);
  std::vector<double> te(static_cast<size_t>(texts * proj)), ie(image_ref.f32(), image_ref.f32() + images * proj);
  for (int64_t b = 0; b < texts; ++b)
    for (int64_t o = 0; o < proj; ++o)
      for (int64_t k = 0; k < hidden; ++k) te[b * proj + o] += double(pooled.f32()[b * hidden + k]) * text_projection[o * hidden + k];
  te = normalized(te, texts, proj);
  ie = normalized(ie, images, proj);
  std::vector<float> per_text(static_cast<size_t>(texts * images)), per_image(per_text.size());
  for (int64_t t = 0; t < texts; ++t)
    for (int64_t i = 0; i < images; ++i) {
      double dot = 0;
      for (int64_t k = 0; k < proj; ++k) dot += te[t * proj + k] * ie[i * proj + k];
      per_text[t * images + i] = per_image[i * texts + t] = static_cast<float>(dot * std::exp(double(logit_scale)));
    }
  const std::vector<float> te32(te.begin(), te.end()), ie32(ie.begin(), ie.end());
  EXPECT_LE(max_abs_diff(read_npy(dir / "fp32" / "logits_per_text.npy"), make_f32({texts, images}, per_text.data())), 1e-4);
  EXPECT_LE(max_abs_diff(read_npy(dir / "fp32" / "logits_per_image.npy"), make_f32({images, texts}, per_image.data())), 1e-4);
  EXPECT_LE(max_abs_diff(read_npy(dir / "fp32" / "text_embeds.npy"), make_f32({texts, proj}, te32.data())), 1e-5);
  EXPECT_LE(max_abs_diff(read_npy(dir / "fp32" / "image_embeds.npy"), make_f32({images, proj}, ie32.data())), 1e-5);

  // INT8: both towers' Linears quantized (6 per layer, 2 layers each, and the two projections); logits close to FP32.
  auto int8 = load_onnx(dir / "out" / "onnx" / "model_quantized.onnx");
  int matmul_integer = 0;
  for (const auto& n : int8.graph().node()) matmul_integer += n.op_type() == "MatMulInteger";
  EXPECT_EQ(matmul_integer, 2 * 6 * 2 + 2);
  run_ort(dir / "out" / "onnx" / "model_quantized.onnx", in, dir / "int8_avx2", OrtCpu::EmulatedAvx2);
  for (const char* cpu : {"int8", "int8_avx2"})
    for (const char* output : {"logits_per_image.npy", "text_embeds.npy", "image_embeds.npy"}) {
      const double cos = cosine(read_npy(dir / "fp32" / output), read_npy(dir / cpu / output));
      EXPECT_GE(cos, 0.99) << cpu << " " << output;
      std::printf("[ metrics  ] CLIPModel INT8 %s %s: cosine %.5f\n", cpu, output, cos);
    }
}

}  // namespace
}  // namespace hf2onnx::test
