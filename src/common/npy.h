// NumPy .npy files (version 1/2, little-endian, C order): how tensors travel between hf2onnx, the ONNX
// Runtime runner (tools/ort_run.mjs) and the tests.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace hf2onnx {

struct NpyArray {
  std::string dtype;  // "<f4", "<i8", "|b1"
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
  const float* f32() const { return reinterpret_cast<const float*>(bytes.data()); }
  const int64_t* i64() const { return reinterpret_cast<const int64_t*>(bytes.data()); }
  int64_t numel() const;
};

// Throws an Error naming the file when it is not a well-formed .npy of a known dtype.
NpyArray read_npy(const std::filesystem::path& path);
void write_npy(const std::filesystem::path& path, const NpyArray& a);
NpyArray make_f32(std::vector<int64_t> shape, const float* data);
NpyArray make_i64(std::vector<int64_t> shape, const int64_t* data);

}  // namespace hf2onnx
