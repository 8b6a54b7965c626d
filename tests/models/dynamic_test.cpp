// models/layers/dynamic.h helpers at shapes other than the trace shapes, against explicit expectations.
#include <gtest/gtest.h>

#include "models/layers/dynamic.h"

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

}  // namespace
}  // namespace hf2onnx::layers
