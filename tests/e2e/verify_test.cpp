// The verify stage and `hf2onnx verify`: good exports pass (every export in this suite runs the stage; here
// its report), and broken ones are caught — a corrupted weight in model.onnx, a wrong lowering behind the
// test-only HF2ONNX_TEST_FAULT switch, a config value the graph does not honour, an INT8 twin below
// --min-cosine — each with exit code 1 and the failing file and output named.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "hf/safetensors.h"

namespace hf2onnx::test {
namespace {

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

nlohmann::json report_of(const std::string& fixture, const fs::path& dir, const std::string& extra = "") {
  auto r = run_cli("export -q " + q(models_dir() / fixture) + " " + q(dir / "out") + " --report " + q(dir / "report.json") + extra);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return nlohmann::json::parse(read_file(dir / "report.json"));
}

// The report's verification: against libtorch at both verify shapes, every output of every graph; decoders'
// cached steps; the merged decoder's two branches.
TEST(Verify, ExportsReportWhatWasCheckedAgainstLibtorch) {
  struct Case {
    std::string fixture;
    size_t min_checks;
    std::vector<std::string> must_mention;
  };
  for (const auto& c : std::vector<Case>{{"bert-seqcls", 2, {"against libtorch, batch_size 1, sequence_length 5",
                                                               "against libtorch, batch_size 4, sequence_length 7"}},
                                         {"llama", 2 * 5 + 2, {"prefill + 2 cached steps against one call"}},
                                         {"t5", 10, {"cached branch against decoder_with_past_model.onnx",
                                                     "no-past branch against decoder_model.onnx",
                                                     "decoder_model.onnx + decoder_with_past_model.onnx"}}}) {
    const fs::path dir = temp_dir("verify_report_" + c.fixture);
    const auto v = report_of(c.fixture, dir)["verification"];
    EXPECT_TRUE(v["ran"].get<bool>()) << c.fixture;
    EXPECT_TRUE(v["passed"].get<bool>()) << c.fixture;
    EXPECT_EQ(v["reference"], "libtorch eager");
    EXPECT_GE(v["checks"].size(), c.min_checks) << c.fixture;
    const std::string all = v["checks"].dump();
    for (const auto& m : c.must_mention) EXPECT_NE(all.find(m), std::string::npos) << c.fixture << ": " << m;
    for (const auto& check : v["checks"]) EXPECT_LE(check["max_abs_diff"].get<double>(), check["tolerance"].get<double>());
  }
}

// Rope scaling that picks its frequencies from each call's length (dynamic NTK; max_position_embeddings 8 < the
// verify shapes' 11 and 7 tokens, so it scales): transformers' logits differ between chunkings too, so the cached
// steps are not compared, and the report says why; everything else is still checked against libtorch.
TEST(Verify, PerCallRopeScalingSkipsOnlyTheCachedStepsAndSaysWhy) {
  const fs::path model = copy_fixture("llama", "verify_dynamic_rope");
  auto config = nlohmann::json::parse(read_file(model / "config.json"));
  config["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
  config["max_position_embeddings"] = 8;
  write_file(model / "config.json", config.dump(2));
  const fs::path dir = model.parent_path();
  auto r = run_cli("export -q " + q(model) + " " + q(dir / "out") + " --report " + q(dir / "report.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto v = nlohmann::json::parse(read_file(dir / "report.json"))["verification"];
  EXPECT_TRUE(v["passed"].get<bool>());
  EXPECT_NE(v["not_done"].get<std::string>().find("cached steps not compared: dynamic NTK rope scaling"), std::string::npos) << v.dump();
  EXPECT_EQ(v["checks"].dump().find("cached steps"), std::string::npos);
  EXPECT_GE(v["checks"].size(), 10u);
}

// A LayerNorm weight of model.onnx overwritten after the export: `verify OUT MODEL` fails naming the output.
TEST(Verify, ACorruptedWeightIsCaught) {
  const fs::path dir = temp_dir("verify_corrupt");
  auto r = run_cli("export -q " + q(models_dir() / "bert") + " " + q(dir / "out"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(run_cli("verify -q " + q(dir / "out") + " " + q(models_dir() / "bert")).exit_code, 0);

  // The embeddings' LayerNorm weight is stored verbatim (raw float32 bytes): find it and scale it.
  const auto ck = hf::read_safetensors(models_dir() / "bert" / "model.safetensors");
  const auto& w = ck.at("embeddings.LayerNorm.weight");
  const std::string needle(reinterpret_cast<const char*>(w.data), static_cast<size_t>(w.shape[0] * 4));
  const fs::path model = dir / "out" / "onnx" / "model.onnx";
  std::string bytes = read_file(model);
  const size_t at = bytes.find(needle);
  ASSERT_NE(at, std::string::npos);
  ASSERT_EQ(bytes.find(needle, at + 1), std::string::npos);
  for (size_t i = 0; i < needle.size(); i += 4) {
    float f;
    std::memcpy(&f, bytes.data() + at + i, 4);
    f *= 1.5f;
    std::memcpy(bytes.data() + at + i, &f, 4);
  }
  write_file(model, bytes);
  r = run_cli("verify " + q(dir / "out") + " " + q(models_dir() / "bert"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("verification failed: model.onnx: output 'last_hidden_state'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("> tolerance"), std::string::npos) << r.err;
}

// Wrong lowerings behind the test switch: positions off by one (BERT's come from a cumsum), and the config's
// layer_norm_eps (0.3 here) not honoured by the graph. The export fails naming file and output and leaves nothing;
// with --keep-failed the files are written and the exit code is still 1.
TEST(Verify, AWrongLoweringFailsTheExport) {
  const fs::path dir = temp_dir("verify_fault");
  const fs::path eps_model = copy_fixture("bert", "verify_fault_eps");
  auto config = nlohmann::json::parse(read_file(eps_model / "config.json"));
  config["layer_norm_eps"] = 0.3;
  write_file(eps_model / "config.json", config.dump(2));
  for (const auto& [fault, model] : std::vector<std::pair<std::string, fs::path>>{{"cumsum_off_by_one", models_dir() / "bert"},
                                                                                  {"layer_norm_default_eps", eps_model}}) {
    const fs::path out = dir / fault;
    const std::string env = "HF2ONNX_TEST_FAULT=" + fault + " ";
    auto r = run_cli_shell(env + q(binary()) + " export " + q(model) + " " + q(out));
    EXPECT_EQ(r.exit_code, 1) << fault;
    EXPECT_NE(r.err.find("verification failed: model.onnx: output 'last_hidden_state' (against libtorch"), std::string::npos)
        << fault << ": " << r.err;
    EXPECT_FALSE(fs::exists(out)) << fault;
    r = run_cli_shell(env + q(binary()) + " export -q --keep-failed " + q(model) + " " + q(out));
    EXPECT_EQ(r.exit_code, 1) << fault;
    EXPECT_TRUE(fs::exists(out / "onnx" / "model.onnx")) << fault;
    EXPECT_NE(r.err.find("--keep-failed"), std::string::npos) << r.err;
    // The same fault without the stage: exported, silently wrong — what the stage is for.
    r = run_cli_shell(env + q(binary()) + " export -q --no-verify " + q(model) + " " + q(dir / (fault + "_unverified")));
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
}

// Without the checkpoint: each graph against itself (two shapes, cached steps) and the INT8 twin against FP32.
TEST(Verify, AFolderAloneIsCheckedAgainstItself) {
  const fs::path dir = temp_dir("verify_folder");
  for (const std::string fixture : {"llama", "bart"}) {
    auto r = run_cli("export -q --quantize " + q(models_dir() / fixture) + " " + q(dir / fixture));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = run_cli("verify " + q(dir / fixture));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("and cached steps"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("_quantized.onnx vs "), std::string::npos) << r.err;
    r = run_cli("verify -q " + q(dir / fixture) + " " + q(models_dir() / fixture));
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  // A wrong lowering shows without the checkpoint too when it breaks the cache: not this one (positions from the
  // mask agree in both calls); an empty folder is an error naming it.
  auto r = run_cli("verify " + q(dir / "nothing"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("nothing"), std::string::npos) << r.err;
}

// The INT8 floor: an impossible --min-cosine fails the export naming the quantized file; with ONNX Runtime
// missing, the export succeeds with a warning that nothing was verified.
TEST(Verify, Int8FloorAndMissingRuntime) {
  const fs::path dir = temp_dir("verify_int8");
  auto r = run_cli("export -q --quantize --min-cosine 0.9999999 " + q(models_dir() / "bert-seqcls") + " " + q(dir / "strict"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("verification failed: onnx/model_quantized.onnx: output 'logits': cosine"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "strict"));

  r = run_cli_shell("HF2ONNX_ORT_RUNNER=/nonexistent/ort_run.mjs " + q(binary()) + " export " + q(models_dir() / "bert") + " " +
                    q(dir / "no_ort"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("[warning] not verified: "), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(dir / "no_ort" / "onnx" / "model.onnx"));
}

// The memory plan: a model whose float32 weights would not fit libtorch's and then ONNX Runtime's run in the
// available memory (a 7B on 24 GB) is exported and not verified, with a warning that says why.
TEST(Verify, AModelTooLargeToVerifyIsExportedWithAWarning) {
  const fs::path dir = temp_dir("verify_memory");
  auto r = run_cli_shell("HF2ONNX_TEST_MEM_AVAILABLE=1000000 " + q(binary()) + " export --report " + q(dir / "report.json") + " " +
                         q(models_dir() / "llama") + " " + q(dir / "out"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("[warning] not verified: the float32 model ("), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("976.6 KB available"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(dir / "out" / "onnx" / "model.onnx"));
  const auto report = nlohmann::json::parse(read_file(dir / "report.json"));
  EXPECT_FALSE(report["verification"]["ran"].get<bool>());
}

}  // namespace
}  // namespace hf2onnx::test
