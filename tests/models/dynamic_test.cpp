// models/layers/dynamic.h helpers at shapes other than the trace shapes, against explicit expectations.
#include <gtest/gtest.h>

#include <cmath>

#include "common/test_util.h"
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

// diffusers' Upsample2D: F.interpolate(x, scale_factor=2.0, mode="nearest"), or size=upsample_size (the skip
// connection's size) when the latent is not a multiple of 2^levels; the skip is then ceil(2H / 2) = H' with
// H' ∈ {2H - 1, 2H}. Both against torch's own nearest interpolation.
TEST(Dynamic, NearestUpsamplingMatchesInterpolate) {
  namespace F = torch::nn::functional;
  for (auto [h, w] : {std::pair<int64_t, int64_t>{1, 1}, {3, 5}, {4, 4}, {6, 7}}) {
    auto x = torch::randn({2, 3, h, w});
    auto twice = F::interpolate(x, F::InterpolateFuncOptions().scale_factor(std::vector<double>{2.0, 2.0}).mode(torch::kNearest));
    EXPECT_TRUE(torch::equal(upsample_nearest2x(x), twice)) << h << "x" << w;
    for (int64_t dh : {0, 1})
      for (int64_t dw : {0, 1}) {
        const int64_t th = 2 * h - dh, tw = 2 * w - dw;
        auto like = torch::zeros({1, 5, th, tw});
        auto want = F::interpolate(x, F::InterpolateFuncOptions().size(std::vector<int64_t>{th, tw}).mode(torch::kNearest));
        EXPECT_TRUE(torch::equal(upsample_nearest_to(x, like), want)) << h << "x" << w << " → " << th << "x" << tw;
      }
  }
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

TEST(DecoderMasks, SlidingWindowWithPastAndPadding) {
  // Mistral (4.44): on cache indices, query i sees keys j with i - window < j <= i, padding excluded. A past of
  // 3 (row 2 left-padded by 1) and 2 new tokens, window 3: the new tokens are cache indices 3 and 4.
  auto ids = torch::zeros({2, 2}, torch::kLong);
  auto mask = torch::tensor({1, 1, 1, 1, 1, 0, 1, 1, 1, 1}, torch::kLong).reshape({2, 5});
  auto v = decoder_visible(ids, mask, 3);
  EXPECT_EQ(v.sizes(), (std::vector<int64_t>{2, 1, 2, 5}));
  EXPECT_TRUE(torch::equal(v, bools({0, 1, 1, 1, 0, 0, 0, 1, 1, 1,    // row 1: i=3 sees 1..3, i=4 sees 2..4
                                     0, 1, 1, 1, 0, 0, 0, 1, 1, 1},   // row 2: index 0 is padding, out anyway
                                    {2, 1, 2, 5}))) << v;
  // A window wider than the sequence is plain causal attention.
  EXPECT_TRUE(torch::equal(decoder_visible(ids, mask, 8), decoder_visible(ids, mask)));
  // A padded query whose window holds only padding sees nothing (the attention then averages all values).
  auto lone = torch::tensor({0, 0, 0, 1}, torch::kLong).reshape({1, 4});
  auto w = decoder_visible(torch::zeros({1, 4}, torch::kLong), lone, 2);
  EXPECT_FALSE(w[0][0][1].any().item<bool>());
  EXPECT_TRUE(w[0][0][3][3].item<bool>());
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

// rope_scaling llama3 (4.44): the frequencies transformers 4.44.2 computed for the llama3 fixture (its
// manifest's notes): theta 500000, head_dim 8, factor 8, low/high_freq_factor 1/4, original 16.
TEST(Rotary, Llama3FrequenciesMatchTransformers) {
  auto raw = hf::Config::parse(R"({"rope_theta": 500000.0, "max_position_embeddings": 64, "rope_scaling":
      {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
       "original_max_position_embeddings": 16}})", "cfg");
  RotaryEmbedding rope(RotaryConfig::from(raw, 8));
  const double want[] = {0.576056, 0.00470075, 0.000176777, 6.64787e-06};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(rope.inv_freq[i].item<float>() / want[i], 1.0, 1e-5) << i;
  // The same at every length: cos follows position × frequency.
  auto [cos, sin] = rope.cos_sin(torch::tensor({{0, 40}}, torch::kLong), torch::ones({1, 41}, torch::kLong));
  EXPECT_NEAR(cos[0][0][1][1].item<float>(), std::cos(40 * rope.inv_freq[1].item<float>()), 1e-6);
  // "type" is read when "rope_type" is absent; unknown types are refused naming the key.
  auto typed = hf::Config::parse(R"({"rope_scaling": {"type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
      "high_freq_factor": 4.0, "original_max_position_embeddings": 16}})", "cfg");
  EXPECT_EQ(RotaryConfig::from(typed, 8).scaling, RotaryConfig::Scaling::Llama3);
  auto yarn = hf::Config::parse(R"({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}})", "cfg");
  EXPECT_NE(test::error_of([&] { RotaryConfig::from(yarn, 8); }).find("rope_scaling"), std::string::npos);
}

// Phi-3's longrope (4.44): short factors while max(position_ids) + 1 <= original_max_position_embeddings,
// long ones past it (for the whole batch), cos and sin times sqrt(1 + ln(max/original) / ln(original)).
TEST(Rotary, LongRopeChoosesFactorsPerCall) {
  const std::string config = R"({"rope_theta": 500.0, "max_position_embeddings": 32,
      "original_max_position_embeddings": 8, "rope_scaling": {"type": "TYPE",
      "short_factor": [1.0, 1.5, 2.0, 4.0], "long_factor": [2.0, 3.0, 5.0, 9.0]}})";
  for (const std::string type : {"longrope", "su", "yarn"}) {  // Phi3Config rewrites su and yarn to longrope
    std::string text = config;
    text.replace(text.find("TYPE"), 4, type);
    RotaryEmbedding rope(RotaryConfig::from(hf::Config::parse(text, "cfg"), 8, 4096, /*phi3=*/true));
    const double factor = std::sqrt(1.0 + std::log(4.0) / std::log(8.0));
    const double shorts[] = {1.0, 1.5, 2.0, 4.0}, longs[] = {2.0, 3.0, 5.0, 9.0};
    // Largest position 7 (length 8 = original): short; largest 8 in another row: long for every row.
    for (const auto& [rows, ext] : {std::pair{torch::tensor({{5, 6, 7}, {0, 1, 2}}, torch::kLong), shorts},
                                    std::pair{torch::tensor({{5, 6, 7}, {6, 7, 8}}, torch::kLong), longs}}) {
      auto [cos, sin] = rope.cos_sin(rows, torch::ones({2, 9}, torch::kLong));
      for (int b = 0; b < 2; ++b)
        for (int s = 0; s < 3; ++s)
          for (int i = 0; i < 8; ++i) {
            const double p = static_cast<double>(rows[b][s].item<int64_t>());
            const double angle = p / (ext[i % 4] * std::pow(500.0, 2.0 * (i % 4) / 8));
            EXPECT_NEAR(cos[b][0][s][i].item<float>(), std::cos(angle) * factor, 3e-6) << type << " " << p;
            EXPECT_NEAR(sin[b][0][s][i].item<float>(), std::sin(angle) * factor, 3e-6) << type << " " << p;
          }
    }
  }
  // longrope is Phi-3's: a Llama config naming it is refused.
  auto llama = hf::Config::parse(R"({"rope_scaling": {"rope_type": "longrope", "short_factor": [1], "long_factor": [1]}})", "cfg");
  EXPECT_NE(test::error_of([&] { RotaryConfig::from(llama, 8); }).find("longrope"), std::string::npos);
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
