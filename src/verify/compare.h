// Numeric comparisons of two runs of a graph (float32 outputs of the same shape).
#pragma once
#include "common/npy.h"

namespace hf2onnx {

double max_abs_diff(const NpyArray& a, const NpyArray& b);  // INFINITY on a shape mismatch or a NaN
double cosine(const NpyArray& a, const NpyArray& b);        // -2 on a shape mismatch
// Fraction of positions (all dims but the last) where both arrays have their largest value at the
// same index of the last dim: for logits, the share of tokens / labels predicted alike. -1 on a mismatch.
double argmax_agreement(const NpyArray& a, const NpyArray& b);

}  // namespace hf2onnx
