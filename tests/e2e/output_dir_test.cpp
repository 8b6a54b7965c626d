// The output folder under failure: an earlier export is replaced as a whole (nothing stale survives, a
// user's own files do), a failure while writing or an interrupt leaves the old folder exactly as it was
// and nothing beside it, and staging folders of dead processes are swept.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_util.h"

namespace hf2onnx::test {
namespace {

// Name → content of every file below `dir` (relative paths).
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> m;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) m[fs::relative(e.path(), dir).string()] = read_file(e.path());
  return m;
}

std::set<std::string> names(const fs::path& dir) {
  std::set<std::string> s;
  for (const auto& e : fs::directory_iterator(dir)) s.insert(e.path().filename().string());
  return s;
}

bool has_staging(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find("hf2onnx-") != std::string::npos) return true;
  return false;
}

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

// A pid that belonged to a process that has exited.
pid_t dead_pid() {
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, nullptr, 0);
  return pid;
}

// Writes NaN into the first value of `tensor` in a safetensors file.
void poison(const fs::path& file, const std::string& tensor) {
  std::string bytes = read_file(file);
  uint64_t header_len;
  std::memcpy(&header_len, bytes.data(), 8);
  auto header = nlohmann::json::parse(bytes.substr(8, header_len));
  const uint64_t begin = header.at(tensor).at("data_offsets").at(0);
  const float nan = NAN;
  std::memcpy(&bytes[8 + header_len + begin], &nan, 4);
  write_file(file, bytes);
}

TEST(OutputDir, AnEarlierExportIsReplacedAsAWholeAndUserFilesStay) {
  const fs::path out = temp_dir("replace") / "out";
  auto r = run_cli("export -q " + q(models_dir() / "bert-seqcls") + " " + q(out) + " --quantize --external-data");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(fs::exists(out / "onnx" / "model.onnx_data"));
  ASSERT_TRUE(fs::exists(out / "onnx" / "model_quantized.onnx"));
  write_file(out / "README.md", "my notes");
  fs::create_directories(out / "notes");
  write_file(out / "notes" / "a.txt", "more notes");

  r = run_cli("export -q " + q(models_dir() / "bert") + " " + q(out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(names(out), (std::set<std::string>{"README.md", "config.json", "onnx", "notes"}));
  EXPECT_EQ(names(out / "onnx"), (std::set<std::string>{"model.onnx"}));  // the old INT8 twin and data file went
  EXPECT_EQ(read_file(out / "README.md"), "my notes");
  EXPECT_EQ(read_file(out / "notes" / "a.txt"), "more notes");
  EXPECT_FALSE(has_staging(out.parent_path()));
  // The new model is the bert one (inputs without a classifier output) and loads without the old data file.
  run_ort(out / "onnx" / "model.onnx", models_dir() / "bert" / "ref" / "a", out.parent_path() / "o");
  EXPECT_TRUE(fs::exists(out.parent_path() / "o" / "last_hidden_state.npy"));
}

// Optimum's layout keeps everything at the root; switching layouts leaves no stale set behind.
TEST(OutputDir, LayoutsHubAndOptimumReplaceEachOther) {
  const fs::path out = temp_dir("layouts") / "out";
  ASSERT_EQ(run_cli("export -q " + q(models_dir() / "bert") + " " + q(out) + " --quantize").exit_code, 0);
  EXPECT_EQ(names(out), (std::set<std::string>{"config.json", "onnx"}));
  EXPECT_EQ(names(out / "onnx"), (std::set<std::string>{"model.onnx", "model_quantized.onnx"}));
  auto r = run_cli("export -q " + q(models_dir() / "bert") + " " + q(out) + " --layout optimum");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(names(out), (std::set<std::string>{"config.json", "model.onnx"}));
  r = run_cli("export -q " + q(models_dir() / "bert") + " " + q(out) + " --layout hub --external-data");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(names(out), (std::set<std::string>{"config.json", "onnx"}));
  EXPECT_EQ(names(out / "onnx"), (std::set<std::string>{"model.onnx", "model.onnx_data"}));
  // transformers.js fetches external data only where config.json declares it; the rest of the config stays.
  const auto config = nlohmann::json::parse(read_file(out / "config.json"));
  EXPECT_EQ(config["transformers.js_config"]["use_external_data_format"], nlohmann::json({{"model.onnx", true}}));
  EXPECT_EQ(config["architectures"], nlohmann::json::parse(read_file(models_dir() / "bert" / "config.json"))["architectures"]);
  EXPECT_NE(run_cli("export -q " + q(models_dir() / "bert") + " " + q(out) + " --layout flat").exit_code, 0);
}

// `quantize EXPORT_DIR` writes, beside each FP32 model of either layout, the file `export --quantize` writes
// (the merged decoder rebuilt from the quantized decoders), byte for byte.
TEST(OutputDir, QuantizingAnExportFolderMatchesExportQuantize) {
  const fs::path dir = temp_dir("quantize_folder");
  for (const auto& [fixture, layout] : std::vector<std::pair<std::string, std::string>>{{"t5", "hub"}, {"bert", "optimum"}}) {
    const fs::path with = dir / (fixture + "_with"), without = dir / (fixture + "_without");
    const std::string src = q(models_dir() / fixture) + " --layout " + layout;
    ASSERT_EQ(run_cli("export -q " + src + " " + q(with) + " --quantize").exit_code, 0);
    ASSERT_EQ(run_cli("export -q " + src + " " + q(without)).exit_code, 0);
    auto r = run_cli("quantize -q " + q(without));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const fs::path files = layout == "hub" ? fs::path("onnx") : fs::path();
    EXPECT_EQ(names(with / files), names(without / files)) << fixture;
    for (const auto& name : names(with / files)) {
      if (name.find("_quantized.onnx") == std::string::npos) continue;
      EXPECT_EQ(read_file(with / files / name), read_file(without / files / name)) << fixture << " " << name;
    }
  }
  EXPECT_EQ(run_cli("quantize -q " + q(dir / "t5_without") + " " + q(dir / "x.onnx")).exit_code, 2);
  EXPECT_EQ(run_cli("quantize -q " + q(dir / "t5_without" / "onnx" / "encoder_model.onnx")).exit_code, 2);
  fs::create_directories(dir / "nothing");
  auto empty = run_cli("quantize -q " + q(dir / "nothing"));
  EXPECT_EQ(empty.exit_code, 1);
  EXPECT_NE(empty.err.find("no .onnx models in it or in its onnx/ folder"), std::string::npos) << empty.err;
}

// The same replacement where the file system cannot exchange two folders in one rename.
TEST(OutputDir, ReplacementWithoutRenameExchange) {
  const fs::path out = temp_dir("replace_two_renames") / "out";
  ASSERT_EQ(run_cli("export -q " + q(models_dir() / "bert-seqcls") + " " + q(out) + " --quantize").exit_code, 0);
  write_file(out / "README.md", "my notes");
  setenv("HF2ONNX_TEST_NO_RENAME_EXCHANGE", "1", 1);
  auto r = run_cli("export -q " + q(models_dir() / "bert") + " " + q(out));
  unsetenv("HF2ONNX_TEST_NO_RENAME_EXCHANGE");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(names(out), (std::set<std::string>{"README.md", "config.json", "onnx"}));
  EXPECT_EQ(names(out / "onnx"), (std::set<std::string>{"model.onnx"}));
  EXPECT_FALSE(has_staging(out.parent_path()));
}

TEST(OutputDir, AFailureWhileWritingLeavesTheOldExportUntouched) {
  const fs::path out = temp_dir("fail_write") / "out";
  ASSERT_EQ(run_cli("export -q " + q(models_dir() / "bert-seqcls") + " " + q(out) + " --quantize").exit_code, 0);
  write_file(out / "README.md", "my notes");
  const auto before = snapshot(out);

  // model.onnx is written and staged, then quantizing it fails on a NaN weight.
  fs::path src = copy_fixture("bert-seqcls", "fail_write_src");
  poison(src / "model.safetensors", "classifier.weight");
  auto r = run_cli("export -q " + q(src) + " " + q(out) + " --quantize");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("NaN"), std::string::npos) << r.err;
  EXPECT_EQ(snapshot(out), before);
  EXPECT_FALSE(has_staging(out.parent_path()));
  EXPECT_FALSE(has_staging(out));
}

TEST(OutputDir, AReportThatCannotBeWrittenLeavesNothing) {
  const fs::path base = temp_dir("fail_report");
  const fs::path out = base / "new" / "deeper" / "out";
  auto r = run_cli("export -q " + q(models_dir() / "bert") + " " + q(out) + " --report " +
                   q(base / "no-such-dir" / "r.json"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("r.json"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(base / "new")) << "parents created by the failed run were left";
  EXPECT_TRUE(fs::is_empty(base));

  // Into an existing export: it stays as it was.
  const fs::path kept = base / "kept";
  ASSERT_EQ(run_cli("export -q " + q(models_dir() / "bert") + " " + q(kept)).exit_code, 0);
  const auto before = snapshot(kept);
  r = run_cli("export -q " + q(models_dir() / "bert-seqcls") + " " + q(kept) + " --report " +
              q(base / "no-such-dir" / "r.json"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(snapshot(kept), before);
  EXPECT_FALSE(has_staging(base));
}

// SIGTERM / SIGINT while the staged files wait for the commit (held there by a test hook).
TEST(OutputDir, AnInterruptedExportLeavesNoStagingAndTheOldExport) {
  for (int sig : {SIGTERM, SIGINT}) {
    const fs::path base = temp_dir("signal_" + std::to_string(sig));
    const fs::path out = base / "out";
    ASSERT_EQ(run_cli("export -q " + q(models_dir() / "bert") + " " + q(out)).exit_code, 0);
    const auto before = snapshot(out);
    const fs::path report = base / "r.json";
    pid_t pid = fork();
    if (pid == 0) {
      setenv("HF2ONNX_TEST_PAUSE_BEFORE_COMMIT_MS", "20000", 1);
      const std::string model = (models_dir() / "bert-seqcls").string();
      execl(binary().c_str(), "hf2onnx", "export", "-q", model.c_str(), out.c_str(), "--quantize", "--report",
            report.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    // Wait until the run has staged its files (the staging folder and the report's temporary file exist).
    bool staged = false;
    for (int i = 0; i < 400 && !staged; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      int n = 0;
      for (const auto& e : fs::directory_iterator(base)) n += e.path().filename().string().find("hf2onnx-tmp") != std::string::npos;
      staged = n == 2;
    }
    ASSERT_TRUE(staged) << "the export did not reach its commit";
    kill(pid, sig);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == sig) << status;
    EXPECT_FALSE(has_staging(base)) << "signal " << sig;
    EXPECT_FALSE(fs::exists(report));
    EXPECT_EQ(snapshot(out), before);
  }
}

TEST(OutputDir, StagingOfDeadProcessesIsSweptAndLiveOnesKept) {
  const fs::path base = temp_dir("sweep");
  const fs::path out = base / "out";
  ASSERT_EQ(run_cli("export -q " + q(models_dir() / "bert") + " " + q(out)).exit_code, 0);
  const std::string dead = std::to_string(dead_pid()), live = std::to_string(getpid());
  for (const fs::path& p : {base / (".out.hf2onnx-tmp." + dead), base / (".out.hf2onnx-old." + dead),
                            out / (".hf2onnx-tmp." + dead), base / (".out.hf2onnx-tmp." + live)}) {
    fs::create_directories(p);
    write_file(p / "model.onnx", std::string(1000, 'x'));
  }
  ASSERT_EQ(run_cli("export -q " + q(models_dir() / "bert") + " " + q(out)).exit_code, 0);
  EXPECT_EQ(names(base), (std::set<std::string>{".out.hf2onnx-tmp." + live, "out"}));
  EXPECT_FALSE(has_staging(out));
}

TEST(OutputDir, QuantizeReplacesItsFilesAndDropsAStaleDataFile) {
  const fs::path base = temp_dir("quantize_files");
  ASSERT_EQ(run_cli("export -q " + q(models_dir() / "bert") + " " + q(base / "fp32")).exit_code, 0);
  write_file(base / "q.onnx_data", "stale external data of an earlier q.onnx");
  write_file(base / "other.txt", "unrelated");
  auto r = run_cli("quantize -q " + q(base / "fp32" / "onnx" / "model.onnx") + " " + q(base / "q.onnx") + " --report " +
                   q(base / "q.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(names(base), (std::set<std::string>{"fp32", "other.txt", "q.json", "q.onnx"}));
  EXPECT_EQ(nlohmann::json::parse(read_file(base / "q.json"))["output"], (base / "q.onnx").string());
  // A report that cannot be written: exit 1 and q2.onnx never appears.
  r = run_cli("quantize -q " + q(base / "fp32" / "onnx" / "model.onnx") + " " + q(base / "q2.onnx") + " --report " +
              q(base / "nowhere" / "q.json"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_FALSE(fs::exists(base / "q2.onnx"));
  EXPECT_FALSE(has_staging(base));
}

// A quantized model whose weights go to external data (any model over 2 GB; forced here): the data file
// this run wrote is moved into place and kept, and the model runs in ONNX Runtime. (It used to be deleted
// as "an old external data file", leaving a 7B model's INT8 file without weights.)
TEST(OutputDir, QuantizeWithExternalDataKeepsItsDataFile) {
  const fs::path base = temp_dir("quantize_external");
  ASSERT_EQ(run_cli("export -q --external-data " + q(models_dir() / "bert") + " " + q(base / "fp32")).exit_code, 0);
  auto r = run_cli("quantize -q --external-data " + q(base / "fp32" / "onnx" / "model.onnx") + " " + q(base / "q.onnx"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(names(base), (std::set<std::string>{"fp32", "q.onnx", "q.onnx_data"}));
  EXPECT_GT(fs::file_size(base / "q.onnx_data"), 10000u);
  const fs::path ort_out = temp_dir("quantize_external_ort");
  run_ort(base / "q.onnx", models_dir() / "bert" / "ref" / "a", ort_out);
  EXPECT_GE(cosine(read_npy(ort_out / "last_hidden_state.npy"),
                   read_npy(models_dir() / "bert" / "ref" / "a" / "last_hidden_state.npy")), 0.99);
  // Quantized again without external data: the data file of the earlier run is removed.
  r = run_cli("quantize -q " + q(base / "fp32" / "onnx" / "model.onnx") + " " + q(base / "q.onnx"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(names(base), (std::set<std::string>{"fp32", "q.onnx"}));
}

}  // namespace
}  // namespace hf2onnx::test

namespace hf2onnx::test {
namespace {

// Companion files that are links: followed into the model folder and into a Hugging Face cache's blobs/,
// otherwise skipped with a warning (a link to any file on the machine must not be published).
TEST(OutputDir, SymlinkedCompanionFilesAreCopiedOnlyFromTrustedPlaces) {
  const fs::path base = temp_dir("symlinks");
  write_file(base / "secret.txt", "password=hunter2");
  const fs::path src = copy_fixture("bert", "symlinks_src");
  fs::create_symlink(base / "secret.txt", src / "tokenizer.json");
  write_file(src / "real_vocab.txt", "[PAD]\n");
  fs::create_symlink("real_vocab.txt", src / "vocab.txt");

  auto r = run_cli("export " + q(src) + " " + q(base / "out"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("tokenizer.json: a symbolic link to a file outside the model folder; not copied"),
            std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("hunter2"), std::string::npos);
  EXPECT_FALSE(fs::exists(base / "out" / "tokenizer.json"));
  EXPECT_EQ(read_file(base / "out" / "vocab.txt"), "[PAD]\n");  // a link inside the folder is fine

  r = run_cli("export -q " + q(src) + " " + q(base / "out2") + " --follow-symlinks");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(base / "out2" / "tokenizer.json"), "password=hunter2");

  // A Hugging Face cache snapshot: every file is a link into blobs/.
  const fs::path repo = base / "hub" / "models--org--tiny-bert";
  fs::create_directories(repo / "blobs");
  fs::create_directories(repo / "snapshots" / "0123abc");
  for (const char* f : {"config.json", "model.safetensors"}) {
    fs::copy_file(models_dir() / "bert" / f, repo / "blobs" / (std::string("blob_") + f));
    fs::create_symlink(fs::path("../../blobs") / (std::string("blob_") + f), repo / "snapshots" / "0123abc" / f);
  }
  write_file(repo / "blobs" / "blob_tok", "{\"tokenizer\": 1}");
  fs::create_symlink("../../blobs/blob_tok", repo / "snapshots" / "0123abc" / "tokenizer.json");
  r = run_cli("export " + q(repo / "snapshots" / "0123abc") + " " + q(base / "out3"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("not copied"), std::string::npos) << r.err;
  EXPECT_EQ(read_file(base / "out3" / "tokenizer.json"), "{\"tokenizer\": 1}");
}

TEST(OutputDir, AnOutputFolderThatIsALinkStaysALink) {
  const fs::path base = temp_dir("link_out");
  fs::create_directories(base / "real");
  write_file(base / "real" / "model_quantized.onnx", "stale");
  fs::create_symlink("real", base / "out");
  ASSERT_EQ(run_cli("export -q " + q(models_dir() / "bert") + " " + q(base / "out")).exit_code, 0);
  EXPECT_TRUE(fs::is_symlink(base / "out"));
  EXPECT_EQ(names(base / "real"), (std::set<std::string>{"config.json", "onnx"}));  // the stale root file went
}

TEST(OutputDir, NonFiniteWeightsAreNamedInAWarning) {
  const fs::path src = copy_fixture("bert-seqcls", "nan_src");
  poison(src / "model.safetensors", "classifier.weight");
  auto r = run_cli("export " + q(src) + " " + q(temp_dir("nan") / "out"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find((src / "model.safetensors").string() + ": weight 'classifier.weight' has 1 NaN or infinite value"),
            std::string::npos) << r.err;
}

TEST(OutputDir, QuantizationOptionsWithoutQuantizeAreAUsageError) {
  const fs::path out = temp_dir("usage") / "out";
  for (const char* opt : {"--per-channel", "--reduce-range", "--target avx2", "--weight-type uint8"}) {
    auto r = run_cli("export " + q(models_dir() / "bert") + " " + q(out) + " " + opt);
    EXPECT_EQ(r.exit_code, 2) << opt;
    EXPECT_NE(r.err.find("applies to quantization: add --quantize"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(out));
  }
}

}  // namespace
}  // namespace hf2onnx::test
