// Heads and configurations beyond the fixtures': for every family and task, a checkpoint is made from
// a fixture's body plus random head weights, exported through the full pipeline, and the ONNX Runtime
// outputs are compared with the same module run eagerly in libtorch (at the fixture's set-b inputs).
#include <gtest/gtest.h>

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

std::shared_ptr<ExportModel> build(const fs::path& dir, Task task, const hf::Checkpoint* ck) {
  auto config = hf::Config::load(dir / "config.json");
  const auto& arch = find_architecture(config.architecture(), "test");
  BuildContext ctx{config, task, [ck](const std::string& key) { return ck && ck->has_tensor(key); }};
  return arch.build(ctx);
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
  std::string cfg = read_file(models_dir() / c.fixture / "config.json");
  auto arch_pos = cfg.find("\"architectures\"");
  auto end = cfg.find(']', arch_pos);
  cfg.replace(arch_pos, end - arch_pos + 1, "\"architectures\": [\"" + c.architecture + "\"]" + c.config_patch);
  write_file(dir / "config.json", cfg);

  // Body from the fixture (under the head's prefix), random values for everything else.
  auto body = hf::load_checkpoint(models_dir() / c.fixture);
  auto model = build(dir, c.task, &body);
  std::vector<hf::TensorToWrite> tensors;
  std::vector<torch::Tensor> keep;
  for (const auto& p : model->module->named_parameters()) {
    std::string key = p.key();
    std::string body_key = key.rfind(c.prefix, 0) == 0 ? key.substr(c.prefix.size()) : key;
    torch::Tensor t;
    auto it = body.tensors.find(body_key);
    if (it != body.tensors.end()) t = to_float_tensor(it->second).contiguous();
    else t = torch::randn(p.value().sizes()) * 0.5;
    keep.push_back(t);
    tensors.push_back({key, hf::DType::F32, t.sizes().vec(), t.data_ptr()});
  }
  hf::write_safetensors(dir / "model.safetensors", tensors);

  ExportOptions opt;
  opt.model_dir = dir;
  opt.out_dir = dir.parent_path() / "onnx";
  export_model(opt);
  const fs::path ref = models_dir() / c.fixture / "ref" / "b";
  run_ort(opt.out_dir / "model.onnx", ref, dir.parent_path() / "ort");

  // Eager: the same module, loaded from the written checkpoint, on the same inputs.
  auto ck = hf::load_checkpoint(dir);
  auto eager = build(dir, c.task, &ck);
  load_weights(*eager->module, ck, eager->load_rules, true, dir.string());
  std::vector<torch::Tensor> inputs;
  for (const auto& spec : eager->inputs) inputs.push_back(load_input(ref / (spec.name + ".npy")));
  torch::NoGradGuard no_grad;
  auto outputs = eager->forward(inputs);
  ASSERT_EQ(outputs.size(), eager->outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    Array got = read_npy(dir.parent_path() / "ort" / (eager->outputs[i].name + ".npy"));
    torch::Tensor e = outputs[i].contiguous();
    Array want = make_f32(e.sizes().vec(), e.data_ptr<float>());
    EXPECT_EQ(got.shape, want.shape) << eager->outputs[i].name;
    EXPECT_LE(max_abs_diff(got, want), 1e-4) << eager->outputs[i].name;
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
