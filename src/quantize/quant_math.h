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

// Per-tensor (axis < 0) or per-channel along `axis` of a tensor of shape `dims`.
// Throws on NaN or infinite values.
QuantizedTensor quantize_tensor(const float* x, const std::vector<int64_t>& dims, QType type, bool symmetric,
                                bool reduce_range, int axis);

}  // namespace hf2onnx::quant
