#include "quantize/quant_math.h"

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <limits>
#include <mutex>
#include <thread>

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

namespace {
// Round half to even for |x| < 2^22 without a libm call (so that loops vectorise): adding and
// subtracting 1.5·2^23 leaves x rounded by the default round-to-nearest-even mode. (Without
// -ffast-math the compiler may not fold (x + m) - m into x.)
inline float round_half_even(float x) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (x + kMagic) - kMagic;
}
// Quantizes n values with one scale/zero point. The division (not a multiplication by 1/scale) keeps the
// results identical to ONNX Runtime's quantize_nparray.
void quantize_span(const float* x, int64_t n, QParams p, QRange r, uint8_t* out) {
  const float lo = static_cast<float>(r.qmin), hi = static_cast<float>(r.qmax), zp = static_cast<float>(p.zero_point);
  for (int64_t i = 0; i < n; ++i) {
    float v = std::min(std::max(x[i] / p.scale, -4194304.f), 4194304.f);  // stay inside the magic range
    float q = std::min(std::max(round_half_even(v) + zp, lo), hi);
    out[i] = static_cast<uint8_t>(static_cast<int>(q));
  }
}
}  // namespace

uint8_t quantize_value(float x, QParams p, QRange r) {
  uint8_t out;
  quantize_span(&x, 1, p, r, &out);
  return out;
}

namespace {
// Runs fn(begin, end) over [0, n) split across the cores, each part at least `grain` long
// (weights are up to ~10^8 values; small ones stay on one thread).
template <typename Fn>
void parallel_ranges(int64_t n, int64_t grain, Fn&& fn) {
  int64_t threads = std::min<int64_t>(std::max(1u, std::thread::hardware_concurrency()), n / std::max<int64_t>(grain, 1));
  if (threads <= 1) return fn(int64_t(0), n);
  std::vector<std::thread> pool;
  const int64_t chunk = (n + threads - 1) / threads;
  for (int64_t t = 1; t < threads; ++t)
    pool.emplace_back([&, t] { fn(t * chunk, std::min(n, (t + 1) * chunk)); });
  fn(int64_t(0), std::min(n, chunk));
  for (auto& th : pool) th.join();
}
}  // namespace

QuantizedTensor quantize_tensor(const float* x, const std::vector<int64_t>& dims, QType type, bool symmetric,
                                bool reduce_range, int axis) {
  constexpr int64_t kGrain = 1 << 20;
  if (std::fegetround() != FE_TONEAREST) std::fesetround(FE_TONEAREST);
  int64_t n = 1;
  for (auto d : dims) n *= d;
  bool finite = true;
  for (int64_t i = 0; i < n; ++i) finite &= std::isfinite(x[i]);
  if (!finite) throw Error("weight contains NaN or infinite values");
  const QRange range = qrange(type, reduce_range, symmetric);
  QuantizedTensor out;
  out.data.resize(static_cast<size_t>(n));
  if (axis < 0) {
    std::mutex m;
    float lo = 0, hi = 0;  // the range always includes 0
    parallel_ranges(n, kGrain, [&](int64_t b, int64_t e) {
      float l = 0, h = 0;
      for (int64_t i = b; i < e; ++i) {
        l = std::min(l, x[i]);
        h = std::max(h, x[i]);
      }
      std::lock_guard<std::mutex> lock(m);
      lo = std::min(lo, l);
      hi = std::max(hi, h);
    });
    QParams p = compute_params(lo, hi, range, symmetric);
    parallel_ranges(n, kGrain, [&](int64_t b, int64_t e) { quantize_span(x + b, e - b, p, range, out.data.data() + b); });
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
  if (inner == 1) {  // the usual case, MatMul weights [K, N] per output column: walk row by row
    std::vector<float> scale(channels), zp(channels);
    for (int64_t c = 0; c < channels; ++c) {
      scale[c] = params[c].scale;
      zp[c] = static_cast<float>(params[c].zero_point);
    }
    const float lo_q = static_cast<float>(range.qmin), hi_q = static_cast<float>(range.qmax);
    parallel_ranges(outer, kGrain / std::max<int64_t>(channels, 1), [&](int64_t row_begin, int64_t row_end) {
    for (int64_t o = row_begin; o < row_end; ++o) {
      const float* row = x + o * channels;
      uint8_t* q = out.data.data() + o * channels;
      for (int64_t c = 0; c < channels; ++c) {
        float v = std::min(std::max(row[c] / scale[c], -4194304.f), 4194304.f);
        q[c] = static_cast<uint8_t>(static_cast<int>(std::min(std::max(round_half_even(v) + zp[c], lo_q), hi_q)));
      }
    }
    });
    return out;
  }
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < channels; ++c)
      quantize_span(x + (o * channels + c) * inner, inner, params[c], range, out.data.data() + (o * channels + c) * inner);
  return out;
}

}  // namespace hf2onnx::quant
