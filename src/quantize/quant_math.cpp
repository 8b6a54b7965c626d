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
// Runs fn(begin, end) over [0, n) split across `threads` threads (0: the cores), each part at least
// `grain` long (weights are up to ~10^8 values; small ones stay on one thread).
template <typename Fn>
void parallel_ranges(int64_t n, int64_t grain, int threads_wanted, Fn&& fn) {
  const int64_t cores = threads_wanted > 0 ? threads_wanted : std::max(1u, std::thread::hardware_concurrency());
  const int64_t threads = std::min<int64_t>(cores, n / std::max<int64_t>(grain, 1));
  if (threads <= 1) return fn(int64_t(0), n);
  std::vector<std::thread> pool;
  const int64_t chunk = (n + threads - 1) / threads;
  for (int64_t t = 1; t < threads; ++t)
    pool.emplace_back([&, t] { fn(std::min(n, t * chunk), std::min(n, (t + 1) * chunk)); });
  fn(int64_t(0), std::min(n, chunk));
  for (auto& th : pool) th.join();
}

void check_finite(const float* x, int64_t n) {
  bool finite = true;
  for (int64_t i = 0; i < n; ++i) finite &= std::isfinite(x[i]);
  if (!finite) throw Error("weight contains NaN or infinite values");
}

inline int abs_q(uint8_t byte) { return std::abs(static_cast<int>(static_cast<int8_t>(byte))); }

// Symmetric int8 weights [rows = K, cols = N] with |q[k][n]| + |q[k+1][n]| <= limit (see WeightSpec).
// The scale is the larger of ORT's max|w| / qmax and (largest neighbour pair |w| sum) / limit, so a
// pair can only exceed the limit through rounding, by at most one step; that step is taken back from
// the value of the pair that was rounded away from zero the most.
QuantizedTensor quantize_pair_limited(const float* x, int64_t rows, int64_t cols, const WeightSpec& spec, uint8_t* data) {
  if (!spec.symmetric || spec.type != QType::Int8 || (spec.axis != -1 && spec.axis != 1))
    throw Error("internal: a pair-sum limit needs symmetric int8 weights, per tensor or per column");
  const QRange range = qrange(spec.type, spec.reduce_range, true);
  const int64_t groups = spec.axis < 0 ? 1 : cols;
  auto group = [&](int64_t col) { return spec.axis < 0 ? 0 : col; };
  const int64_t row_grain = std::max<int64_t>(1, spec.grain / std::max<int64_t>(cols, 1));

  // Statistics per group: min, max and the largest neighbour pair |w| sum. A thread's rows [b, e) own
  // the pairs (k, k+1) for k in [b, e), so the pair across a split is counted once.
  std::vector<float> lo(groups, 0.f), hi(groups, 0.f), pair(groups, 0.f);
  std::mutex m;
  parallel_ranges(rows, row_grain, spec.threads, [&](int64_t b, int64_t e) {
    std::vector<float> l(groups, 0.f), h(groups, 0.f), p(groups, 0.f);
    float sl = 0.f, sh = 0.f, sp = 0.f;  // per tensor: scalars, so that the loops vectorise
    for (int64_t k = b; k < e; ++k) {
      const float* row = x + k * cols;
      const float* next = k + 1 < rows ? row + cols : nullptr;
      if (spec.axis < 0) {
        // 16 lanes, reduced at the end (the values are finite, so the order of min/max does not matter)
        constexpr int kLanes = 16;
        float ll[kLanes] = {}, hl[kLanes] = {}, pl[kLanes] = {};
        int64_t j = 0;
        for (; j + kLanes <= cols; j += kLanes)
          for (int t = 0; t < kLanes; ++t) {
            ll[t] = std::min(ll[t], row[j + t]);
            hl[t] = std::max(hl[t], row[j + t]);
            if (next) pl[t] = std::max(pl[t], std::fabs(row[j + t]) + std::fabs(next[j + t]));
          }
        for (; j < cols; ++j) {
          sl = std::min(sl, row[j]);
          sh = std::max(sh, row[j]);
          if (next) sp = std::max(sp, std::fabs(row[j]) + std::fabs(next[j]));
        }
        for (int t = 0; t < kLanes; ++t) {
          sl = std::min(sl, ll[t]);
          sh = std::max(sh, hl[t]);
          sp = std::max(sp, pl[t]);
        }
      } else {
        for (int64_t j = 0; j < cols; ++j) {
          l[j] = std::min(l[j], row[j]);
          h[j] = std::max(h[j], row[j]);
        }
        if (next)
          for (int64_t j = 0; j < cols; ++j) p[j] = std::max(p[j], std::fabs(row[j]) + std::fabs(next[j]));
      }
    }
    if (spec.axis < 0) {
      l[0] = sl;
      h[0] = sh;
      p[0] = sp;
    }
    std::lock_guard<std::mutex> lock(m);
    for (int64_t g = 0; g < groups; ++g) {
      lo[g] = std::min(lo[g], l[g]);
      hi[g] = std::max(hi[g], h[g]);
      pair[g] = std::max(pair[g], p[g]);
    }
  });
  QuantizedTensor out;
  std::vector<QParams> params(groups);
  for (int64_t g = 0; g < groups; ++g) {
    params[g] = compute_params(lo[g], hi[g], range, true);
    const double pair_scale = static_cast<double>(pair[g]) / spec.pair_sum_limit;
    if (pair_scale > params[g].scale) params[g].scale = static_cast<float>(pair_scale);
    out.scales.push_back(params[g].scale);
    out.zero_points.push_back(params[g].zero_point);
  }
  if (!data) return out;  // scales and zero points only
  parallel_ranges(rows, row_grain, spec.threads, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      if (spec.axis < 0) {
        quantize_span(x + k * cols, cols, params[0], range, data + k * cols);
      } else {
        for (int64_t j = 0; j < cols; ++j) data[k * cols + j] = quantize_value(x[k * cols + j], params[j], range);
      }
    }
  });
  // Walk down K row by row (columns split across threads): a pair (k, k+1) is settled before (k+1, k+2),
  // and lowering a magnitude never breaks the pair above it.
  const int64_t col_grain = std::max<int64_t>(1, spec.grain / std::max<int64_t>(rows, 1));
  parallel_ranges(cols, col_grain, spec.threads, [&](int64_t b, int64_t e) {
    for (int64_t k = 0; k + 1 < rows; ++k) {
      uint8_t* r0 = data + k * cols;
      uint8_t* r1 = r0 + cols;
      for (int64_t j = b; j < e; ++j) {
        for (int excess = abs_q(r0[j]) + abs_q(r1[j]) - spec.pair_sum_limit; excess > 0; --excess) {
          const float scale = params[group(j)].scale;
          // how far each was rounded away from zero, in steps
          const double up0 = abs_q(r0[j]) - std::fabs(x[k * cols + j]) / scale;
          const double up1 = abs_q(r1[j]) - std::fabs(x[(k + 1) * cols + j]) / scale;
          uint8_t* q = (up0 > up1 && abs_q(r0[j]) > 0) || abs_q(r1[j]) == 0 ? &r0[j] : &r1[j];
          const int v = static_cast<int8_t>(*q);
          *q = static_cast<uint8_t>(static_cast<int8_t>(v > 0 ? v - 1 : v + 1));
        }
      }
    }
  });
  return out;
}
}  // namespace

int max_pair_sum(const int8_t* q, int64_t rows, int64_t cols) {
  int m = 0;
  for (int64_t k = 0; k + 1 < rows; ++k)
    for (int64_t j = 0; j < cols; ++j) m = std::max(m, std::abs(int(q[k * cols + j])) + std::abs(int(q[(k + 1) * cols + j])));
  return m;
}

QuantizedTensor quantize_tensor(const float* x, const std::vector<int64_t>& dims, const WeightSpec& spec) {
  int64_t n = 1;
  for (auto d : dims) n *= d;
  std::vector<uint8_t> data(static_cast<size_t>(n));
  QuantizedTensor out = quantize_tensor_into(x, dims, spec, data.data());
  out.data = std::move(data);
  return out;
}

QuantizedTensor quantize_tensor_into(const float* x, const std::vector<int64_t>& dims, const WeightSpec& spec,
                                     uint8_t* data) {
  if (std::fegetround() != FE_TONEAREST) std::fesetround(FE_TONEAREST);
  int64_t n = 1;
  for (auto d : dims) n *= d;
  check_finite(x, n);
  if (spec.pair_sum_limit > 0) {
    if (dims.size() != 2) throw Error("internal: a pair-sum limit needs a rank-2 weight");
    return quantize_pair_limited(x, dims[0], dims[1], spec, data);
  }
  const QType type = spec.type;
  const bool symmetric = spec.symmetric;
  const int axis = spec.axis;
  const int64_t kGrain = spec.grain;
  const QRange range = qrange(type, spec.reduce_range, symmetric);
  QuantizedTensor out;
  if (axis < 0) {
    std::mutex m;
    float lo = 0, hi = 0;  // the range always includes 0
    parallel_ranges(n, kGrain, spec.threads, [&](int64_t b, int64_t e) {
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
    if (data)
      parallel_ranges(n, kGrain, spec.threads, [&](int64_t b, int64_t e) { quantize_span(x + b, e - b, p, range, data + b); });
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
  if (!data) return out;  // scales and zero points only
  if (inner == 1) {  // the usual case, MatMul weights [K, N] per output column: walk row by row
    std::vector<float> scale(channels), zp(channels);
    for (int64_t c = 0; c < channels; ++c) {
      scale[c] = params[c].scale;
      zp[c] = static_cast<float>(params[c].zero_point);
    }
    const float lo_q = static_cast<float>(range.qmin), hi_q = static_cast<float>(range.qmax);
    parallel_ranges(outer, std::max<int64_t>(1, kGrain / std::max<int64_t>(channels, 1)), spec.threads, [&](int64_t row_begin, int64_t row_end) {
    for (int64_t o = row_begin; o < row_end; ++o) {
      const float* row = x + o * channels;
      uint8_t* q = data + o * channels;
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
      quantize_span(x + (o * channels + c) * inner, inner, params[c], range, data + (o * channels + c) * inner);
  return out;
}

}  // namespace hf2onnx::quant
