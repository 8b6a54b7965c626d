// Tier 3: every fixture exported at opsets 14 and 17, run in ONNX Runtime at both input sets and
// compared with the transformers reference outputs (atol 1e-4).
#include <cmath>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <onnx/onnx_pb.h>

#include "common/test_util.h"
#include "hf/safetensors.h"
#include "hf2onnx/export.h"
#include "models/model.h"

namespace hf2onnx::test {
namespace {

constexpr double kAtol = 1e-4;

nlohmann::json manifest(const std::string& fixture) {
  std::ifstream in(models_dir() / fixture / "ref" / "manifest.json");
  return nlohmann::json::parse(in);
}

struct Case {
  std::string fixture;
  int opset;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.fixture << " opset " << c.opset; }

class FixtureExport : public ::testing::TestWithParam<Case> {};

TEST_P(FixtureExport, MatchesTransformersAtBothInputSets) {
  const auto& [fixture, opset] = GetParam();
  const fs::path out = temp_dir("e2e_" + fixture + "_" + std::to_string(opset));
  ExportOptions opt;
  opt.model_dir = models_dir() / fixture;
  opt.out_dir = out / "export";
  opt.opset = opset;
  export_model(opt);
  // The hub layout: the model in onnx/, its config beside onnx/.
  const fs::path model = out / "export" / "onnx" / "model.onnx";
  ASSERT_TRUE(fs::exists(model));
  EXPECT_TRUE(fs::exists(out / "export" / "config.json"));

  auto m = manifest(fixture);
  onnx::ModelProto proto = load_onnx(model);
  // The graph's inputs are exactly the reference's, with dynamic batch and sequence dims (images: a dynamic
  // batch of the configured size, which the learned positions fix).
  std::vector<std::string> inputs;
  for (const auto& vi : proto.graph().input()) {
    inputs.push_back(vi.name());
    const auto& dims = vi.type().tensor_type().shape().dim();
    if (vi.name() == "pixel_values") {
      ASSERT_EQ(dims.size(), 4);
      EXPECT_EQ(dims[0].dim_param(), "batch_size");
      for (int d = 1; d < 4; ++d) EXPECT_TRUE(dims[d].has_dim_value()) << d;
      continue;
    }
    ASSERT_EQ(dims.size(), 2);
    EXPECT_EQ(dims[0].dim_param(), "batch_size");
    EXPECT_EQ(dims[1].dim_param(), "sequence_length");
  }
  std::vector<std::string> expected_inputs;
  for (const auto& [name, spec] : m["sets"]["a"]["inputs"].items()) expected_inputs.push_back(name);
  std::sort(inputs.begin(), inputs.end());
  std::sort(expected_inputs.begin(), expected_inputs.end());
  EXPECT_EQ(inputs, expected_inputs);

  for (const std::string set : {"a", "b"}) {
    const fs::path ref = models_dir() / fixture / "ref" / set;
    const fs::path got = out / ("ort_" + set);
    run_ort(model, ref, got);
    size_t compared = 0;
    for (const auto& [name, spec] : m["sets"][set]["outputs"].items()) {
      ASSERT_TRUE(fs::exists(got / (name + ".npy"))) << "output " << name << " missing at set " << set;
      Array expected = read_npy(ref / (name + ".npy"));
      Array actual = read_npy(got / (name + ".npy"));
      EXPECT_EQ(actual.shape, expected.shape) << name << " at set " << set;
      double diff = max_abs_diff(actual, expected);
      EXPECT_LE(diff, kAtol) << fixture << " opset " << opset << " set " << set << " output " << name;
      ++compared;
    }
    EXPECT_GT(compared, 0u);
  }
}

std::vector<Case> cases() {
  std::vector<Case> c;
  for (const char* f : {"bert", "bert-seqcls", "bert-legacy", "distilbert", "roberta", "xlm-roberta", "vit", "clip-vision", "clip-text", "wav2vec2"})
    for (int opset : {14, 17, kMaxOpset}) c.push_back({f, opset});
  return c;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureExport, ::testing::ValuesIn(cases()), [](const auto& info) {
  std::string n = info.param.fixture + "_opset" + std::to_string(info.param.opset);
  for (auto& ch : n)
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
});

TEST(TraceShapes, DifferFromEachOtherAndFromTheFixtureSets) {
  const auto& shapes = trace_shapes();
  ASSERT_EQ(shapes.size(), 2u);
  for (const auto& s : shapes) {
    const int64_t b = s.at("batch_size"), n = s.at("sequence_length");
    EXPECT_FALSE(b == 2 && n == 7);
    EXPECT_FALSE(b == 3 && n == 11);
  }
  for (const auto& [dim, size] : shapes[0]) EXPECT_NE(size, shapes[1].at(dim)) << dim;
  // Derived sizes must differ too: the total length past + new.
  EXPECT_NE(shapes[0].at("past_sequence_length") + shapes[0].at("sequence_length"),
            shapes[1].at("past_sequence_length") + shapes[1].at("sequence_length"));
}

// --task feature-extraction on a BertForSequenceClassification checkpoint exports the base model.
TEST(TaskOverride, FeatureExtractionFromAClassificationCheckpoint) {
  const fs::path out = temp_dir("task_override");
  ExportOptions opt;
  opt.model_dir = models_dir() / "bert-seqcls";
  opt.out_dir = out;
  opt.task = "feature-extraction";
  auto r = export_model(opt);
  EXPECT_EQ(r.task, "feature-extraction");
  onnx::ModelProto proto = load_onnx(out / "onnx" / "model.onnx");
  std::vector<std::string> outputs;
  for (const auto& vi : proto.graph().output()) outputs.push_back(vi.name());
  EXPECT_EQ(outputs, (std::vector<std::string>{"last_hidden_state", "pooler_output"}));
  // Initializers keep the checkpoint's keys (with the "bert." prefix of the head checkpoint).
  bool found = false;
  for (const auto& t : proto.graph().initializer()) found = found || t.name() == "bert.embeddings.word_embeddings.weight";
  EXPECT_TRUE(found);
  // The reference logits are classifier(pooler_output): apply the checkpoint's classifier to our
  // pooler_output and compare, which checks the base model's outputs against transformers.
  const fs::path ref = models_dir() / "bert-seqcls" / "ref" / "b";
  run_ort(out / "onnx" / "model.onnx", ref, out / "ort_b");
  Array pooled = read_npy(out / "ort_b" / "pooler_output.npy");
  Array logits = read_npy(ref / "logits.npy");
  ASSERT_EQ(pooled.shape, (std::vector<int64_t>{3, 32}));
  auto ck = hf::read_safetensors(models_dir() / "bert-seqcls" / "model.safetensors");
  const auto& w = ck.at("classifier.weight");
  const auto& bias = ck.at("classifier.bias");
  ASSERT_EQ(w.shape, (std::vector<int64_t>{3, 32}));
  std::vector<float> computed(9);
  for (int r = 0; r < 3; ++r)
    for (int l = 0; l < 3; ++l) {
      double acc = reinterpret_cast<const float*>(bias.data)[l];
      for (int k = 0; k < 32; ++k) acc += double(pooled.f32()[r * 32 + k]) * reinterpret_cast<const float*>(w.data)[l * 32 + k];
      computed[r * 3 + l] = static_cast<float>(acc);
    }
  EXPECT_LE(max_abs_diff(make_f32({3, 3}, computed.data()), logits), 1e-4);
}

// transformers.js 4 (its own ONNX Runtime) loads the export exactly as written: the hub layout by its
// defaults, Optimum's with subfolder ''. FP32 logits equal transformers' at both sets; q8 loads
// onnx/model_quantized.onnx and computes what ONNX Runtime computes with that file here.
TEST(TransformersJs, LoadsAnEncoderExportAsWritten) {
  const fs::path dir = temp_dir("tjs_encoder");
  const std::string cls = "--class AutoModelForSequenceClassification";
  for (const std::string variant : {"hub", "optimum", "hub-external"}) {  // the last: weights in model.onnx_data
    const std::string layout = variant == "optimum" ? "optimum" : "hub";
    const fs::path out = dir / variant;
    auto r = run_cli("export -q '" + (models_dir() / "bert-seqcls").string() + "' '" + out.string() + "' --quantize --layout " +
                     layout + (variant == "hub-external" ? " --external-data" : ""));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string subfolder = layout == "hub" ? "" : " --subfolder ''";
    const fs::path files = layout == "hub" ? out / "onnx" : out;
    if (variant == "hub-external") {
      ASSERT_TRUE(fs::exists(files / "model.onnx_data"));
    }
    for (const std::string set : {"a", "b"}) {
      const fs::path ref = models_dir() / "bert-seqcls" / "ref" / set;
      const fs::path fp32 = dir / (variant + "_fp32_" + set), q8 = dir / (variant + "_q8_" + set), ort = dir / (variant + "_ort_" + set);
      run_tool("tjs_forward.mjs", "'" + out.string() + "' '" + ref.string() + "' '" + fp32.string() + "' " + cls + subfolder);
      EXPECT_LE(max_abs_diff(read_npy(fp32 / "logits.npy"), read_npy(ref / "logits.npy")), 1e-4) << variant << " set " << set;
      run_tool("tjs_forward.mjs", "'" + out.string() + "' '" + ref.string() + "' '" + q8.string() + "' " + cls + " --dtype q8" + subfolder);
      run_ort(files / "model_quantized.onnx", ref, ort);
      EXPECT_LE(max_abs_diff(read_npy(q8 / "logits.npy"), read_npy(ort / "logits.npy")), 1e-5) << variant << " set " << set;
    }
  }
}

// ViTModel from the image-classification checkpoint: the checkpoint's classifier applied to our
// last_hidden_state[:, 0] gives transformers' logits (the base model checked against the reference).
TEST(FixtureTaskOverride, VitFeatureExtractionFeedsTheClassifier) {
  const fs::path out = temp_dir("vit_features");
  auto r = run_cli("export -q '" + (models_dir() / "vit").string() + "' '" + out.string() + "' --task feature-extraction");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto ck = hf::read_safetensors(models_dir() / "vit" / "model.safetensors");
  const auto* w = reinterpret_cast<const float*>(ck.at("classifier.weight").data);
  const auto* bias = reinterpret_cast<const float*>(ck.at("classifier.bias").data);
  for (const std::string set : {"a", "b"}) {
    const fs::path ref = models_dir() / "vit" / "ref" / set;
    run_ort(out / "onnx" / "model.onnx", ref, out / ("ort_" + set));
    const Array hidden = read_npy(out / ("ort_" + set) / "last_hidden_state.npy");
    const Array logits = read_npy(ref / "logits.npy");
    ASSERT_EQ(hidden.shape.size(), 3u);
    EXPECT_EQ(hidden.shape[1], 17);  // [CLS] + (32 / 8)^2 patches
    const int64_t rows = hidden.shape[0], seq = hidden.shape[1], h = hidden.shape[2], labels = logits.shape[1];
    std::vector<float> computed(static_cast<size_t>(rows * labels));
    for (int64_t b = 0; b < rows; ++b)
      for (int64_t l = 0; l < labels; ++l) {
        double acc = bias[l];
        for (int64_t k = 0; k < h; ++k) acc += double(hidden.f32()[b * seq * h + k]) * w[l * h + k];
        computed[static_cast<size_t>(b * labels + l)] = static_cast<float>(acc);
      }
    EXPECT_LE(max_abs_diff(make_f32({rows, labels}, computed.data()), logits), 1e-4) << set;
  }
}

// CLIPVisionModel (no projection) from the WithProjection checkpoint: the checkpoint's visual_projection applied
// to our pooler_output gives transformers' image_embeds, and last_hidden_state is transformers'.
TEST(FixtureTaskOverride, ClipVisionModelPoolerFeedsTheProjection) {
  const fs::path dir = temp_dir("clip_vision_model");
  fs::copy(models_dir() / "clip-vision", dir / "src", fs::copy_options::recursive);
  auto config = nlohmann::json::parse(read_file(dir / "src" / "config.json"));
  config["architectures"] = {"CLIPVisionModel"};
  write_file(dir / "src" / "config.json", config.dump(2));
  auto r = run_cli("export -q '" + (dir / "src").string() + "' '" + (dir / "out").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto ck = hf::read_safetensors(models_dir() / "clip-vision" / "model.safetensors");
  const auto* w = reinterpret_cast<const float*>(ck.at("visual_projection.weight").data);
  for (const std::string set : {"a", "b"}) {
    const fs::path ref = models_dir() / "clip-vision" / "ref" / set;
    run_ort(dir / "out" / "onnx" / "model.onnx", ref, dir / ("ort_" + set));
    EXPECT_LE(max_abs_diff(read_npy(dir / ("ort_" + set) / "last_hidden_state.npy"), read_npy(ref / "last_hidden_state.npy")), 1e-4);
    const Array pooled = read_npy(dir / ("ort_" + set) / "pooler_output.npy");
    const Array embeds = read_npy(ref / "image_embeds.npy");
    const int64_t rows = pooled.shape[0], h = pooled.shape[1], p = embeds.shape[1];
    std::vector<float> computed(static_cast<size_t>(rows * p));
    for (int64_t b = 0; b < rows; ++b)
      for (int64_t o = 0; o < p; ++o) {
        double acc = 0;
        for (int64_t k = 0; k < h; ++k) acc += double(pooled.f32()[b * h + k]) * w[o * h + k];
        computed[static_cast<size_t>(b * p + o)] = static_cast<float>(acc);
      }
    EXPECT_LE(max_abs_diff(make_f32({rows, p}, computed.data()), embeds), 1e-4) << set;
  }
}

// A WordPiece tokenizer for a fixture's vocabulary ("[PAD]" "[UNK]" "[CLS]" "[SEP]" "[MASK]", then w5, w6, ...),
// in the tokenizer.json format transformers.js reads; the fixtures ship without one.
void write_wordpiece_tokenizer(const fs::path& dir, int vocab_size) {
  const std::vector<std::string> special = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  nlohmann::json vocab = nlohmann::json::object(), added = nlohmann::json::array();
  for (int i = 0; i < vocab_size; ++i) vocab[i < 5 ? special[i] : "w" + std::to_string(i)] = i;
  for (int i = 0; i < 5; ++i)
    added.push_back({{"id", i}, {"content", special[i]}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                     {"normalized", false}, {"special", true}});
  auto token = [](const char* t, int type) { return nlohmann::json{{"SpecialToken", {{"id", t}, {"type_id", type}}}}; };
  auto seq = [](const char* s, int type) { return nlohmann::json{{"Sequence", {{"id", s}, {"type_id", type}}}}; };
  const nlohmann::json tokenizer = {
      {"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", added},
      {"normalizer", {{"type", "BertNormalizer"}, {"clean_text", true}, {"handle_chinese_chars", true},
                      {"strip_accents", nullptr}, {"lowercase", true}}},
      {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
      {"post_processor", {{"type", "TemplateProcessing"},
                          {"single", {token("[CLS]", 0), seq("A", 0), token("[SEP]", 0)}},
                          {"pair", {token("[CLS]", 0), seq("A", 0), token("[SEP]", 0), seq("B", 1), token("[SEP]", 1)}},
                          {"special_tokens", {{"[CLS]", {{"id", "[CLS]"}, {"ids", {2}}, {"tokens", {"[CLS]"}}}},
                                              {"[SEP]", {{"id", "[SEP]"}, {"ids", {3}}, {"tokens", {"[SEP]"}}}}}}}},
      {"decoder", {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}}},
      {"model", {{"type", "WordPiece"}, {"unk_token", "[UNK]"}, {"continuing_subword_prefix", "##"},
                 {"max_input_chars_per_word", 100}, {"vocab", vocab}}}};
  write_file(dir / "tokenizer.json", tokenizer.dump());
  write_file(dir / "tokenizer_config.json", nlohmann::json({{"tokenizer_class", "BertTokenizer"}, {"do_lower_case", true},
                                                            {"model_max_length", 64}, {"unk_token", "[UNK]"},
                                                            {"cls_token", "[CLS]"}, {"sep_token", "[SEP]"},
                                                            {"pad_token", "[PAD]"}, {"mask_token", "[MASK]"}})
                                                .dump());
}

// transformers.js's pipeline('text-classification') on the export as written (tokenizer copied to the root
// by the export): every label's score equals softmax(logits) of ONNX Runtime on the ids its tokenizer made,
// FP32 and q8.
TEST(TransformersJs, TextClassificationPipelineOnTheExport) {
  const fs::path dir = temp_dir("tjs_pipeline");
  fs::copy(models_dir() / "bert-seqcls", dir / "src", fs::copy_options::recursive);
  write_wordpiece_tokenizer(dir / "src", 1000);
  auto r = run_cli("export -q '" + (dir / "src").string() + "' '" + (dir / "out").string() + "' --quantize");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(fs::exists(dir / "out" / "tokenizer.json"));
  for (const std::string dtype : {"fp32", "q8"}) {
    const fs::path in = dir / ("in_" + dtype), ort = dir / ("ort_" + dtype);
    const auto result = nlohmann::json::parse(run_tool_stdout(
        "tjs_pipeline.mjs", "'" + (dir / "out").string() + "' text-classification 'W5 w17 w923 w4' '" + in.string() +
                                "' --dtype " + dtype));
    EXPECT_EQ(read_npy(in / "input_ids.npy").shape, (std::vector<int64_t>{1, 6}));  // [CLS] w5 w17 w923 [UNK] [SEP]
    EXPECT_EQ(read_npy(in / "input_ids.npy").i64()[4], 1);
    run_ort(dir / "out" / "onnx" / (dtype == "q8" ? "model_quantized.onnx" : "model.onnx"), in, ort);
    const Array logits = read_npy(ort / "logits.npy");
    ASSERT_EQ(logits.shape, (std::vector<int64_t>{1, 3}));
    double norm = 0;
    for (int i = 0; i < 3; ++i) norm += std::exp(double(logits.f32()[i]));
    ASSERT_EQ(result.size(), 3u) << result.dump();
    for (const auto& e : result) {
      const int label = std::stoi(e["label"].get<std::string>().substr(6));  // LABEL_<i>
      EXPECT_NEAR(e["score"].get<double>(), std::exp(double(logits.f32()[label])) / norm, 1e-5) << dtype << " " << e.dump();
    }
  }
}

}  // namespace
}  // namespace hf2onnx::test
