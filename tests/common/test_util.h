// Test helpers: .npy I/O, temporary folders, running ONNX Runtime (node tools/ort_run.mjs) and the CLI.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

namespace hf2onnx::test {

namespace fs = std::filesystem;

struct Array {
  std::string dtype;  // "<f4", "<i8", "|b1"
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
  const float* f32() const { return reinterpret_cast<const float*>(bytes.data()); }
  const int64_t* i64() const { return reinterpret_cast<const int64_t*>(bytes.data()); }
  int64_t numel() const;
};

Array read_npy(const fs::path& path);
void write_npy(const fs::path& path, const Array& a);
Array make_f32(std::vector<int64_t> shape, const float* data);
Array make_i64(std::vector<int64_t> shape, const int64_t* data);

fs::path source_dir();                 // the project checkout
fs::path models_dir();                 // source_dir()/models
fs::path binary();                     // the hf2onnx executable
fs::path temp_dir(const std::string& name);  // fresh, empty folder under the build tree

// Runs MODEL in ONNX Runtime on IN_DIR/<input>.npy, writing OUT_DIR/<output>.npy. Throws on failure.
void run_ort(const fs::path& model, const fs::path& in_dir, const fs::path& out_dir);
struct OrtJob {
  fs::path model, in_dir, out_dir;
};
void run_ort(const std::vector<OrtJob>& jobs);  // one ONNX Runtime process for all

struct CliResult {
  int exit_code;
  std::string out, err;
};
CliResult run_cli(const std::string& args);

double max_abs_diff(const Array& a, const Array& b);  // both float32 of the same shape
double cosine(const Array& a, const Array& b);

}  // namespace hf2onnx::test

namespace hf2onnx::test {
// Writes an uncompressed zip (the layout torch.save uses) with the given entries.
void write_zip(const fs::path& path, const std::vector<std::pair<std::string, std::string>>& entries);
std::string read_file(const fs::path& path);
void write_file(const fs::path& path, const std::string& bytes);
// Parses an .onnx file (weights inline); fails the test when it does not parse.
onnx::ModelProto load_onnx(const fs::path& path);

// Runs `node tools/<script> args...`; throws with its stderr when it fails. Returns stderr.
std::string run_tool(const std::string& script, const std::string& args);
// A decoder's first-step inputs: the files of `ref_dir` plus empty past_key_values.{i}.key/value
// [batch, kv_heads, 0, head_dim] for `layers` layers, in `out_dir`.
void write_first_step_inputs(const fs::path& ref_dir, const fs::path& out_dir, int layers, int kv_heads, int head_dim);
// Copies a models/ fixture into a temporary folder for tests that alter it.
fs::path copy_fixture(const std::string& fixture, const std::string& tmp_name);
}  // namespace hf2onnx::test
