// Test helpers: .npy I/O, temporary folders, running ONNX Runtime (node tools/ort_run.mjs) and the CLI.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "common/npy.h"
#include "hf2onnx/error.h"
#include "verify/compare.h"
#include "verify/ort_runner.h"

namespace hf2onnx::test {

namespace fs = std::filesystem;

using Array = NpyArray;  // read_npy, write_npy, make_f32, make_i64: common/npy.h

fs::path source_dir();                 // the project checkout
fs::path models_dir();                 // source_dir()/models
fs::path binary();                     // the hf2onnx executable
fs::path temp_dir(const std::string& name);  // fresh, empty folder under the build tree

// Runs MODEL in ONNX Runtime on IN_DIR/<input>.npy, writing OUT_DIR/<output>.npy. Throws on failure.
// With OrtCpu::EmulatedAvx2 the integer kernels are those of an AVX2 CPU without VNNI (qemu-user).
void run_ort(const fs::path& model, const fs::path& in_dir, const fs::path& out_dir, OrtCpu cpu = OrtCpu::Native);
void run_ort(const std::vector<OrtJob>& jobs, OrtCpu cpu = OrtCpu::Native);  // one ONNX Runtime process for all
// Both CPUs every INT8 test runs on, whatever machine the tests run on.
inline const std::vector<OrtCpu>& int8_test_cpus() {
  static const std::vector<OrtCpu> kCpus = {OrtCpu::Native, OrtCpu::EmulatedAvx2};
  return kCpus;
}
const char* cpu_name(OrtCpu cpu);

struct CliResult {
  int exit_code;
  std::string out, err;
};
CliResult run_cli(const std::string& args);
CliResult run_cli_shell(const std::string& command);  // a whole shell command line (pipes, env, script(1))


}  // namespace hf2onnx::test

namespace hf2onnx::test {
// Writes an uncompressed zip (the layout torch.save uses) with the given entries.
void write_zip(const fs::path& path, const std::vector<std::pair<std::string, std::string>>& entries);
std::string read_file(const fs::path& path);
void write_file(const fs::path& path, const std::string& bytes);
// Parses an .onnx file (weights inline); fails the test when it does not parse.
onnx::ModelProto load_onnx(const fs::path& path);

// Runs `node tools/<script> args...`; throws with its stderr when it fails. Returns stderr.
std::string run_tool(const std::string& script, const std::string& args, OrtCpu cpu = OrtCpu::Native);
std::string run_tool_stdout(const std::string& script, const std::string& args);  // the same; returns stdout
// A decoder's first-step inputs: the files of `ref_dir` plus empty past_key_values.{i}.key/value
// [batch, kv_heads, 0, head_dim] for `layers` layers, in `out_dir`.
void write_first_step_inputs(const fs::path& ref_dir, const fs::path& out_dir, int layers, int kv_heads, int head_dim);
// Runs fn and returns the hf2onnx::Error message ("" when nothing was thrown).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
// Copies a models/ fixture into a temporary folder for tests that alter it.
fs::path copy_fixture(const std::string& fixture, const std::string& tmp_name);
}  // namespace hf2onnx::test
