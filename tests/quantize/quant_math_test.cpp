// Tier 1: quantization arithmetic against hand-computed values.
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "hf2onnx/error.h"
#include "quantize/quant_math.h"

namespace hf2onnx::quant {
namespace {

int8_t s8(uint8_t b) { return static_cast<int8_t>(b); }

TEST(QuantMath, Ranges) {
  EXPECT_EQ(qrange(QType::Int8, false, true).qmin, -127);
  EXPECT_EQ(qrange(QType::Int8, false, true).qmax, 127);
  EXPECT_EQ(qrange(QType::Int8, true, true).qmin, -64);
  EXPECT_EQ(qrange(QType::Int8, true, true).qmax, 64);
  EXPECT_EQ(qrange(QType::UInt8, false, false).qmax, 255);
  EXPECT_EQ(qrange(QType::UInt8, true, false).qmax, 127);
}

TEST(QuantMath, SymmetricInt8) {
  // max |w| = 2.54 → scale = 2.54 / 127 = 0.02, zero point 0.
  float w[] = {-2.54f, -1.0f, 0.0f, 0.5f, 1.27f, 2.0f};
  auto q = quantize_tensor(w, {2, 3}, QType::Int8, true, false, -1);
  ASSERT_EQ(q.scales.size(), 1u);
  EXPECT_FLOAT_EQ(q.scales[0], 0.02f);
  EXPECT_EQ(q.zero_points[0], 0);
  // -2.54/0.02 = -127, -1/0.02 = -50, 0.5/0.02 = 25, 1.27/0.02 = 63.5 → 64 (half to even), 2/0.02 = 100
  std::vector<int> got;
  for (uint8_t b : q.data) got.push_back(s8(b));
  EXPECT_EQ(got, (std::vector<int>{-127, -50, 0, 25, 64, 100}));
}

TEST(QuantMath, AsymmetricUint8) {
  // range [-1, 3] → scale 4/255, zero point round(0 - (-1)/(4/255)) = round(63.75) = 64
  float w[] = {-1.f, 0.f, 3.f, 1.f};
  auto q = quantize_tensor(w, {4}, QType::UInt8, false, false, -1);
  EXPECT_FLOAT_EQ(q.scales[0], 4.f / 255.f);
  EXPECT_EQ(q.zero_points[0], 64);
  // -1 → round(-63.75) + 64 = 0; 0 → 64; 3 → round(191.25) + 64 = 255; 1 → round(63.75) + 64 = 128
  EXPECT_EQ(q.data, (std::vector<uint8_t>{0, 64, 255, 128}));
  // A range that does not contain 0 is widened to include it: [2, 4] → [0, 4].
  float pos[] = {2.f, 4.f};
  auto p = quantize_tensor(pos, {2}, QType::UInt8, false, false, -1);
  EXPECT_FLOAT_EQ(p.scales[0], 4.f / 255.f);
  EXPECT_EQ(p.zero_points[0], 0);
}

TEST(QuantMath, PerChannelIsPerOutputColumn) {
  // W [K=2, N=3]; columns have max |w| 1.27, 0.254, 0 → scales 0.01, 0.002, 1 (all-zero column).
  float w[] = {1.27f, -0.254f, 0.f,  //
               -0.635f, 0.127f, 0.f};
  auto q = quantize_tensor(w, {2, 3}, QType::Int8, true, false, 1);
  ASSERT_EQ(q.scales.size(), 3u);
  EXPECT_FLOAT_EQ(q.scales[0], 0.01f);
  EXPECT_FLOAT_EQ(q.scales[1], 0.002f);
  EXPECT_FLOAT_EQ(q.scales[2], 1.f);
  std::vector<int> got;
  for (uint8_t b : q.data) got.push_back(s8(b));
  EXPECT_EQ(got, (std::vector<int>{127, -127, 0, -64, 64, 0}));  // -63.5 → -64, 63.5 → 64 (half to even)
}

TEST(QuantMath, ReduceRange) {
  float w[] = {-1.28f, 0.64f};
  auto q = quantize_tensor(w, {2}, QType::Int8, true, true, -1);  // ±64: scale 1.28/64 = 0.02
  EXPECT_FLOAT_EQ(q.scales[0], 0.02f);
  EXPECT_EQ(s8(q.data[0]), -64);
  EXPECT_EQ(s8(q.data[1]), 32);
  float u[] = {0.f, 1.27f};
  auto p = quantize_tensor(u, {2}, QType::UInt8, false, true, -1);  // 0..127: scale 0.01
  EXPECT_FLOAT_EQ(p.scales[0], 0.01f);
  EXPECT_EQ(p.data, (std::vector<uint8_t>{0, 127}));
}

TEST(QuantMath, RoundHalfToEven) {
  QParams p{1.0f, 0};
  QRange r{-127, 127};
  EXPECT_EQ(s8(quantize_value(0.5f, p, r)), 0);
  EXPECT_EQ(s8(quantize_value(1.5f, p, r)), 2);
  EXPECT_EQ(s8(quantize_value(2.5f, p, r)), 2);
  EXPECT_EQ(s8(quantize_value(-0.5f, p, r)), 0);
  EXPECT_EQ(s8(quantize_value(-1.5f, p, r)), -2);
  EXPECT_EQ(s8(quantize_value(300.f, p, r)), 127);   // clipped
  EXPECT_EQ(s8(quantize_value(-300.f, p, r)), -127);
}

TEST(QuantMath, AllZeroWeightHasScaleOneZeroPointZero) {
  float w[4] = {};
  for (QType t : {QType::Int8, QType::UInt8}) {
    auto q = quantize_tensor(w, {2, 2}, t, t == QType::Int8, false, -1);
    EXPECT_FLOAT_EQ(q.scales[0], 1.f);
    EXPECT_EQ(q.zero_points[0], 0);
    EXPECT_EQ(q.data, (std::vector<uint8_t>(4, 0)));
  }
}

TEST(QuantMath, DenormalAndHugeValues) {
  const float denorm = std::numeric_limits<float>::denorm_min();
  float tiny[] = {denorm, -denorm};
  auto q = quantize_tensor(tiny, {2}, QType::Int8, true, false, -1);  // range below float's normal min
  EXPECT_FLOAT_EQ(q.scales[0], 1.f);
  EXPECT_EQ(q.data, (std::vector<uint8_t>{0, 0}));
  float huge[] = {3e38f, -2e38f, 1.f};
  auto h = quantize_tensor(huge, {3}, QType::Int8, true, false, -1);
  EXPECT_FLOAT_EQ(h.scales[0], static_cast<float>(3e38 / 127));
  EXPECT_TRUE(std::isfinite(h.scales[0]));
  EXPECT_EQ(s8(h.data[0]), 127);
  EXPECT_EQ(s8(h.data[1]), -85);  // -84.67
  EXPECT_EQ(s8(h.data[2]), 0);
  float bad[] = {1.f, NAN};
  EXPECT_THROW(quantize_tensor(bad, {2}, QType::Int8, true, false, -1), Error);
}

// Large weights take the multi-threaded path; it must give exactly the single-value results.
TEST(QuantMath, LargeTensorsMatchTheScalarPath) {
  const int64_t rows = 1536, cols = 2048;  // 3.1 M values: split across threads
  std::vector<float> w(rows * cols);
  uint32_t state = 12345;
  for (auto& v : w) {
    state = state * 1664525u + 1013904223u;
    v = (static_cast<float>(state >> 8) / 16777216.f - 0.5f) * 3.f;
  }
  w[777] = -7.5f;  // the extreme sits in one thread's range only
  for (int axis : {-1, 1}) {
    auto q = quantize_tensor(w.data(), {rows, cols}, QType::Int8, true, false, axis);
    const QRange r = qrange(QType::Int8, false, true);
    for (int64_t c : {int64_t(0), int64_t(1), int64_t(777), cols - 1}) {
      float lo = 0, hi = 0;
      for (int64_t i = 0; i < rows; ++i) {
        for (int64_t j = 0; j < cols; ++j) {
          if (axis >= 0 && j != c) continue;
          lo = std::min(lo, w[i * cols + j]);
          hi = std::max(hi, w[i * cols + j]);
        }
      }
      QParams p = compute_params(lo, hi, r, true);
      EXPECT_EQ(q.scales[axis < 0 ? 0 : c], p.scale) << "axis " << axis << " column " << c;
      for (int64_t i = 0; i < rows; i += 97) {
        ASSERT_EQ(q.data[i * cols + c], quantize_value(w[i * cols + c], p, r)) << "axis " << axis << " at " << i << "," << c;
      }
    }
    if (axis < 0) {
      EXPECT_FLOAT_EQ(q.scales[0], 7.5f / 127);
    }
  }
}


// The portable form by hand: K = 3, N = 2. Per tensor, the largest neighbour pair |1.0| + |1.0| = 2.0 sets
// the scale 2.0 / 128 (ORT's max|w| / 127 would be 1/127 and let the pair reach 254).
TEST(QuantMath, PairLimitedScaleByHand) {
  const float w[] = {1.0f, 0.1f,
                     1.0f, -0.2f,
                     0.5f, 0.0f};
  WeightSpec spec;
  spec.pair_sum_limit = 128;
  auto q = quantize_tensor(w, {3, 2}, spec);
  EXPECT_FLOAT_EQ(q.scales[0], 2.0f / 128);
  EXPECT_EQ(q.zero_points[0], 0);
  const int want[] = {64, 6, 64, -13, 32, 0};  // 6.4 → 6, -12.8 → -13
  for (int i = 0; i < 6; ++i) EXPECT_EQ(s8(q.data[i]), want[i]) << i;
  // Per column: column 1's pairs are 0.3 and 0.2 → scale 0.3/128, but max|w| / 127 = 0.2/127 is smaller.
  spec.axis = 1;
  auto pc = quantize_tensor(w, {3, 2}, spec);
  EXPECT_FLOAT_EQ(pc.scales[0], 2.0f / 128);
  EXPECT_FLOAT_EQ(pc.scales[1], static_cast<float>(0.3 / 128));
  EXPECT_LE(quant::max_pair_sum(reinterpret_cast<const int8_t*>(pc.data.data()), 3, 2), 128);
  // A lone large value next to zeros is clamped to 127, not 128.
  const float lone[] = {0.f, 1.f, 0.f};
  auto l = quantize_tensor(lone, {3, 1}, spec);
  EXPECT_EQ(s8(l.data[1]), 127);
  // Only symmetric int8 rank-2 weights take a limit.
  WeightSpec bad = spec;
  bad.type = QType::UInt8;
  bad.symmetric = false;
  EXPECT_THROW(quantize_tensor(w, {3, 2}, bad), Error);
  EXPECT_THROW(quantize_tensor(w, {6}, spec), Error);
}

std::vector<float> random_weights(int64_t n, uint32_t seed, float spread) {
  std::vector<float> w(static_cast<size_t>(n));
  for (auto& v : w) {
    seed = seed * 1664525u + 1013904223u;
    const float u = static_cast<float>(seed >> 8) / 16777216.f - 0.5f;
    v = u * u * u * spread;  // heavy-tailed, like trained weights
  }
  return w;
}

// The property the default relies on, over random and adversarial weights, both axes, several shapes:
// 255 * (|q[k][n]| + |q[k+1][n]|) never exceeds int16.
TEST(QuantMath, PairLimitHoldsForAnyWeights) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{2, 1}, {7, 3}, {64, 48}, {513, 17}}) {
    for (uint32_t seed : {1u, 2u, 3u}) {
      auto w = random_weights(rows * cols, seed, 8.f);
      if (seed == 2)  // adversarial: every pair close to the largest pair
        for (int64_t i = 0; i < rows * cols; ++i) w[i] = (i % 3 == 0 ? 0.999f : 1.0f) * ((i / cols) % 2 ? 1 : -1);
      if (seed == 3)  // values just below rounding boundaries of the pair scale
        for (int64_t i = 0; i < rows * cols; ++i) w[i] = (63.5f + 0.001f * static_cast<float>(i % 7)) / 64.f;
      for (int axis : {-1, 1}) {
        WeightSpec spec;
        spec.pair_sum_limit = 128;
        spec.axis = axis;
        auto q = quantize_tensor(w.data(), {rows, cols}, spec);
        const auto* v = reinterpret_cast<const int8_t*>(q.data.data());
        EXPECT_LE(255 * max_pair_sum(v, rows, cols), 32767) << rows << "x" << cols << " seed " << seed << " axis " << axis;
        for (int64_t i = 0; i < rows * cols; ++i) {
          ASSERT_LE(std::abs(int(v[i])), 127);
          // never further than one step from w / scale (rounding plus at most one step taken back)
          const float scale = q.scales[axis < 0 ? 0 : i % cols];
          ASSERT_LE(std::fabs(v[i] - w[i] / scale), 1.0f + 1e-4f) << i;
        }
      }
    }
  }
}

// Threads split K into row ranges: the pair that straddles a split (rows 333 | 334 of 1000 with three
// threads) must still set the scale, and the result must equal the one-thread result byte for byte.
TEST(QuantMath, ThreadedSplitsGiveTheOneThreadResult) {
  const int64_t rows = 1000, cols = 37;
  auto w = random_weights(rows * cols, 7, 1.f);
  for (auto& v : w) v = std::max(-0.1f, std::min(0.1f, v));
  w[333 * cols + 5] = 3.f;
  w[334 * cols + 5] = -3.f;
  for (int limit : {0, 128}) {
    for (int axis : {-1, 1}) {
      WeightSpec one;
      one.pair_sum_limit = limit;
      one.axis = axis;
      one.threads = 1;
      WeightSpec three = one;
      three.threads = 3;
      three.grain = rows * cols / 3;  // three parts: rows [0, 334), [334, 668), [668, 1000)
      auto a = quantize_tensor(w.data(), {rows, cols}, one);
      auto b = quantize_tensor(w.data(), {rows, cols}, three);
      EXPECT_EQ(a.scales, b.scales) << "limit " << limit << " axis " << axis;
      EXPECT_EQ(a.data, b.data) << "limit " << limit << " axis " << axis;
      const float col5 = a.scales[axis < 0 ? 0 : 5];
      EXPECT_FLOAT_EQ(col5, limit ? 6.f / 128 : 3.f / 127) << "limit " << limit << " axis " << axis;
    }
  }
}

// The quantizer's two passes: scales and zero points alone (no values written), then the values into a buffer of
// its own. Each gives what quantize_tensor gives, per tensor, per column, per row (axis 0), with and without the
// pair limit, and the values pass writes exactly the tensor's bytes.
TEST(QuantMath, ScalesAloneAndValuesIntoABufferMatchTheWholeResult) {
  const int64_t rows = 40, cols = 23;
  auto w = random_weights(rows * cols, 11, 2.f);
  for (int limit : {0, 128})
    for (int axis : {-1, 0, 1}) {
      if (limit && axis == 0) continue;  // the pair limit is per tensor or per column
      WeightSpec spec;
      spec.pair_sum_limit = limit;
      spec.axis = axis;
      spec.symmetric = true;
      const QuantizedTensor whole = quantize_tensor(w.data(), {rows, cols}, spec);
      const QuantizedTensor scales = quantize_tensor_into(w.data(), {rows, cols}, spec, nullptr);
      EXPECT_EQ(scales.scales, whole.scales) << "limit " << limit << " axis " << axis;
      EXPECT_EQ(scales.zero_points, whole.zero_points) << "limit " << limit << " axis " << axis;
      EXPECT_TRUE(scales.data.empty());
      std::vector<uint8_t> into(static_cast<size_t>(rows * cols) + 1, 0xAB);
      const QuantizedTensor values = quantize_tensor_into(w.data(), {rows, cols}, spec, into.data());
      EXPECT_EQ(values.scales, whole.scales);
      EXPECT_TRUE(values.data.empty());
      EXPECT_EQ(std::vector<uint8_t>(into.begin(), into.end() - 1), whole.data) << "limit " << limit << " axis " << axis;
      EXPECT_EQ(into.back(), 0xAB) << "wrote past the end";
    }
}
}  // namespace
}  // namespace hf2onnx::quant
