// Encoder-decoder configurations beyond the fixtures' (T5 gated-gelu and untied, mT5 defaults, other
// bucket and head sizes; mBART; BART scale_embedding and untied; Marian with separate embeddings; Whisper
// with 128 mel bins; the base models): a checkpoint is made from the fixture's weights plus random values
// for what the configuration adds, exported, and every graph — encoder, decoder, decoder with past (a
// non-empty past) and both branches of the merged decoder — is compared in ONNX Runtime with the same
// modules run eagerly in libtorch, at a shape the exporter did not trace. Options that would change the
// graph and are not implemented are refused with an error naming the key.
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

// The fixture's config with the architecture replaced and the patch's keys overriding the fixture's.
fs::path patched_model(const std::string& fixture, const std::string& architecture, const std::string& patch,
                       const std::string& name) {
  const fs::path dir = temp_dir("s2s_variant_" + name) / "model";
  fs::create_directories(dir);
  nlohmann::json cfg = nlohmann::json::parse(read_file(models_dir() / fixture / "config.json"));
  cfg["architectures"] = {architecture};
  const nlohmann::json p = nlohmann::json::parse("{" + patch + "}");
  cfg.merge_patch(p);
  for (const auto& [k, v] : p.items())
    if (!v.is_null()) {
      EXPECT_EQ(cfg[k], v) << k;
    }
  write_file(dir / "config.json", cfg.dump(2));
  return dir;
}

struct Variant {
  std::string name, fixture, architecture, patch;
};
void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

class Seq2SeqVariants : public ::testing::TestWithParam<Variant> {};

TEST_P(Seq2SeqVariants, EveryGraphMatchesEager) {
  const Variant& v = GetParam();
  torch::manual_seed(1);
  const fs::path dir = patched_model(v.fixture, v.architecture, v.patch, v.name);
  // Body from the fixture, random values for what the configuration adds or reshapes.
  const auto body = hf::load_checkpoint(models_dir() / v.fixture);
  auto model = build_model(dir, body);
  std::vector<hf::TensorToWrite> tensors;
  std::vector<torch::Tensor> keep;
  for (const auto& p : model->module->named_parameters()) {
    auto it = body.tensors.find(p.key());
    torch::Tensor t = it != body.tensors.end() && it->second.shape == p.value().sizes().vec()
                          ? to_float_tensor(it->second).contiguous()
                          : torch::randn(p.value().sizes()) * 0.5;
    keep.push_back(t);
    tensors.push_back({p.key(), hf::DType::F32, t.sizes().vec(), t.data_ptr()});
  }
  hf::write_safetensors(dir / "model.safetensors", tensors);
  ExportOptions opt;
  opt.model_dir = dir;
  opt.out_dir = dir.parent_path() / "onnx";
  export_model(opt);

  const auto ck = hf::load_checkpoint(dir);
  auto eager = build_model(dir, ck);
  load_weights(*eager->module, ck, eager->load_rules, true, dir.string());
  torch::NoGradGuard no_grad;
  // Sizes the exporter did not trace at (trace_shapes): every dynamic dim differs.
  const DimSizes sizes = {{"batch_size", 3}, {"sequence_length", 7}, {"encoder_sequence_length", 11},
                          {"decoder_sequence_length", 3}, {"past_decoder_sequence_length", 5}};
  GraphRuns runs = expect_graphs_match_eager(*eager, opt.out_dir / "onnx", dir.parent_path(), sizes);
  if (!runs.count(GraphKind::DecoderWithPast)) return;

  // The merged decoder: each branch on its decoder's inputs equals that decoder's eager outputs.
  const ExportGraph& no_past = eager->graph(GraphKind::Decoder);
  const ExportGraph& with_past = eager->graph(GraphKind::DecoderWithPast);
  for (const bool cached : {false, true}) {
    const fs::path in = dir.parent_path() / (cached ? "in_merged_cached" : "in_merged"),
                   out = dir.parent_path() / (cached ? "out_merged_cached" : "out_merged");
    fs::create_directories(in);
    const auto& [d_in, d_out] = runs[GraphKind::Decoder];
    for (size_t i = 0; i < d_in.size(); ++i) write_npy(in / (no_past.inputs[i].name + ".npy"), to_npy(d_in[i]));
    const auto& [p_in, p_out] = runs[GraphKind::DecoderWithPast];
    for (size_t i = 0; i < p_in.size(); ++i) {
      const std::string& name = with_past.inputs[i].name;
      if (cached || name.rfind("past_key_values.", 0) == 0) write_npy(in / (name + ".npy"), to_npy(p_in[i]));
    }
    write_npy(in / "use_cache_branch.npy", to_npy(torch::full({1}, cached, torch::kBool)));
    run_ort(opt.out_dir / "onnx" / "decoder_model_merged.onnx", in, out);
    const ExportGraph& g = cached ? with_past : no_past;
    const auto& want = cached ? p_out : d_out;
    for (size_t i = 0; i < want.size(); ++i) {
      Array got = read_npy(out / (g.outputs[i].name + ".npy"));
      EXPECT_LE(max_abs_diff(got, to_npy(want[i])), 1e-4) << (cached ? "cached " : "") << g.outputs[i].name;
    }
  }
}

const Variant kVariants[] = {
    {"t5_gated_untied", "t5", "T5ForConditionalGeneration", R"("feed_forward_proj": "gated-gelu", "tie_word_embeddings": false)"},
    {"mt5_defaults", "t5", "MT5ForConditionalGeneration", R"("model_type": "mt5", "feed_forward_proj": null)"},
    {"t5_shapes", "t5", "T5ForConditionalGeneration",
     R"("d_kv": 16, "num_decoder_layers": 3, "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128, "feed_forward_proj": "gated-silu")"},
    {"t5_encoder", "t5", "T5EncoderModel", ""},
    {"bart_scaled_relu", "bart", "BartForConditionalGeneration", R"("scale_embedding": true, "activation_function": "relu")"},
    {"bart_untied", "bart", "BartForConditionalGeneration", R"("tie_word_embeddings": false)"},
    {"bart_base", "bart", "BartModel", ""},
    {"mbart", "bart", "MBartForConditionalGeneration", R"("model_type": "mbart", "scale_embedding": true)"},
    {"marian_unshared", "marian", "MarianMTModel",
     R"("share_encoder_decoder_embeddings": false, "scale_embedding": true, "activation_function": "swish")"},
    {"marian_base", "marian", "MarianModel", ""},
    {"whisper_128_bins", "whisper", "WhisperForConditionalGeneration", R"("num_mel_bins": 128)"},
    {"whisper_base", "whisper", "WhisperModel", ""},
};

INSTANTIATE_TEST_SUITE_P(Configs, Seq2SeqVariants, ::testing::ValuesIn(kVariants),
                         [](const auto& info) { return info.param.name; });

// Options that change the graph and are not implemented: an error naming the key, nothing written.
TEST(Seq2SeqVariants, UnsupportedOptionsAreRefusedByName) {
  const std::pair<Variant, std::string> cases[] = {
      {{"bad_ffn", "t5", "T5ForConditionalGeneration", R"("feed_forward_proj": "gated-gelu-new")"}, "feed_forward_proj"},
      {{"bad_act", "t5", "T5ForConditionalGeneration", R"("feed_forward_proj": "gated-mish")"}, "feed_forward_proj"},
      {{"tied_stacks", "bart", "BartForConditionalGeneration", R"("tie_encoder_decoder": true)"}, "tie_encoder_decoder"},
      {{"weighted_sum", "whisper", "WhisperForConditionalGeneration", R"("use_weighted_layer_sum": true)"}, "use_weighted_layer_sum"},
      {{"short_audio", "whisper", "WhisperForConditionalGeneration", R"("max_source_positions": 750)"}, "max_source_positions"},
      {{"marian_vocab", "marian", "MarianMTModel", R"("decoder_vocab_size": 500)"}, "decoder_vocab_size"},
  };
  for (const auto& [v, key] : cases) {
    const fs::path dir = patched_model(v.fixture, v.architecture, v.patch, v.name);
    fs::copy(models_dir() / v.fixture, dir, fs::copy_options::skip_existing | fs::copy_options::recursive);
    ExportOptions opt;
    opt.model_dir = dir;
    opt.out_dir = dir.parent_path() / "onnx";
    const std::string e = error_of([&] { export_model(opt); });
    EXPECT_NE(e.find(key), std::string::npos) << v.name << ": " << e;
    EXPECT_NE(e.find("config.json"), std::string::npos) << v.name << ": " << e;
    EXPECT_FALSE(fs::exists(opt.out_dir)) << v.name;
  }
}

}  // namespace
}  // namespace hf2onnx::test
