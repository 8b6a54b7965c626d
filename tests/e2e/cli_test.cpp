// The CLI contract: bad input gives one clear error line naming the problem, exit code 1, and
// leaves nothing in (or beside) the output folder. Usage errors exit with 2.
#include <fstream>
#include <regex>

#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "hf/safetensors.h"

namespace hf2onnx::test {
namespace {

size_t count_lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

// Exports `model_dir` expecting failure; checks the message, exit code and that nothing was written.
void expect_failure(const fs::path& model_dir, const std::string& expected, const std::string& extra = "") {
  fs::path out_parent = temp_dir("cli_out");
  fs::path out = out_parent / "onnx";
  auto r = run_cli("export -q '" + model_dir.string() + "' '" + out.string() + "' " + extra);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find(expected), std::string::npos) << "expected '" << expected << "' in: " << r.err;
  EXPECT_FALSE(fs::exists(out)) << "the output folder was created";
  EXPECT_TRUE(fs::is_empty(out_parent)) << "files were left beside the output folder";
}

void set_config(const fs::path& dir, const std::string& from, const std::string& to) {
  std::string c = read_file(dir / "config.json");
  auto pos = c.find(from);
  ASSERT_NE(pos, std::string::npos) << from;
  c.replace(pos, from.size(), to);
  write_file(dir / "config.json", c);
}

TEST(Cli, ExportWritesTheHubLayoutAndAReport) {
  fs::path out = temp_dir("cli_ok") / "bert";
  fs::path report = out.parent_path() / "report.json";
  auto r = run_cli("export -q '" + (models_dir() / "bert-seqcls").string() + "' '" + out.string() + "' --report '" +
                   report.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;  // -q
  EXPECT_TRUE(fs::exists(out / "onnx" / "model.onnx"));
  EXPECT_TRUE(fs::exists(out / "config.json"));
  std::string rep = read_file(report);
  for (const char* key : {"\"architecture\": \"BertForSequenceClassification\"", "\"task\": \"text-classification\"",
                          "\"opset\": 17", "\"node_count\"", "\"seconds\"", "\"logits\""})
    EXPECT_NE(rep.find(key), std::string::npos) << key << " in " << rep;
  auto inspect = run_cli("inspect '" + (out / "onnx" / "model.onnx").string() + "'");
  EXPECT_EQ(inspect.exit_code, 0);
  EXPECT_NE(inspect.out.find("input_ids"), std::string::npos) << inspect.out;
  EXPECT_NE(inspect.out.find("batch_size"), std::string::npos) << inspect.out;
  auto folder = run_cli("inspect '" + out.string() + "'");  // an export folder: each of its ONNX files
  EXPECT_EQ(folder.exit_code, 0) << folder.err;
  EXPECT_EQ(folder.out.rfind("== onnx/model.onnx\n", 0), 0u) << folder.out;
  EXPECT_NE(folder.out.find("input_ids"), std::string::npos) << folder.out;
}

// -v gives each stage's line with the process's peak RSS and minor page faults so far; tools/bench_llm.sh reads
// the write stage's faults from the lines' difference, so their form is pinned here: every stage in order, the
// counts positive and never decreasing.
TEST(Cli, VerboseStageLinesGivePeakMemoryAndPageFaults) {
  fs::path out = temp_dir("cli_verbose") / "llama";
  auto r = run_cli("export -v --no-verify --layout optimum '" + (models_dir() / "llama").string() + "' '" +
                   out.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::regex line(R"(\] (read|build|trace|lower|write): peak RSS so far [0-9.]+ [KMG]?B, ([0-9]+) minor page faults so far)");
  std::vector<std::string> stages;
  uint64_t last = 0;
  for (std::sregex_iterator it(r.err.begin(), r.err.end(), line), end; it != end; ++it) {
    stages.push_back((*it)[1]);
    const uint64_t faults = std::stoull((*it)[2]);
    EXPECT_GT(faults, 0u) << (*it)[0];
    EXPECT_GE(faults, last) << (*it)[0];
    last = faults;
  }
  EXPECT_EQ(stages, (std::vector<std::string>{"read", "build", "trace", "lower", "write"})) << r.err;
}

// The demo's last step (tools/demo.sh): both models' outputs side by side, with the labels they predict.
TEST(Cli, DemoPrintsFp32AndInt8OutputsSideBySide) {
  const fs::path out = temp_dir("cli_demo") / "bert-seqcls";
  auto r = run_cli("export -q '" + (models_dir() / "bert-seqcls").string() + "' '" + out.string() + "' --quantize");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string shown = run_tool_stdout("compare_outputs.mjs", "'" + (out / "onnx" / "model.onnx").string() + "' '" +
                                            (out / "onnx" / "model_quantized.onnx").string() + "' '" +
                                            (models_dir() / "bert-seqcls" / "ref" / "a").string() + "' '" +
                                            (out / "config.json").string() + "'");
  EXPECT_NE(shown.find("logits [2, 3]: cosine 0.99"), std::string::npos) << shown;
  const std::regex row("row 1  FP32 +-?[0-9.]+ +-?[0-9.]+ +-?[0-9.]+   INT8 +-?[0-9.]+ +-?[0-9.]+ +-?[0-9.]+   → LABEL_[0-2] / LABEL_[0-2]");
  EXPECT_TRUE(std::regex_search(shown, row)) << shown;
}

TEST(Cli, ListAndUsage) {
  auto r = run_cli("list");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* arch : {"BertForMaskedLM", "XLMRobertaModel", "DistilBertForQuestionAnswering", "UNet2DConditionModel"})
    EXPECT_NE(r.out.find(arch), std::string::npos) << arch;
  EXPECT_EQ(r.out.find("()"), std::string::npos) << r.out;  // a family with one task lists no others
  EXPECT_EQ(run_cli("").exit_code, 2);
  // For scripts: every architecture once, with its family and tasks.
  auto j = run_cli("list --json");
  ASSERT_EQ(j.exit_code, 0) << j.err;
  const auto table = nlohmann::json::parse(j.out);
  ASSERT_TRUE(table.is_array());
  std::set<std::string> archs;
  for (const auto& e : table) {
    archs.insert(e["architecture"].get<std::string>());
    EXPECT_FALSE(e["tasks"].empty());
    EXPECT_NE(std::find(e["tasks"].begin(), e["tasks"].end(), e["default_task"]), e["tasks"].end()) << e.dump();
  }
  EXPECT_EQ(archs.size(), table.size());
  for (const char* arch : {"BertForMaskedLM", "LlamaForCausalLM", "WhisperForConditionalGeneration"})
    EXPECT_TRUE(archs.count(arch)) << arch;
  auto v = run_cli("--version");
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.out, "hf2onnx " HF2ONNX_VERSION "\n");
  EXPECT_EQ(run_cli("export").exit_code, 2);
  EXPECT_EQ(run_cli("export a b --opset 9").exit_code, 2);
  EXPECT_EQ(run_cli("frobnicate").exit_code, 2);
}

// libtorch's OpenBLAS gets the kernels the CPU's instruction sets allow (OpenBLAS does not recognise some virtual
// CPUs and would take its generic ones), unless the user chose: OPENBLAS_VERBOSE=2 makes OpenBLAS print its choice.
TEST(Cli, BlasKernelsFollowTheCpuUnlessTheUserChose) {
  const std::string cpuinfo = read_file("/proc/cpuinfo");
  auto has = [&](const std::string& flag) { return cpuinfo.find(" " + flag + " ") != std::string::npos ||
                                                   cpuinfo.find(" " + flag + "\n") != std::string::npos; };
  const std::string expected = has("avx512f") && has("avx512bw") && has("avx512dq") && has("avx512vl") ? "SkylakeX"
                               : has("avx2") && has("fma")                                             ? "Haswell"
                                                                                                       : "";
  if (expected.empty()) GTEST_SKIP() << "a CPU without AVX2: OpenBLAS's own choice is kept";
  auto r = run_cli_shell("OPENBLAS_VERBOSE=2 '" + binary().string() + "' list");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE((r.out + r.err).find("Core: " + expected), std::string::npos) << r.err << r.out.substr(0, 200);
  r = run_cli_shell("OPENBLAS_VERBOSE=2 OPENBLAS_CORETYPE=Sandybridge '" + binary().string() + "' list");
  EXPECT_NE((r.out + r.err).find("Core: Sandybridge"), std::string::npos) << r.err << r.out.substr(0, 200);
}

TEST(Cli, UnknownArchitectureListsTheSupportedOnes) {
  fs::path dir = copy_fixture("bert", "cli_arch");
  set_config(dir, "\"BertModel\"", "\"FooBarModel\"");
  expect_failure(dir, "unsupported architecture 'FooBarModel' (supported: BertModel, BertForSequenceClassification");
}

TEST(Cli, UnsupportedOptionIsAClearError) {
  fs::path dir = copy_fixture("bert", "cli_relative");
  set_config(dir, "\"absolute\"", "\"relative_key\"");
  expect_failure(dir, "'position_embedding_type' = 'relative_key' is not supported");
  fs::path act = copy_fixture("bert", "cli_act");
  set_config(act, "\"hidden_act\": \"gelu\"", "\"hidden_act\": \"mish2\"");
  expect_failure(act, "'hidden_act' = 'mish2' is not a supported activation");
}

TEST(Cli, UnknownOrUnsupportedTask) {
  expect_failure(models_dir() / "bert", "unknown task 'summarize'", "--task summarize");
  expect_failure(models_dir() / "bert", "task 'text-generation' is not supported by bert models", "--task text-generation");
}

TEST(Cli, MissingWeights) {
  fs::path dir = temp_dir("cli_noweights") / "m";
  fs::create_directories(dir);
  fs::copy_file(models_dir() / "bert" / "config.json", dir / "config.json");
  expect_failure(dir, "no weights found");
}

TEST(Cli, MissingUnexpectedAndWrongShapeTensors) {
  auto rewrite = [](const fs::path& dir, const std::string& drop, bool add_extra) {
    auto tensors = hf::read_safetensors(dir / "model.safetensors");
    std::vector<hf::TensorToWrite> out;
    for (const auto& [name, t] : tensors)
      if (name != drop) out.push_back({name, t.dtype, t.shape, t.data});
    static const float extra[2] = {1, 2};
    if (add_extra) out.push_back({"encoder.layer.0.extra.weight", hf::DType::F32, {2}, extra});
    hf::write_safetensors(dir / "model.safetensors.new", out);
    tensors.clear();
    fs::rename(dir / "model.safetensors.new", dir / "model.safetensors");
  };
  fs::path missing = copy_fixture("bert", "cli_missing");
  fs::remove(missing / "pytorch_model.bin");
  rewrite(missing, "encoder.layer.1.output.dense.weight", false);
  expect_failure(missing, "missing tensor 'encoder.layer.1.output.dense.weight'");

  fs::path extra = copy_fixture("bert", "cli_extra");
  fs::remove(extra / "pytorch_model.bin");
  rewrite(extra, "", true);
  expect_failure(extra, "unused tensor 'encoder.layer.0.extra.weight'");

  fs::path shape = copy_fixture("bert", "cli_shape");
  set_config(shape, "\"intermediate_size\": 64", "\"intermediate_size\": 48");
  expect_failure(shape, "has wrong shape: the model expects [48, 32], the checkpoint has [64, 32]");
}

TEST(Cli, CorruptWeightFiles) {
  fs::path st = copy_fixture("bert", "cli_corrupt_st");
  std::string bytes = read_file(st / "model.safetensors");
  write_file(st / "model.safetensors", bytes.substr(0, bytes.size() - 1000));
  expect_failure(st, "model.safetensors: corrupt safetensors");

  fs::path zip = copy_fixture("bert", "cli_corrupt_zip");
  fs::remove(zip / "model.safetensors");
  bytes = read_file(zip / "pytorch_model.bin");
  write_file(zip / "pytorch_model.bin", bytes.substr(0, bytes.size() / 2));
  expect_failure(zip, "pytorch_model.bin: corrupt zip archive");

  fs::path legacy = copy_fixture("bert-legacy", "cli_corrupt_legacy");
  bytes = read_file(legacy / "pytorch_model.bin");
  write_file(legacy / "pytorch_model.bin", bytes.substr(0, 3000));
  expect_failure(legacy, "pytorch_model.bin: corrupt or unsupported pickle");
}

TEST(Cli, PicklesReferencingCodeAreRefused) {
  fs::path dir = copy_fixture("bert", "cli_evil");
  fs::remove(dir / "model.safetensors");
  write_zip(dir / "pytorch_model.bin", {{"archive/data.pkl", "cos\nsystem\n(S'touch /tmp/hf2onnx_pwned'\ntR."}});
  expect_failure(dir, "refusing to load: the pickle references the global 'os.system'");
  write_zip(dir / "pytorch_model.bin",
            {{"archive/data.pkl", std::string("\x80\x04\x8c\x08" "builtins\x8c\x04" "eval\x93\x8c\x03" "1+1\x85R.")}});
  expect_failure(dir, "the global 'builtins.eval'");
  EXPECT_FALSE(fs::exists("/tmp/hf2onnx_pwned"));
}

TEST(Cli, AFailedExportLeavesAnExistingOutputFolderAsItWas) {
  fs::path dir = copy_fixture("bert", "cli_existing_src");
  set_config(dir, "\"BertModel\"", "\"FooBarModel\"");
  fs::path out = temp_dir("cli_existing") / "onnx";
  fs::create_directories(out);
  write_file(out / "keep.txt", "user file");
  auto r = run_cli("export -q '" + dir.string() + "' '" + out.string() + "'");
  EXPECT_EQ(r.exit_code, 1);
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(out)) left.push_back(e.path().filename().string());
  EXPECT_EQ(left, std::vector<std::string>{"keep.txt"});
  // And a successful export into it adds the model beside the user's file.
  r = run_cli("export -q '" + (models_dir() / "bert").string() + "' '" + out.string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(out / "onnx" / "model.onnx"));
  EXPECT_TRUE(fs::exists(out / "keep.txt"));
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(out)) n += e.path().filename().string().rfind(".hf2onnx-tmp", 0) == 0;
  EXPECT_EQ(n, 0u);
}

// A fake Hugging Face cache laid out as huggingface_hub writes it: files in blobs/, snapshots/<commit>/
// linking to them, refs/<branch or tag> naming a commit.
void add_snapshot(const fs::path& repo, const std::string& commit, const fs::path& model, const std::vector<std::string>& refs) {
  fs::create_directories(repo / "blobs");
  fs::create_directories(repo / "snapshots" / commit);
  for (const auto& e : fs::directory_iterator(model)) {
    if (!e.is_regular_file()) continue;
    const std::string blob = commit.substr(0, 8) + "-" + e.path().filename().string();  // stands for the content hash
    fs::copy_file(e.path(), repo / "blobs" / blob, fs::copy_options::overwrite_existing);
    fs::create_symlink(fs::path("../../blobs") / blob, repo / "snapshots" / commit / e.path().filename());
  }
  fs::create_directories(repo / "refs");
  for (const auto& r : refs) write_file(repo / "refs" / r, commit);
}

TEST(Cli, ModelIdsResolveInTheHuggingFaceCache) {
  const fs::path dir = temp_dir("hf_cache");
  const fs::path repo = dir / "hub" / "models--acme--tiny-bert";
  const std::string main_commit(40, 'a'), v1_commit = "b1" + std::string(38, 'c');
  add_snapshot(repo, main_commit, models_dir() / "bert", {"main"});
  add_snapshot(repo, v1_commit, models_dir() / "bert-seqcls", {"v1"});
  auto outputs = [](const fs::path& out) {
    std::vector<std::string> names;
    const onnx::ModelProto m = load_onnx(out / "onnx" / "model.onnx");
    for (const auto& vi : m.graph().output()) names.push_back(vi.name());
    return names;
  };
  const std::vector<std::string> base = {"last_hidden_state", "pooler_output"}, head = {"logits"};

  setenv("HF_HUB_CACHE", (dir / "hub").c_str(), 1);
  auto r = run_cli("export acme/tiny-bert " + (dir / "main").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find((repo / "snapshots" / main_commit).string()), std::string::npos) << r.err;
  EXPECT_EQ(outputs(dir / "main"), base);
  for (const std::string& rev : std::vector<std::string>{"v1", v1_commit, v1_commit.substr(0, 7)}) {  // a tag, a commit, a short commit
    r = run_cli("export -q acme/tiny-bert " + (dir / "v1").string() + " --revision " + rev);
    ASSERT_EQ(r.exit_code, 0) << rev << ": " << r.err;
    EXPECT_EQ(outputs(dir / "v1"), head) << rev;
  }
  r = run_cli("export -q acme/tiny-bert " + (dir / "x").string() + " --revision v2");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("revision 'v2' is not in the cache"), std::string::npos) << r.err;
  r = run_cli("export -q acme/missing " + (dir / "x").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find((dir / "hub" / "models--acme--missing").string()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("huggingface-cli download acme/missing"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "x"));
  unsetenv("HF_HUB_CACHE");

  // $HF_HOME/hub when HF_HUB_CACHE is unset.
  setenv("HF_HOME", dir.c_str(), 1);
  r = run_cli("export -q acme/tiny-bert " + (dir / "home").string());
  unsetenv("HF_HOME");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(outputs(dir / "home"), base);

  // A folder that exists wins over an id of the same spelling; --revision does not apply to it.
  const fs::path local = fs::current_path() / "acme-test-local" / "tiny-bert";
  fs::remove_all(local.parent_path());
  fs::create_directories(local.parent_path());
  fs::copy(models_dir() / "bert-seqcls", local, fs::copy_options::recursive);
  setenv("HF_HUB_CACHE", (dir / "hub").c_str(), 1);
  fs::create_directories(dir / "hub" / "models--acme-test-local--tiny-bert");
  r = run_cli("export -q acme-test-local/tiny-bert " + (dir / "local").string());
  const auto with_revision = run_cli("export -q acme-test-local/tiny-bert " + (dir / "local2").string() + " --revision main");
  unsetenv("HF_HUB_CACHE");
  fs::remove_all(local.parent_path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(outputs(dir / "local"), head);
  EXPECT_EQ(with_revision.exit_code, 1);
  EXPECT_NE(with_revision.err.find("--revision applies to model ids"), std::string::npos) << with_revision.err;
}

// `hf2onnx batch`: good and bad entries, two at once, a report per model, summary.json and JUnit XML;
// shards that together cover the manifest once; a stop after the first failure without --keep-going.
TEST(Batch, ManifestWithGoodAndBadModels) {
  const fs::path dir = temp_dir("batch");
  const std::string bert = (models_dir() / "bert").string(), gpt2 = (models_dir() / "gpt2").string();
  const nlohmann::json manifest = {{"models", {
      {{"model", bert}, {"out", "out/bert"}},
      {{"model", gpt2}, {"out", "out/gpt2"}, {"quantize", {{"target", "avx2"}, {"per_channel", true}}}},
      {{"model", "acme/not-cached"}, {"out", "out/missing"}},
      {{"model", (models_dir() / "bert-seqcls").string()}, {"out", "out/seqcls"}, {"task", "feature-extraction"},
       {"layout", "optimum"}}}}};
  write_file(dir / "m.json", manifest.dump(2));
  setenv("HF_HUB_CACHE", (dir / "empty-cache").c_str(), 1);
  auto r = run_cli("batch '" + (dir / "m.json").string() + "' --jobs 2 --keep-going");
  ASSERT_EQ(r.exit_code, 1) << r.err;
  const auto summary = nlohmann::json::parse(read_file(dir / "m.results" / "summary.json"));
  EXPECT_EQ(summary["passed"], 3);
  EXPECT_EQ(summary["failed"], 1);
  const auto& m = summary["models"];
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[2]["status"], "failed");
  EXPECT_NE(m[2]["error"].get<std::string>().find("not in the Hugging Face cache"), std::string::npos) << m[2].dump();
  for (int i : {0, 1, 3}) {
    EXPECT_EQ(m[i]["status"], "passed") << m[i].dump();
    EXPECT_TRUE(nlohmann::json::parse(read_file(m[i]["report"].get<std::string>())).contains("architecture"));
  }
  EXPECT_TRUE(fs::exists(dir / "out" / "bert" / "onnx" / "model.onnx"));  // outs relative to the manifest
  EXPECT_TRUE(fs::exists(dir / "out" / "gpt2" / "onnx" / "model_quantized.onnx"));
  EXPECT_TRUE(fs::exists(dir / "out" / "seqcls" / "model.onnx"));
  EXPECT_EQ(nlohmann::json::parse(read_file(m[1]["report"].get<std::string>()))["quantized"]["target"], "avx2");
  // Two at once: the first two exports overlap in time.
  const double a0 = m[0]["started"], a1 = a0 + m[0]["seconds"].get<double>(), b0 = m[1]["started"];
  EXPECT_LT(b0, a1) << summary.dump();
  const std::string junit = read_file(dir / "m.junit.xml");
  EXPECT_NE(junit.find("tests=\"4\" failures=\"1\""), std::string::npos) << junit;
  EXPECT_NE(junit.find("<failure message=\"acme/not-cached: not a folder here"), std::string::npos) << junit;

  // Shards 1/2 and 2/2 take each model exactly once.
  std::multiset<int> seen;
  for (const std::string shard : {"1/2", "2/2"}) {
    const fs::path results = dir / ("shard" + shard.substr(0, 1));
    run_cli("batch '" + (dir / "m.json").string() + "' --keep-going --shard " + shard + " --results '" + results.string() +
            "' --junit '" + (results / "j.xml").string() + "'");
    const auto part = nlohmann::json::parse(read_file(results / "summary.json"));
    for (const auto& e : part["models"]) seen.insert(e["index"].get<int>());
    EXPECT_TRUE(fs::exists(results / "j.xml"));
  }
  EXPECT_EQ(seen, (std::multiset<int>{0, 1, 2, 3}));

  // Without --keep-going nothing starts after a failure: the rest are reported as skipped.
  const nlohmann::json bad_first = {{"models", {{{"model", "acme/not-cached"}, {"out", "x"}}, {{"model", bert}, {"out", "y"}}}}};
  write_file(dir / "stop.json", bad_first.dump());
  r = run_cli("batch '" + (dir / "stop.json").string() + "'");
  EXPECT_EQ(r.exit_code, 1);
  const auto stop = nlohmann::json::parse(read_file(dir / "stop.results" / "summary.json"));
  EXPECT_EQ(stop["models"][1]["status"], "skipped");
  EXPECT_FALSE(fs::exists(dir / "y"));
  EXPECT_NE(read_file(dir / "stop.junit.xml").find("<skipped"), std::string::npos);
  unsetenv("HF_HUB_CACHE");

  // A misspelt option is an error naming it, before anything runs.
  write_file(dir / "typo.json", R"({"models": [{"model": "m", "out": "o", "quantise": true}]})");
  r = run_cli("batch '" + (dir / "typo.json").string() + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("models[0]: unknown key \"quantise\""), std::string::npos) << r.err;
  EXPECT_NE(run_cli("batch '" + (dir / "m.json").string() + "' --shard 3/2").exit_code, 0);
}

// A progress bar on a terminal (script(1) gives the export one), plain log lines otherwise.
TEST(Cli, ProgressBarOnlyOnATerminal) {
  const fs::path dir = temp_dir("progress");
  const std::string export_cmd = binary().string() + " export " + (models_dir() / "bert").string() + " ";
  auto tty = run_cli_shell("HF2ONNX_PROGRESS_AFTER_MS=0 script -qec '" + export_cmd + (dir / "a").string() + "' /dev/null");
  ASSERT_EQ(tty.exit_code, 0) << tty.err;
  EXPECT_NE(tty.out.find("writing model.onnx [####"), std::string::npos) << tty.out;
  EXPECT_NE(tty.out.find("] 100%  204.5 KB / 204.5 KB"), std::string::npos) << tty.out;
  setenv("HF2ONNX_PROGRESS_AFTER_MS", "0", 1);
  auto plain = run_cli("export " + (models_dir() / "bert").string() + " " + (dir / "b").string());
  unsetenv("HF2ONNX_PROGRESS_AFTER_MS");
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.err.find('\r'), std::string::npos) << plain.err;
  EXPECT_EQ(plain.err.find("[####"), std::string::npos) << plain.err;
  EXPECT_NE(plain.err.find("[info] wrote "), std::string::npos) << plain.err;
}

TEST(Cli, InspectACheckpointFolder) {
  auto r = run_cli("inspect '" + (models_dir() / "bert-legacy").string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("BertModel"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pytorch legacy"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tensors: 39"), std::string::npos) << r.out;
  auto bad = run_cli("inspect /nonexistent/x.onnx");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_EQ(count_lines(bad.err), 1u) << bad.err;
}

}  // namespace
}  // namespace hf2onnx::test

namespace hf2onnx::test {
namespace {

// A config that asks for a billion layers is refused by name before any module is built (it would otherwise
// build modules until memory ran out, long before the checkpoint showed the keys missing).
TEST(Cli, HugeLayerCountsAreRefusedBeforeBuilding) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"bert", "num_hidden_layers"}, {"distilbert", "n_layers"}, {"gpt2", "n_layer"}, {"llama", "num_hidden_layers"},
      {"t5", "num_decoder_layers"},   {"whisper", "decoder_layers"}, {"vit", "num_hidden_layers"}};
  for (const auto& [fixture, key] : cases) {
    const fs::path dir = copy_fixture(fixture, "huge_" + fixture);
    nlohmann::json cfg = nlohmann::json::parse(read_file(dir / "config.json"));
    cfg[key] = 1000000000;
    write_file(dir / "config.json", cfg.dump(2));
    const fs::path out = dir.parent_path() / "out";
    const CliResult r = run_cli("export " + dir.string() + " " + out.string());
    EXPECT_EQ(r.exit_code, 1) << fixture;
    EXPECT_NE(r.err.find("config.json: '" + key + "' must be between 0 and 4096"), std::string::npos) << fixture << ": " << r.err;
    EXPECT_FALSE(fs::exists(out)) << fixture;
  }
  // A layer per list entry (wav2vec2's conv feature encoder).
  const fs::path dir = copy_fixture("wav2vec2", "huge_wav2vec2_convs");
  nlohmann::json cfg = nlohmann::json::parse(read_file(dir / "config.json"));
  for (const char* key : {"conv_dim", "conv_kernel", "conv_stride"}) cfg[key] = std::vector<int>(5000, 2);
  cfg.erase("num_feat_extract_layers");
  write_file(dir / "config.json", cfg.dump());
  const CliResult r = run_cli("export " + dir.string() + " " + (dir.parent_path() / "out").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("config.json: 'conv_dim' has more than 4096 entries"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace hf2onnx::test
