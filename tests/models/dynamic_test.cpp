// models/layers/dynamic.h helpers at shapes other than the trace shapes, against explicit expectations.
#include <gtest/gtest.h>

#include <cmath>

#include "hf/config.h"
#include "models/layers/dynamic.h"
#include "models/layers/rotary.h"
#include "hf2onnx/error.h"

namespace hf2onnx::layers {
namespace {

TEST(Dynamic, PositionsLikeCountsFromZero) {
  for (int64_t s : {1, 3, 17}) {
    auto p = positions_like(torch::zeros({2, s}, torch::kLong));
    EXPECT_TRUE(torch::equal(p, torch::arange(s).expand({2, s}))) << s;
  }
}

TEST(Dynamic, PositionsSkippingPaddingMatchRobertaRule) {
  // padding_idx 1: non-pad tokens get 2, 3, ...; pads keep 1 (create_position_ids_from_input_ids).
  auto ids = torch::tensor({5, 7, 9, 1, 1, 4, 1, 8, 1, 1}, torch::kLong).reshape({2, 5});
  auto p = positions_skipping_padding(ids, 1);
  auto want = torch::tensor({2, 3, 4, 1, 1, 2, 1, 3, 1, 1}, torch::kLong).reshape({2, 5});
  EXPECT_TRUE(torch::equal(p, want)) << p;
}

TEST(Dynamic, SplitAndMergeHeadsRoundTrip) {
  for (auto [b, s] : {std::pair<int64_t, int64_t>{1, 1}, {3, 7}}) {
    auto x = torch::randn({b, s, 12});
    auto h = split_heads(x, 3, 4);
    EXPECT_EQ(h.sizes(), (std::vector<int64_t>{b, 3, s, 4}));
    EXPECT_TRUE(torch::equal(h[0][1][0], x[0][0].slice(0, 4, 8)));
    EXPECT_TRUE(torch::equal(merge_heads(h), x));
  }
}

TEST(Dynamic, AdditivePaddingMask) {
  auto m = torch::tensor({1, 1, 0, 1, 0, 0}, torch::kLong).reshape({2, 3});
  auto a = additive_padding_mask(m);
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{2, 1, 1, 3}));
  const float lo = std::numeric_limits<float>::lowest();
  auto want = torch::tensor({0.f, 0.f, lo, 0.f, lo, lo}).reshape({2, 1, 1, 3});
  EXPECT_TRUE(torch::equal(a, want)) << a;
}

torch::Tensor bools(std::vector<int> v, std::vector<int64_t> shape) {
  return torch::tensor(std::vector<int64_t>(v.begin(), v.end()), torch::kLong).reshape(shape).to(torch::kBool);
}

TEST(DecoderMasks, QueryPositionsFollowThePastLength) {
  auto ids = torch::zeros({2, 3}, torch::kLong);
  auto mask = torch::ones({2, 5}, torch::kLong);  // past 2 + new 3
  EXPECT_TRUE(torch::equal(query_positions(ids, mask), torch::tensor({2, 3, 4, 2, 3, 4}, torch::kLong).reshape({2, 3})));
  EXPECT_TRUE(torch::equal(query_positions(ids, torch::ones({2, 3}, torch::kLong)), positions_like(ids)));  // no past
}

TEST(DecoderMasks, CausalWithPastAndPadding) {
  // 1 new token after a past of 2: it sees all three keys, except padding.
  auto ids = torch::zeros({2, 1}, torch::kLong);
  auto mask = torch::tensor({1, 1, 1, 0, 1, 1}, torch::kLong).reshape({2, 3});  // row 2: left padding
  auto v = decoder_visible(ids, mask);
  EXPECT_EQ(v.sizes(), (std::vector<int64_t>{2, 1, 1, 3}));
  EXPECT_TRUE(torch::equal(v, bools({1, 1, 1, 0, 1, 1}, {2, 1, 1, 3}))) << v;
  // A prompt of 3 with no past: lower triangular, padding columns removed.
  auto prompt = torch::zeros({1, 3}, torch::kLong);
  auto pmask = torch::tensor({0, 1, 1}, torch::kLong).reshape({1, 3});
  EXPECT_TRUE(torch::equal(causal_visible(prompt, pmask), bools({1, 0, 0, 1, 1, 0, 1, 1, 1}, {1, 1, 3, 3})));
  EXPECT_TRUE(torch::equal(decoder_visible(prompt, pmask), bools({0, 0, 0, 0, 1, 0, 0, 1, 1}, {1, 1, 3, 3})));
}

TEST(DecoderMasks, SlidingWindow) {
  auto ids = torch::zeros({1, 4}, torch::kLong);
  auto mask = torch::ones({1, 4}, torch::kLong);
  // window 2: token i sees i-1 and i.
  EXPECT_TRUE(torch::equal(decoder_visible(ids, mask, 2),
                           bools({1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1}, {1, 1, 4, 4})));
}

TEST(DecoderMasks, RepeatKv) {
  auto x = torch::arange(2 * 2 * 3 * 4, torch::kFloat).reshape({2, 2, 3, 4});
  auto r = repeat_kv(x, 3);
  EXPECT_EQ(r.sizes(), (std::vector<int64_t>{2, 6, 3, 4}));
  for (int h = 0; h < 6; ++h) EXPECT_TRUE(torch::equal(r.select(1, h), x.select(1, h / 3))) << h;
  EXPECT_TRUE(torch::equal(repeat_kv(x, 1), x));
}

// Expected cos for position p and rotary index i, computed independently in double.
double expected_cos(double p, int i, int dim, double base) {
  int j = i % (dim / 2);
  return std::cos(p / std::pow(base, 2.0 * j / dim));
}

RotaryConfig rotary_config(const std::string& scaling) {
  auto raw = hf::Config::parse(R"({"rope_theta": 500.0, "max_position_embeddings": 8)" + scaling + "}", "cfg");
  return RotaryConfig::from(raw, 8);
}

TEST(Rotary, PlainLinearAndDynamic) {
  auto positions = torch::tensor({0, 3, 7, 12, 5, 6}, torch::kLong).reshape({2, 3});
  auto short_mask = torch::ones({2, 6}, torch::kLong);   // total 6 ≤ max_position_embeddings 8
  auto long_mask = torch::ones({2, 13}, torch::kLong);   // total 13 > 8
  for (const auto& [name, scaling] : std::vector<std::pair<std::string, std::string>>{
           {"none", ""}, {"linear", R"(, "rope_scaling": {"type": "linear", "factor": 2.0})"},
           {"dynamic", R"(, "rope_scaling": {"type": "dynamic", "factor": 2.0})"}}) {
    RotaryEmbedding rope(rotary_config(scaling));
    for (const auto& mask : {short_mask, long_mask}) {
      auto [cos, sin] = rope.cos_sin(positions, mask);
      ASSERT_EQ(cos.sizes(), (std::vector<int64_t>{2, 1, 3, 8}));
      const double total = static_cast<double>(mask.size(1));
      double base = 500.0;
      if (name == "dynamic" && total > 8) base = 500.0 * std::pow(2.0 * total / 8 - 1.0, 8.0 / 6.0);
      for (int b = 0; b < 2; ++b)
        for (int s = 0; s < 3; ++s)
          for (int i = 0; i < 8; ++i) {
            double p = static_cast<double>(positions[b][s].item<int64_t>()) / (name == "linear" ? 2.0 : 1.0);
            EXPECT_NEAR(cos[b][0][s][i].item<float>(), expected_cos(p, i, 8, base), 2e-6) << name << " total " << total;
            EXPECT_NEAR(sin[b][0][s][i].item<float>(), std::sin(p / std::pow(base, 2.0 * (i % 4) / 8)), 2e-6);
          }
    }
  }
}

TEST(Rotary, UnknownScalingIsAnError) {
  EXPECT_THROW(rotary_config(R"(, "rope_scaling": {"type": "yarn", "factor": 2.0})"), Error);
  EXPECT_THROW(rotary_config(R"(, "rope_scaling": {"type": "linear"})"), Error);
}

TEST(Rotary, ApplyRotatesPairsOfHalves) {
  auto x = torch::tensor({1.f, 2.f, 3.f, 4.f}).reshape({1, 1, 1, 4});
  auto cos = torch::full({1, 1, 1, 4}, 0.5f), sin = torch::full({1, 1, 1, 4}, 2.f);
  // rotate_half([1, 2, 3, 4]) = [-3, -4, 1, 2]
  auto want = torch::tensor({0.5f - 6.f, 1.f - 8.f, 1.5f + 2.f, 2.f + 4.f}).reshape({1, 1, 1, 4});
  EXPECT_TRUE(torch::allclose(apply_rotary(x, cos, sin), want));
}

}  // namespace
}  // namespace hf2onnx::layers
