// Heads and configurations beyond the fixtures': for every family and task, a checkpoint is made from
// a fixture's body plus random head weights, exported through the full pipeline, and the ONNX Runtime
// outputs are compared with the same module run eagerly in libtorch (at the fixture's set-b inputs).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/model_util.h"
#include "common/test_util.h"
#include "hf/checkpoint.h"
#include "hf/safetensors.h"
#include "hf2onnx/export.h"
#include "models/loader.h"
#include "models/model.h"
#include "models/registry.h"

namespace hf2onnx::test {
namespace {

torch::Tensor load_input(const fs::path& file) {
  Array a = read_npy(file);
  return torch::from_blob(a.bytes.data(), a.shape, torch::kLong).clone();
}

struct HeadCase {
  std::string fixture, architecture, prefix;
  Task task;
  std::string config_patch;  // extra JSON members
};

void PrintTo(const HeadCase& c, std::ostream* os) { *os << c.architecture << " (" << c.fixture << ")"; }

class Heads : public ::testing::TestWithParam<HeadCase> {};

TEST_P(Heads, ExportMatchesEager) {
  const HeadCase& c = GetParam();
  torch::manual_seed(1);
  const fs::path dir = temp_dir("head_" + c.architecture + std::to_string(static_cast<int>(c.task))) / "model";
  fs::create_directories(dir);
  // The fixture's config with the architecture replaced and the patch's keys overriding the fixture's.
  nlohmann::json cfg = nlohmann::json::parse(read_file(models_dir() / c.fixture / "config.json"));
  cfg["architectures"] = {c.architecture};
  const nlohmann::json patch = nlohmann::json::parse("{" + (c.config_patch.empty() ? "" : c.config_patch.substr(2)) + "}");
  cfg.merge_patch(patch);
  for (const auto& [k, v] : patch.items()) {
    if (!v.is_null()) {  // merge_patch removes keys patched with null
      ASSERT_EQ(cfg[k], v) << k;
    }
  }
  write_file(dir / "config.json", cfg.dump(2));
  // Body from the fixture (under the head's prefix), random values for everything else.
  auto body = hf::load_checkpoint(models_dir() / c.fixture);
  auto model = build_model(dir, body, c.task);
  std::vector<hf::TensorToWrite> tensors;
  std::vector<torch::Tensor> keep;
  for (const auto& p : model->module->named_parameters()) {
    std::string key = p.key();
    auto it = body.tensors.find(key);  // the same key, else without / with the prefix
    if (it == body.tensors.end() && !c.prefix.empty())
      it = body.tensors.find(key.rfind(c.prefix, 0) == 0 ? key.substr(c.prefix.size()) : c.prefix + key);
    torch::Tensor t;
    if (it != body.tensors.end() && it->second.shape == p.value().sizes().vec())  // else the patch changed it
      t = to_float_tensor(it->second).contiguous();
    else t = torch::randn(p.value().sizes()) * 0.5;
    keep.push_back(t);
    tensors.push_back({key, hf::DType::F32, t.sizes().vec(), t.data_ptr()});
  }
  hf::write_safetensors(dir / "model.safetensors", tensors);

  ExportOptions opt;
  opt.model_dir = dir;
  opt.out_dir = dir.parent_path() / "onnx";
  export_model(opt);

  // Eager: the same module, loaded from the written checkpoint, on the same inputs (set b; decoders
  // start from an empty cache).
  auto ck = hf::load_checkpoint(dir);
  auto eager = build_model(dir, ck, c.task);
  load_weights(*eager->module, ck, eager->load_rules, true, dir.string());
  const fs::path ref = dir.parent_path() / "inputs";
  fs::create_directories(ref);
  const fs::path fixture_ref = models_dir() / c.fixture / "ref" / "b";
  std::vector<torch::Tensor> inputs;
  for (const auto& spec : eager->graph().inputs) {
    if (spec.name.rfind("past_key_values.", 0) == 0) {
      const int64_t batch = inputs.at(0).size(0);
      inputs.push_back(torch::zeros({batch, std::stoll(spec.dims[1]), 0, std::stoll(spec.dims[3])}));
      write_npy(ref / (spec.name + ".npy"), Array{"<f4", inputs.back().sizes().vec(), {}});
    } else {
      fs::copy_file(fixture_ref / (spec.name + ".npy"), ref / (spec.name + ".npy"));
      inputs.push_back(load_input(ref / (spec.name + ".npy")));
    }
  }
  run_ort(opt.out_dir / "onnx" / "model.onnx", ref, dir.parent_path() / "ort");
  torch::NoGradGuard no_grad;
  auto outputs = eager->graph().forward(inputs);
  ASSERT_EQ(outputs.size(), eager->graph().outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    Array got = read_npy(dir.parent_path() / "ort" / (eager->graph().outputs[i].name + ".npy"));
    torch::Tensor e = outputs[i].contiguous();
    Array want = make_f32(e.sizes().vec(), e.data_ptr<float>());
    EXPECT_EQ(got.shape, want.shape) << eager->graph().outputs[i].name;
    EXPECT_LE(max_abs_diff(got, want), 1e-4) << eager->graph().outputs[i].name;
  }
}

std::vector<HeadCase> head_cases() {
  std::vector<HeadCase> c;
  const std::pair<const char*, Task> heads[] = {{"ForSequenceClassification", Task::TextClassification},
                                                {"ForTokenClassification", Task::TokenClassification},
                                                {"ForQuestionAnswering", Task::QuestionAnswering},
                                                {"ForMaskedLM", Task::FillMask}};
  for (const auto& [suffix, task] : heads) {
    c.push_back({"bert", std::string("Bert") + suffix, "bert.", task,
                 task == Task::QuestionAnswering ? "" : ", \"num_labels\": 5"});
    c.push_back({"roberta", std::string("Roberta") + suffix, "roberta.", task, ""});
    c.push_back({"xlm-roberta", std::string("XLMRoberta") + suffix, "roberta.", task, ""});
    c.push_back({"distilbert", std::string("DistilBert") + suffix, "distilbert.", task, ""});
  }
  // Configurations the fixtures do not cover.
  c.push_back({"bert", "BertModel", "", Task::FeatureExtraction, ", \"hidden_act\": \"gelu_new\""});
  c.push_back({"bert", "BertModel", "", Task::FeatureExtraction, ", \"hidden_act\": \"relu\""});
  c.push_back({"bert", "BertForSequenceClassification", "bert.", Task::TextClassification,
               ", \"hidden_act\": \"gelu_pytorch_tanh\", \"layer_norm_eps\": 1e-5"});
  c.push_back({"distilbert", "DistilBertModel", "", Task::FeatureExtraction,
               ", \"activation\": \"relu\", \"sinusoidal_pos_embds\": true"});
  c.push_back({"bert", "BertForMaskedLM", "bert.", Task::FillMask, ", \"tie_word_embeddings\": false"});
  // CLIP's text tower (transformers 4.32): the projection head, openai's legacy eos_token_id 2 (pooled at the
  // largest id), exact gelu.
  c.push_back({"clip-text", "CLIPTextModelWithProjection", "", Task::FeatureExtraction, ", \"eos_token_id\": 2"});
  c.push_back({"clip-text", "CLIPTextModel", "", Task::FeatureExtraction, ", \"hidden_act\": \"gelu\""});
  // Decoders: configurations beyond the fixtures'. max_position_embeddings 8 < the 11 tokens of set b, so
  // dynamic NTK scaling takes its scaled branch in ONNX Runtime.
  c.push_back({"llama", "LlamaForCausalLM", "model.", Task::TextGeneration,
               R"(, "rope_scaling": {"type": "linear", "factor": 4.0}, "rope_theta": 500.0)"});
  c.push_back({"llama", "LlamaForCausalLM", "model.", Task::TextGeneration,
               R"(, "rope_scaling": {"type": "dynamic", "factor": 2.0}, "max_position_embeddings": 8)"});
  c.push_back({"llama-gqa", "LlamaForCausalLM", "model.", Task::TextGeneration,
               R"(, "attention_bias": true, "tie_word_embeddings": true, "hidden_act": "gelu")"});
  c.push_back({"llama", "LlamaForCausalLM", "model.", Task::TextGeneration, R"(, "num_key_value_heads": 1)"});
  c.push_back({"llama-gqa", "LlamaModel", "model.", Task::FeatureExtraction, ""});
  c.push_back({"gpt2", "GPT2LMHeadModel", "transformer.", Task::TextGeneration,
               R"(, "scale_attn_by_inverse_layer_idx": true, "n_inner": null, "activation_function": "relu")"});
  c.push_back({"gpt2", "GPT2LMHeadModel", "transformer.", Task::TextGeneration,
               R"(, "tie_word_embeddings": false, "scale_attn_weights": false, "activation_function": "gelu_pytorch_tanh")"});
  c.push_back({"gpt2", "GPT2Model", "transformer.", Task::FeatureExtraction, ""});
  // 4.44 families beyond their fixtures. Phi-3 longrope: set b's 11 positions pass original_max 8, so the
  // long factors and the attention factor are in play (su is Phi3Config's old name for it).
  c.push_back({"phi3", "Phi3ForCausalLM", "model.", Task::TextGeneration,
               R"(, "max_position_embeddings": 32, "original_max_position_embeddings": 8, "rope_scaling": {"type": "su",
                 "short_factor": [1.0, 1.25, 1.5, 2.0], "long_factor": [1.5, 2.5, 4.0, 7.0]})"});
  c.push_back({"phi3", "Phi3ForCausalLM", "model.", Task::TextGeneration,
               R"(, "num_key_value_heads": 2, "tie_word_embeddings": true, "hidden_act": "gelu_new")"});
  c.push_back({"mistral", "MistralForCausalLM", "model.", Task::TextGeneration, R"(, "sliding_window": 2, "head_dim": 16)"});
  c.push_back({"mistral", "MistralModel", "model.", Task::FeatureExtraction, ""});
  c.push_back({"qwen2", "Qwen2ForCausalLM", "model.", Task::TextGeneration, R"(, "tie_word_embeddings": false)"});
  c.push_back({"gemma", "GemmaForCausalLM", "model.", Task::TextGeneration,
               R"(, "hidden_activation": null, "hidden_act": "silu", "attention_bias": true)"});
  c.push_back({"llama3", "LlamaForCausalLM", "model.", Task::TextGeneration,
               R"(, "rope_scaling": {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 2.0, "high_freq_factor": 8.0, "original_max_position_embeddings": 32})"});
  return c;
}

INSTANTIATE_TEST_SUITE_P(AllHeads, Heads, ::testing::ValuesIn(head_cases()), [](const auto& info) {
  std::string n = info.param.architecture + "_" + std::to_string(info.index);
  for (auto& ch : n)
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
});

}  // namespace
}  // namespace hf2onnx::test
