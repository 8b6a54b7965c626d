#include "quantize/quant_math.h"

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <limits>

#include "hf2onnx/error.h"

namespace hf2onnx::quant {

QRange qrange(QType type, bool reduce_range, bool symmetric) {
  if (type == QType::UInt8) return reduce_range ? QRange{0, 127} : QRange{0, 255};
  if (reduce_range) return {-64, 64};
  return symmetric ? QRange{-127, 127} : QRange{-128, 127};
}

QParams compute_params(float rmin_f, float rmax_f, QRange r, bool symmetric) {
  double rmin = std::min<double>(rmin_f, 0.0), rmax = std::max<double>(rmax_f, 0.0);
  if (symmetric) {
    double absmax = std::max(std::fabs(rmin), std::fabs(rmax));
    rmin = -absmax;
    rmax = absmax;
  }
  double scale = (rmax - rmin) / static_cast<double>(r.qmax - r.qmin);
  if (scale < std::numeric_limits<float>::min()) return {1.0f, 0};  // all zeros (or denormal-only)
  double zp = symmetric ? std::nearbyint((r.qmin + r.qmax) / 2.0) : std::nearbyint(r.qmin - rmin / scale);
  return {static_cast<float>(scale), static_cast<int>(zp)};
}

uint8_t quantize_value(float x, QParams p, QRange r) {
  float q = std::nearbyint(x / p.scale) + static_cast<float>(p.zero_point);  // FE_TONEAREST: half to even
  q = std::min(std::max(q, static_cast<float>(r.qmin)), static_cast<float>(r.qmax));
  return static_cast<uint8_t>(static_cast<int>(q) & 0xff);
}

QuantizedTensor quantize_tensor(const float* x, const std::vector<int64_t>& dims, QType type, bool symmetric,
                                bool reduce_range, int axis) {
  if (std::fegetround() != FE_TONEAREST) std::fesetround(FE_TONEAREST);
  int64_t n = 1;
  for (auto d : dims) n *= d;
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) throw Error("weight contains NaN or infinite values");
  const QRange range = qrange(type, reduce_range, symmetric);
  QuantizedTensor out;
  out.data.resize(static_cast<size_t>(n));
  if (axis < 0) {
    float lo = 0, hi = 0;
    if (n) {
      auto [mn, mx] = std::minmax_element(x, x + n);
      lo = *mn;
      hi = *mx;
    }
    QParams p = compute_params(lo, hi, range, symmetric);
    for (int64_t i = 0; i < n; ++i) out.data[i] = quantize_value(x[i], p, range);
    out.scales = {p.scale};
    out.zero_points = {p.zero_point};
    return out;
  }
  // Per channel: view as [outer, channels, inner].
  int64_t outer = 1, inner = 1, channels = dims.at(axis);
  for (int i = 0; i < axis; ++i) outer *= dims[i];
  for (size_t i = axis + 1; i < dims.size(); ++i) inner *= dims[i];
  std::vector<float> lo(channels, 0.f), hi(channels, 0.f);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t i = 0; i < inner; ++i) {
        float v = x[(o * channels + c) * inner + i];
        lo[c] = std::min(lo[c], v);
        hi[c] = std::max(hi[c], v);
      }
  std::vector<QParams> params(channels);
  for (int64_t c = 0; c < channels; ++c) {
    params[c] = compute_params(lo[c], hi[c], range, symmetric);
    out.scales.push_back(params[c].scale);
    out.zero_points.push_back(params[c].zero_point);
  }
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t i = 0; i < inner; ++i) {
        int64_t k = (o * channels + c) * inner + i;
        out.data[k] = quantize_value(x[k], params[c], range);
      }
  return out;
}

}  // namespace hf2onnx::quant
