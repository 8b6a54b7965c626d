// Wav2Vec2 / HuBERT beyond the fixture's own outputs (those are in e2e/fixtures_test.cpp):
//  - semantics against the transformers reference: the positional kernel stored with the parametrization API's keys,
//    and Wav2Vec2Model's last_hidden_state through the checkpoint's lm_head;
//  - configurations the fixture does not have (layer-normed convs with biases, pre-LN encoder, an odd positional
//    kernel; HuBERT with and without the projection's layer norm): exported and compared in ONNX Runtime with the
//    same modules run eagerly in libtorch, at sample counts the exporter did not trace;
//  - options that are not implemented are refused naming the key.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/model_util.h"
#include "common/test_util.h"
#include "export/verify_graphs.h"  // to_npy
#include "hf/checkpoint.h"
#include "hf/safetensors.h"
#include "models/loader.h"
#include "models/model.h"
#include "models/registry.h"

namespace hf2onnx::test {
namespace {

torch::Tensor audio(int64_t batch, int64_t samples) {
  torch::manual_seed(7);
  return torch::randn({batch, samples});
}

// The fixture's checkpoint with keys renamed by `rename`, written as safetensors into `dir` with `config`.
void write_renamed(const fs::path& dir, const nlohmann::json& config, const std::function<std::string(std::string)>& rename) {
  fs::create_directories(dir);
  write_file(dir / "config.json", config.dump(2));
  const auto ck = hf::load_checkpoint(models_dir() / "wav2vec2");
  std::vector<hf::TensorToWrite> tensors;
  for (const auto& [key, t] : ck.tensors) tensors.push_back({rename(key), t.dtype, t.shape, t.data});
  hf::write_safetensors(dir / "model.safetensors", tensors);
}

nlohmann::json fixture_config() { return nlohmann::json::parse(read_file(models_dir() / "wav2vec2" / "config.json")); }

// torch >= 2.1 saves weight_norm as parametrizations.weight.original0 (g) / original1 (v): the same kernel, so
// transformers' logits at both reference sets.
TEST(Wav2Vec2, ParametrizedWeightNormKeysGiveTheReferenceLogits) {
  const fs::path dir = temp_dir("w2v_parametrized");
  write_renamed(dir / "model", fixture_config(), [](std::string k) {
    for (auto [from, to] : {std::pair<std::string, std::string>{".weight_g", ".parametrizations.weight.original0"},
                            {".weight_v", ".parametrizations.weight.original1"}})
      if (k.size() > from.size() && k.compare(k.size() - from.size(), from.size(), from) == 0) return k.substr(0, k.size() - from.size()) + to;
    return k;
  });
  // The feature extractor's settings travel with the model (transformers.js and pipelines read them).
  const std::string preprocessor = R"({"feature_extractor_type": "Wav2Vec2FeatureExtractor", "sampling_rate": 16000})";
  write_file(dir / "model" / "preprocessor_config.json", preprocessor);
  auto r = run_cli("export -q '" + (dir / "model").string() + "' '" + (dir / "out").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(dir / "out" / "preprocessor_config.json"), preprocessor);
  for (const std::string set : {"a", "b"}) {
    const fs::path ref = models_dir() / "wav2vec2" / "ref" / set;
    run_ort(dir / "out" / "onnx" / "model.onnx", ref, dir / ("ort_" + set));
    EXPECT_LE(max_abs_diff(read_npy(dir / ("ort_" + set) / "logits.npy"), read_npy(ref / "logits.npy")), 1e-4) << set;
  }
}

// Wav2Vec2Model from the CTC checkpoint: its last_hidden_state through the checkpoint's lm_head gives the reference
// logits, at both sets (4 and 7 frames: the frame count follows the samples).
TEST(Wav2Vec2, BaseModelFeedsTheCtcHead) {
  const fs::path dir = temp_dir("w2v_base");
  auto config = fixture_config();
  config["architectures"] = {"Wav2Vec2Model"};
  write_renamed(dir / "model", config, [](std::string k) { return k; });
  auto r = run_cli("export -q '" + (dir / "model").string() + "' '" + (dir / "out").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto ck = hf::load_checkpoint(models_dir() / "wav2vec2");
  const torch::Tensor w = to_float_tensor(ck.tensors.at("lm_head.weight")), b = to_float_tensor(ck.tensors.at("lm_head.bias"));
  for (const std::string set : {"a", "b"}) {
    const fs::path ref = models_dir() / "wav2vec2" / "ref" / set;
    run_ort(dir / "out" / "onnx" / "model.onnx", ref, dir / ("ort_" + set));
    Array hidden = read_npy(dir / ("ort_" + set) / "last_hidden_state.npy");
    auto logits = torch::linear(torch::from_blob(hidden.bytes.data(), hidden.shape, torch::kFloat).to(torch::kDouble),
                                w.to(torch::kDouble), b.to(torch::kDouble)).to(torch::kFloat);
    EXPECT_LE(max_abs_diff(to_npy(logits), read_npy(ref / "logits.npy")), 1e-4) << set;
  }
}

struct Variant {
  std::string name, architecture, patch;
};
void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }
class Wav2Vec2Variants : public ::testing::TestWithParam<Variant> {};

// The fixture's weights where the variant keeps their shape (HuBERT's under "hubert."), random values for what it
// adds; the positional kernel always as weight_g / weight_v.
TEST_P(Wav2Vec2Variants, ExportMatchesEager) {
  const Variant& v = GetParam();
  torch::manual_seed(1);
  const fs::path dir = temp_dir("w2v_variant_" + v.name), model_dir = dir / "model";
  fs::create_directories(model_dir);
  auto config = fixture_config();
  config["architectures"] = {v.architecture};
  config.merge_patch(nlohmann::json::parse("{" + v.patch + "}"));
  write_file(model_dir / "config.json", config.dump(2));
  const bool hubert = v.architecture.rfind("Hubert", 0) == 0;
  const auto body = hf::load_checkpoint(models_dir() / "wav2vec2");
  auto fixture_key = [&](std::string k) {  // the fixture's name for a key of this variant
    if (hubert && k.rfind("hubert.", 0) == 0) k = "wav2vec2." + k.substr(7);
    if (v.architecture.find("ForCTC") == std::string::npos && k.rfind("wav2vec2.", 0) != 0) k = "wav2vec2." + k;
    return k;
  };
  auto model = build_model(model_dir, body);
  std::vector<hf::TensorToWrite> tensors;
  std::vector<torch::Tensor> keep;
  auto add = [&](const std::string& key, std::vector<int64_t> shape) {
    auto it = body.tensors.find(fixture_key(key));
    torch::Tensor t = it != body.tensors.end() && it->second.shape == shape ? to_float_tensor(it->second).contiguous()
                                                                              : torch::randn(shape) * 0.5;
    keep.push_back(t);
    tensors.push_back({key, hf::DType::F32, t.sizes().vec(), t.data_ptr()});
  };
  for (const auto& p : model->module->named_parameters()) {
    const auto& derived = model->load_rules.derived;
    auto d = std::find_if(derived.begin(), derived.end(), [&](const auto& x) { return x.name == p.key(); });
    if (d == derived.end()) {
      add(p.key(), p.value().sizes().vec());
      continue;
    }
    const int64_t k = p.value().size(2);
    add(d->sources[0][0], {1, 1, k});                  // weight_g
    add(d->sources[0][1], p.value().sizes().vec());    // weight_v
  }
  hf::write_safetensors(model_dir / "model.safetensors", tensors);
  auto r = run_cli("export -q '" + model_dir.string() + "' '" + (dir / "out").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;

  const auto ck = hf::load_checkpoint(model_dir);
  auto eager = build_model(model_dir, ck);
  load_weights(*eager->module, ck, eager->load_rules, true, model_dir.string());
  torch::NoGradGuard no_grad;
  for (const auto& [batch, samples] : std::vector<std::pair<int64_t, int64_t>>{{2, 1600}, {3, 2999}}) {
    const fs::path in = dir / ("in_" + std::to_string(samples)), out = dir / ("ort_" + std::to_string(samples));
    fs::create_directories(in);
    const torch::Tensor x = audio(batch, samples);
    write_npy(in / "input_values.npy", to_npy(x));
    run_ort(dir / "out" / "onnx" / "model.onnx", in, out);
    const auto expected = eager->graph().forward({x});
    const std::string name = eager->graph().outputs[0].name;
    const Array got = read_npy(out / (name + ".npy")), want = to_npy(expected[0]);
    EXPECT_EQ(got.shape, want.shape) << name;
    EXPECT_LE(max_abs_diff(got, want), 1e-4) << v.name << " " << samples << " samples";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Configs, Wav2Vec2Variants,
    ::testing::Values(
        // wav2vec2-large-lv60 style: LayerNorm in every conv layer, conv biases, pre-LN encoder; an odd positional
        // kernel (no frame dropped), grouped 8 ways.
        Variant{"layer_norm_convs_stable", "Wav2Vec2ForCTC",
                R"("feat_extract_norm": "layer", "conv_bias": true, "do_stable_layer_norm": true, "num_conv_pos_embeddings": 15,
                   "num_conv_pos_embedding_groups": 8, "hidden_act": "gelu_new")"},
        Variant{"hubert_ctc_no_projection_norm", "HubertForCTC", R"("model_type": "hubert", "feat_proj_layer_norm": false)"},
        Variant{"hubert_model", "HubertModel", R"("model_type": "hubert")"},
        Variant{"wav2vec2_model_stable", "Wav2Vec2Model", R"("do_stable_layer_norm": true, "feat_extract_activation": "relu")"}),
    [](const auto& info) { return info.param.name; });

// A weight_g whose shape cannot norm the kernel (a hostile or broken file) is one error naming the tensors.
TEST(Wav2Vec2, AMalformedWeightNormIsAnErrorNamingTheTensors) {
  const fs::path dir = temp_dir("w2v_bad_weight_g");
  fs::create_directories(dir / "model");
  write_file(dir / "model" / "config.json", fixture_config().dump(2));
  const auto ck = hf::load_checkpoint(models_dir() / "wav2vec2");
  std::vector<hf::TensorToWrite> tensors;
  for (const auto& [key, t] : ck.tensors) {
    std::vector<int64_t> shape = t.shape;
    if (key.size() > 9 && key.compare(key.size() - 9, 9, ".weight_g") == 0) shape = {shape.back()};  // [K], not [1, 1, K]
    tensors.push_back({key, t.dtype, shape, t.data});
  }
  hf::write_safetensors(dir / "model" / "model.safetensors", tensors);
  auto r = run_cli("export -q '" + (dir / "model").string() + "' '" + (dir / "out").string() + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("wav2vec2.encoder.pos_conv_embed.conv.weight_g"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("weight_g must be [1, 1, kernel]"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST(Wav2Vec2, UnsupportedOptionsAreRefusedByKey) {
  for (const auto& [key, value] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"add_adapter", true}, {"feat_extract_norm", "batch"}, {"adapter_attn_dim", 16}, {"conv_pos_batch_norm", true},
           {"conv_kernel", {10, 3}}}) {
    const fs::path dir = copy_fixture("wav2vec2", "w2v_refuse_" + key);
    auto config = fixture_config();
    config[key] = value;
    write_file(dir / "config.json", config.dump(2));
    auto r = run_cli("export -q '" + dir.string() + "' '" + (dir.parent_path() / "out").string() + "'");
    EXPECT_EQ(r.exit_code, 1) << key;
    EXPECT_NE(r.err.find(key), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir.parent_path() / "out")) << key;
  }
}

}  // namespace
}  // namespace hf2onnx::test
