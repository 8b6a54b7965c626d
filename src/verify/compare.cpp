#include "verify/compare.h"

#include <algorithm>
#include <cmath>

namespace hf2onnx {

namespace {
bool comparable(const NpyArray& a, const NpyArray& b) {
  return a.shape == b.shape && a.dtype == "<f4" && b.dtype == "<f4";
}
}  // namespace

double max_abs_diff(const NpyArray& a, const NpyArray& b) {
  if (!comparable(a, b)) return INFINITY;
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    double d = std::fabs(static_cast<double>(a.f32()[i]) - b.f32()[i]);
    if (std::isnan(d)) return INFINITY;  // a NaN anywhere is a failure, never skipped
    m = std::max(m, d);
  }
  return m;
}

double cosine(const NpyArray& a, const NpyArray& b) {
  if (!comparable(a, b)) return -2;
  double ab = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    ab += double(a.f32()[i]) * b.f32()[i];
    aa += double(a.f32()[i]) * a.f32()[i];
    bb += double(b.f32()[i]) * b.f32()[i];
  }
  return ab / (std::sqrt(aa) * std::sqrt(bb) + 1e-30);
}

double argmax_agreement(const NpyArray& a, const NpyArray& b) {
  if (!comparable(a, b) || a.shape.empty() || a.shape.back() == 0) return -1;
  const int64_t last = a.shape.back(), rows = a.numel() / last;
  if (rows == 0) return -1;
  int64_t same = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = a.f32() + r * last;
    const float* y = b.f32() + r * last;
    same += (std::max_element(x, x + last) - x) == (std::max_element(y, y + last) - y);
  }
  return static_cast<double>(same) / static_cast<double>(rows);
}

}  // namespace hf2onnx
