#include "verify/ort_runner.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "hf2onnx/error.h"

#ifndef HF2ONNX_TOOLS_DIR
#define HF2ONNX_TOOLS_DIR ""
#endif

namespace hf2onnx {
namespace fs = std::filesystem;

namespace {

std::optional<fs::path> in_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string d; std::getline(dirs, d, ':');) {
    if (d.empty()) continue;
    fs::path p = fs::path(d) / program;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return std::nullopt;
}

bool has_ort(const fs::path& script) {
  std::error_code ec;
  return fs::is_regular_file(script, ec) &&
         fs::is_regular_file(script.parent_path() / "node_modules" / "onnxruntime-node" / "package.json", ec);
}

// Runs argv with stdout discarded and stderr captured; returns the exit status (-1 for a signal).
int spawn(const std::vector<std::string>& argv, std::string& err) {
  char tmpl[] = "/tmp/hf2onnx-ort-XXXXXX";
  const int err_fd = mkstemp(tmpl);
  if (err_fd < 0) throw Error("cannot create a temporary file for ONNX Runtime's messages");
  unlink(tmpl);
  const pid_t pid = fork();
  if (pid < 0) {
    close(err_fd);
    throw Error("cannot start " + argv[0]);
  }
  if (pid == 0) {
    const int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(err_fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  lseek(err_fd, 0, SEEK_SET);
  char buf[4096];
  for (ssize_t n; (n = read(err_fd, buf, sizeof buf)) > 0;) err.append(buf, static_cast<size_t>(n));
  close(err_fd);
  err = without_emulator_warnings(err);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_text(const fs::path& p) {
  std::ifstream f(p);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

std::optional<OrtRunner> OrtRunner::find(std::string* why) {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("HF2ONNX_ORT_RUNNER")) {
    candidates.push_back(env);
  } else {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
      candidates.push_back(exe.parent_path().parent_path() / "tools" / "ort_run.mjs");
      candidates.push_back(exe.parent_path().parent_path() / "share" / "hf2onnx" / "ort_run.mjs");
    }
    if (*HF2ONNX_TOOLS_DIR) candidates.push_back(fs::path(HF2ONNX_TOOLS_DIR) / "ort_run.mjs");
  }
  auto node = in_path("node");
  if (!node) node = in_path("nodejs");
  if (!node) {
    if (why) *why = "node is not installed";
    return std::nullopt;
  }
  for (const auto& c : candidates)
    if (has_ort(c)) {
      OrtRunner r;
      r.node_ = *node;
      r.script_ = c;
      return r;
    }
  if (why) {
    *why = "onnxruntime-node was not found beside ort_run.mjs (looked in";
    for (const auto& c : candidates) *why += " " + c.parent_path().string();
    *why += ")";
  }
  return std::nullopt;
}

std::string without_emulator_warnings(const std::string& err) {
  // qemu-user warns about every CPU feature its TCG does not model; those lines are noise here.
  return std::regex_replace(err, std::regex("qemu-x86_64: warning:[^\n]*\n?"), "");
}

std::vector<std::string> OrtRunner::node_command(OrtCpu cpu) const {
  std::vector<std::string> argv;
  if (cpu == OrtCpu::EmulatedAvx2) {
    auto qemu = in_path("qemu-x86_64");
    if (!qemu) throw Error("qemu-x86_64 is not installed (Debian package qemu-user): cannot emulate an AVX2 CPU");
    argv = {qemu->string(), "-cpu", "Haswell"};
  }
  argv.push_back(node_.string());
  return argv;
}

void OrtRunner::run(const std::vector<OrtJob>& jobs, OrtCpu cpu, int threads) const {
  std::vector<std::string> args = {"--threads", std::to_string(threads)};
  for (const auto& j : jobs) {
    args.push_back(j.model.string());
    args.push_back(j.in_dir.string());
    args.push_back(j.out_dir.string());
  }
  run_tool(script_.filename().string(), args, cpu);
}

void OrtRunner::run_tool(const std::string& script, const std::vector<std::string>& args, OrtCpu cpu) const {
  std::vector<std::string> argv = node_command(cpu);
  argv.push_back((script_.parent_path() / script).string());
  argv.insert(argv.end(), args.begin(), args.end());
  std::string err;
  const int status = spawn(argv, err);
  while (!err.empty() && err.back() == '\n') err.pop_back();
  if (status != 0) throw Error("ONNX Runtime failed (exit " + std::to_string(status) + "): " + err);
}

std::string OrtRunner::version() const {
  try {
    auto j = nlohmann::json::parse(read_text(script_.parent_path() / "node_modules" / "onnxruntime-node" / "package.json"));
    return j.value("version", "?");
  } catch (const std::exception&) {
    return "?";
  }
}

namespace {
bool has_vnni(const std::string& cpuinfo) {
  return std::regex_search(cpuinfo, std::regex("\\b(avx512_vnni|avx_vnni|amx_int8)\\b"));
}
}  // namespace

std::string cpu_summary() {
  const std::string info = read_text("/proc/cpuinfo");
  std::smatch m;
  std::string model = std::regex_search(info, m, std::regex("model name\\s*:\\s*([^\n]*)")) ? m[1].str() : "unknown CPU";
  return model + (has_vnni(info) ? " (VNNI)" : " (no VNNI)");
}

bool cpu_has_vnni() { return has_vnni(read_text("/proc/cpuinfo")); }

}  // namespace hf2onnx
