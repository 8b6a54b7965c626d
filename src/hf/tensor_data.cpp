#include "hf/tensor_data.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/mapped_file.h"
#include "common/scratch.h"
#include "hf2onnx/error.h"

namespace hf2onnx::hf {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F64: return "F64";
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::I16: return "I16";
    case DType::I8: return "I8";
    case DType::U8: return "U8";
    case DType::Bool: return "BOOL";
  }
  return "?";
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F64: case DType::I64: return 8;
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: case DType::I16: return 2;
    case DType::I8: case DType::U8: case DType::Bool: return 1;
  }
  return 1;
}

bool dtype_is_floating(DType t) {
  return t == DType::F64 || t == DType::F32 || t == DType::F16 || t == DType::BF16;
}

int64_t TensorData::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    if (d == 0) return 0;  // (the readers check that the other dims' product fits)
  for (int64_t d : shape) n *= d;
  return n;
}

bool TensorData::is_contiguous() const { return strides == contiguous_strides(shape); }

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * std::max<int64_t>(shape[i + 1], 1);
  return s;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

float half_to_float(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) { mant <<= 1; --exp; }
      bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bfloat16_to_float(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

namespace {
template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

float element_as_float(DType t, const uint8_t* p) {
  switch (t) {
    case DType::F64: return static_cast<float>(load<double>(p));
    case DType::F32: return load<float>(p);
    case DType::F16: return half_to_float(load<uint16_t>(p));
    case DType::BF16: return bfloat16_to_float(load<uint16_t>(p));
    case DType::I64: return static_cast<float>(load<int64_t>(p));
    case DType::I32: return static_cast<float>(load<int32_t>(p));
    case DType::I16: return static_cast<float>(load<int16_t>(p));
    case DType::I8: return static_cast<float>(load<int8_t>(p));
    case DType::U8: return static_cast<float>(*p);
    case DType::Bool: return *p ? 1.f : 0.f;
  }
  return 0.f;
}
}  // namespace

void convert_to_float32(const TensorData& t, float* out) {
  const int64_t n = t.numel();
  if (n == 0) return;
  const size_t es = dtype_size(t.dtype);
  if (t.is_contiguous()) {
    if (t.dtype == DType::F32) {
      std::memcpy(out, t.data, n * 4);
      return;
    }
    if (t.dtype == DType::BF16) {  // the common case of today's checkpoints: a shift per element
      for (int64_t i = 0; i < n; ++i) {
        uint16_t b;
        std::memcpy(&b, t.data + i * 2, 2);
        const uint32_t bits = static_cast<uint32_t>(b) << 16;
        std::memcpy(out + i, &bits, 4);
      }
      return;
    }
    for (int64_t i = 0; i < n; ++i) out[i] = element_as_float(t.dtype, t.data + i * es);
    return;
  }
  // General strided walk with an index counter.
  const size_t rank = t.shape.size();
  std::vector<int64_t> idx(rank, 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0;
    for (size_t d = 0; d < rank; ++d) off += idx[d] * t.strides[d];
    out[i] = element_as_float(t.dtype, t.data + off * static_cast<int64_t>(es));
    for (int d = static_cast<int>(rank) - 1; d >= 0; --d) {
      if (++idx[d] < t.shape[d]) break;
      idx[d] = 0;
    }
  }
}

void read_as_float32(const TensorData& t, bool transposed, float* out, uint64_t* non_finite) {
  transposed = transposed && t.shape.size() == 2;
  if (!t.is_contiguous()) {  // rare (a strided view in a pickle): convert it whole, then transpose
    if (!transposed) {
      convert_to_float32(t, out);
      if (non_finite) *non_finite += count_non_finite_floats(out, static_cast<uint64_t>(t.numel()));
      return;
    }
    std::vector<float> converted(static_cast<size_t>(t.numel()));
    convert_to_float32(t, converted.data());
    return transpose_floats(converted.data(), t.shape[0], t.shape[1], out, non_finite);
  }
  // A strip of rows at a time: read from the file (MappedFile::read: no page faults), converted, placed.
  const int64_t rows = t.shape.empty() ? 1 : t.shape[0];
  const int64_t cols = rows == 0 ? 0 : t.numel() / rows;
  const size_t es = dtype_size(t.dtype);
  constexpr int64_t kRows = kStripRows;  // transpose_strips' strips, and the plain copy's
  // This thread's reused buffer (2 MB pages): a fresh one per tensor costs its pages' faults each time.
  uint8_t* raw = scratch_bytes(static_cast<size_t>(std::min(rows, kRows) * cols) * es, Scratch::RawStrip);
  auto strip = [&](int64_t r0, int64_t count, float* buffer) -> const float* {
    MappedFile::read(t.data + static_cast<size_t>(r0 * cols) * es, static_cast<uint64_t>(count * cols) * es, raw);
    TensorData part = t;
    part.data = raw;
    part.shape = {count, cols};
    part.strides = {cols, 1};
    convert_to_float32(part, buffer);
    return buffer;
  };
  if (transposed) return transpose_strips(rows, cols, out, strip, non_finite);
  for (int64_t r0 = 0; r0 < rows; r0 += kRows) {
    const int64_t n = std::min(kRows, rows - r0);
    const float* converted = strip(r0, n, out + r0 * cols);
    if (non_finite) *non_finite += count_non_finite_floats(converted, static_cast<uint64_t>(n * cols));  // in cache
  }
}

}  // namespace hf2onnx::hf
