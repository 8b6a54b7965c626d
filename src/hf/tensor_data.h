// TensorData: a typed, strided view of checkpoint bytes (usually inside a memory map). No libtorch here.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace hf2onnx::hf {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool };

const char* dtype_name(DType t);  // safetensors spelling: "F32", "BF16", ...
size_t dtype_size(DType t);
bool dtype_is_floating(DType t);

struct TensorData {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;  // in elements; same rank as shape
  const uint8_t* data = nullptr;  // element [0, 0, ...]
  std::shared_ptr<const void> owner;  // keeps the mapping or buffer alive
  std::string source;  // file the tensor came from, for messages

  int64_t numel() const;
  uint64_t nbytes() const { return static_cast<uint64_t>(numel()) * dtype_size(dtype); }
  bool is_contiguous() const;
};

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape);
std::string shape_str(const std::vector<int64_t>& shape);  // "[768, 3072]"

// Converts any floating or integer tensor (any strides) to contiguous float32 in `out` (numel floats).
void convert_to_float32(const TensorData& t, float* out);

// The same, for the exporter and the quantizer: a 2-D tensor transposed ([cols, rows]) when `transposed`, and a
// tensor inside a file mapping read from its file a strip of rows at a time (no page faults, nothing of it left
// resident). With `non_finite`, adds the number of NaN and infinite values to it (counted on the way).
void read_as_float32(const TensorData& t, bool transposed, float* out, uint64_t* non_finite = nullptr);

// Bit-exact half / bfloat16 → float.
float half_to_float(uint16_t h);
float bfloat16_to_float(uint16_t b);

}  // namespace hf2onnx::hf
