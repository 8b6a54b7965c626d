// ONNX Runtime, as the set-up installs it: onnxruntime-node (npm) driven by tools/ort_run.mjs in a
// node process. hf2onnx does not link ORT; it finds the runner without the user setting paths and
// works on without it (callers warn that nothing was measured).
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace hf2onnx {

struct OrtJob {
  std::filesystem::path model, in_dir, out_dir;  // reads IN_DIR/<input>.npy, writes OUT_DIR/<output>.npy
};

// Where ONNX Runtime's integer kernels run. EmulatedAvx2 runs the same process under
// `qemu-x86_64 -cpu Haswell` (Debian's qemu-user): an x86 CPU with AVX2 and neither AVX-512 nor VNNI,
// whose kernels are what an AMD Zen 1-3 or a pre-Ice-Lake Intel machine runs. Slow; for small models.
enum class OrtCpu { Native, EmulatedAvx2 };

class OrtRunner {
 public:
  // Looks for node and ort_run.mjs with node_modules/onnxruntime-node beside it: $HF2ONNX_ORT_RUNNER
  // (a path to ort_run.mjs; when set, the only candidate), then <executable dir>/../tools,
  // <executable dir>/../share/hf2onnx and the source checkout's tools/. Sets `why` when not found.
  static std::optional<OrtRunner> find(std::string* why = nullptr);
  // Runs every job in one ONNX Runtime process (`threads` intra-op threads); throws an Error with its stderr.
  void run(const std::vector<OrtJob>& jobs, OrtCpu cpu = OrtCpu::Native, int threads = 1) const;
  // Runs another script of the runner's folder (tools/ort_steps.mjs, ...) with `args`; throws like run().
  void run_tool(const std::string& script, const std::vector<std::string>& args, OrtCpu cpu = OrtCpu::Native) const;
  // The command that runs a node script (ort_run.mjs or another tool beside it) on `cpu`:
  // [qemu-x86_64 -cpu Haswell] node.
  std::vector<std::string> node_command(OrtCpu cpu) const;
  const std::filesystem::path& script() const { return script_; }
  std::string version() const;  // of onnxruntime-node

 private:
  std::filesystem::path node_, script_;
};

// `err` without qemu-user's warnings about CPU features its emulator does not model.
std::string without_emulator_warnings(const std::string& err);

// One line about this machine's CPU for logs and reports: model name and whether it has VNNI.
std::string cpu_summary();
bool cpu_has_vnni();  // avx512_vnni, avx_vnni or amx_int8 in /proc/cpuinfo

}  // namespace hf2onnx
