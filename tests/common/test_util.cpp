#include "test_util.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace hf2onnx::test {

fs::path source_dir() { return HF2ONNX_SOURCE_DIR; }
fs::path models_dir() { return source_dir() / "models"; }
fs::path binary() { return HF2ONNX_BINARY; }

// Under a folder named after the running test, so that tests running in parallel never share paths.
fs::path temp_dir(const std::string& name) {
  std::string test = "no_test";
  if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info())
    test = std::string(info->test_suite_name()) + "." + info->name();
  for (auto& c : test)
    if (!isalnum(static_cast<unsigned char>(c)) && c != '.') c = '_';
  fs::path p = fs::path(HF2ONNX_TEST_TMP) / test / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

namespace {
std::string quote(const std::string& s) { return "'" + std::regex_replace(s, std::regex("'"), "'\\''") + "'"; }

fs::path stderr_file() {
  fs::create_directories(HF2ONNX_TEST_TMP);
  return fs::path(HF2ONNX_TEST_TMP) / ("stderr." + std::to_string(getpid()) + ".txt");
}

CliResult run_shell(const std::string& cmd, const fs::path& err_file) {
  CliResult r;
  FILE* p = popen((cmd + " 2>" + quote(err_file.string())).c_str(), "r");
  if (!p) throw std::runtime_error("popen failed");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream e(err_file);
  r.err.assign(std::istreambuf_iterator<char>(e), std::istreambuf_iterator<char>());
  return r;
}
}  // namespace

void run_ort(const fs::path& model, const fs::path& in_dir, const fs::path& out_dir, OrtCpu cpu) {
  run_ort(std::vector<OrtJob>{{model, in_dir, out_dir}}, cpu);
}

namespace {
const OrtRunner& ort_runner() {
  static std::string why;
  static const auto runner = OrtRunner::find(&why);
  if (!runner) throw std::runtime_error("ONNX Runtime not found: " + why);
  return *runner;
}
}  // namespace

void run_ort(const std::vector<OrtJob>& jobs, OrtCpu cpu) { ort_runner().run(jobs, cpu); }

const char* cpu_name(OrtCpu cpu) { return cpu == OrtCpu::Native ? "native CPU" : "emulated AVX2 CPU"; }

CliResult run_cli(const std::string& args) {
  return run_shell(quote(binary().string()) + " " + args, stderr_file());
}

CliResult run_cli_shell(const std::string& command) { return run_shell(command, stderr_file()); }

onnx::ModelProto load_onnx(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromIstream(&in)) << path;
  return m;
}

namespace {
CliResult run_tool_result(const std::string& script, const std::string& args, OrtCpu cpu) {
  std::string cmd;
  for (const auto& word : ort_runner().node_command(cpu)) cmd += quote(word) + " ";
  auto r = run_shell(cmd + quote((source_dir() / "tools" / script).string()) + " " + args, stderr_file());
  r.err = without_emulator_warnings(r.err);
  if (r.exit_code != 0) throw std::runtime_error(script + " failed: " + r.err);
  return r;
}
}  // namespace

std::string run_tool(const std::string& script, const std::string& args, OrtCpu cpu) {
  return run_tool_result(script, args, cpu).err;
}

std::string run_tool_stdout(const std::string& script, const std::string& args) {
  return run_tool_result(script, args, OrtCpu::Native).out;
}

void write_first_step_inputs(const fs::path& ref_dir, const fs::path& out_dir, int layers, int kv_heads, int head_dim) {
  fs::create_directories(out_dir);
  for (const auto& e : fs::directory_iterator(ref_dir)) fs::copy_file(e.path(), out_dir / e.path().filename(),
                                                                      fs::copy_options::overwrite_existing);
  const int64_t batch = read_npy(ref_dir / "input_ids.npy").shape.at(0);
  for (int i = 0; i < layers; ++i)
    for (const char* kv : {"key", "value"}) {
      Array empty{"<f4", {batch, kv_heads, 0, head_dim}, {}};
      write_npy(out_dir / ("past_key_values." + std::to_string(i) + "." + kv + ".npy"), empty);
    }
}

}  // namespace hf2onnx::test

namespace hf2onnx::test {
namespace {
void le(std::string& s, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
}  // namespace

void write_zip(const fs::path& path, const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string out, central;
  for (const auto& [name, data] : entries) {
    uint64_t offset = out.size();
    le(out, 0x04034b50, 4); le(out, 20, 2); le(out, 0, 2); le(out, 0, 2); le(out, 0, 4);
    le(out, 0, 4); le(out, data.size(), 4); le(out, data.size(), 4); le(out, name.size(), 2); le(out, 0, 2);
    out += name;
    out += data;
    le(central, 0x02014b50, 4); le(central, 20, 2); le(central, 20, 2); le(central, 0, 2); le(central, 0, 2);
    le(central, 0, 4); le(central, 0, 4); le(central, data.size(), 4); le(central, data.size(), 4);
    le(central, name.size(), 2); le(central, 0, 2); le(central, 0, 2); le(central, 0, 2); le(central, 0, 2);
    le(central, 0, 4); le(central, offset, 4);
    central += name;
  }
  uint64_t cd_offset = out.size();
  out += central;
  le(out, 0x06054b50, 4); le(out, 0, 2); le(out, 0, 2); le(out, entries.size(), 2); le(out, entries.size(), 2);
  le(out, central.size(), 4); le(out, cd_offset, 4); le(out, 0, 2);
  write_file(path, out);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

fs::path copy_fixture(const std::string& fixture, const std::string& tmp_name) {
  fs::path dst = temp_dir(tmp_name) / fixture;
  fs::copy(models_dir() / fixture, dst, fs::copy_options::recursive);
  for (auto& e : fs::recursive_directory_iterator(dst))
    fs::permissions(e.path(), fs::perms::owner_write, fs::perm_options::add);
  return dst;
}

}  // namespace hf2onnx::test
