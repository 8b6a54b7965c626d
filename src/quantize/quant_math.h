// Quantization arithmetic, as ONNX Runtime's quant_utils computes it (compute_scale_zp,
// get_qmin_qmax_for_qType, quantize_nparray): ranges include 0, symmetric int8 uses ±127,
// reduce-range uses 7 bits, values round half to even, a zero range gives scale 1 and zero point 0.
#pragma once
#include <cstdint>
#include <vector>

namespace hf2onnx::quant {

enum class QType { UInt8, Int8 };

struct QRange {
  int qmin, qmax;
};
QRange qrange(QType type, bool reduce_range, bool symmetric);

struct QParams {
  float scale;
  int zero_point;
};
// Scale and zero point for the real range [rmin, rmax] (extended to include 0).
QParams compute_params(float rmin, float rmax, QRange range, bool symmetric);

// q = clamp(round_half_even(x / scale) + zero_point, qmin, qmax), stored as the type's byte.
uint8_t quantize_value(float x, QParams p, QRange range);

struct QuantizedTensor {
  std::vector<uint8_t> data;        // int8 values are stored as their two's complement bytes
  std::vector<float> scales;        // one, or one per channel
  std::vector<int> zero_points;
};

// How one weight tensor is quantized.
struct WeightSpec {
  QType type = QType::Int8;
  bool symmetric = true;
  bool reduce_range = false;
  int axis = -1;  // per-channel axis, or -1 for one scale per tensor
  // When > 0: for every pair of neighbours along dim 0 (K of a MatMul weight [K, N]),
  // |q[k][n]| + |q[k+1][n]| <= pair_sum_limit. x86 CPUs without VNNI multiply u8 activations by s8
  // weights with vpmaddubsw, which adds each such pair of products in saturating int16: with
  // activations up to 255, a limit of 128 keeps 255 * 128 = 32640 <= 32767, so the sum is exact.
  // Only for symmetric int8 weights of rank 2 (axis -1 or 1).
  int pair_sum_limit = 0;
  int threads = 0;              // 0: one per core (tests set it to sample the split)
  int64_t grain = 1 << 20;      // values per thread at least
};

// Quantizes a tensor of shape `dims`. Throws on NaN or infinite values.
QuantizedTensor quantize_tensor(const float* x, const std::vector<int64_t>& dims, const WeightSpec& spec);
// The same with the values written to `data` (room for every value; the result's `data` stays empty), or, when
// `data` is null, only the scales and zero points computed (the quantizer's first pass over a weight).
QuantizedTensor quantize_tensor_into(const float* x, const std::vector<int64_t>& dims, const WeightSpec& spec,
                                     uint8_t* data);

// The same with the common arguments (no pair limit).
inline QuantizedTensor quantize_tensor(const float* x, const std::vector<int64_t>& dims, QType type, bool symmetric,
                                       bool reduce_range, int axis) {
  WeightSpec spec;
  spec.type = type;
  spec.symmetric = symmetric;
  spec.reduce_range = reduce_range;
  spec.axis = axis;
  return quantize_tensor(x, dims, spec);
}

// The largest |q[k][n]| + |q[k+1][n]| over neighbours along dim 0 of int8 values [K, N] (0 when K < 2).
int max_pair_sum(const int8_t* q, int64_t rows, int64_t cols);

}  // namespace hf2onnx::quant
