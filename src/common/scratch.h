// Reusable per-thread float buffers for weights converted or transposed just before they are written. A
// fresh allocation per weight costs a page fault (and the kernel zeroing a page) for every 4 KB written;
// reusing one buffer per thread costs them once, for the largest weight.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

namespace hf2onnx {

// A buffer of at least n floats, valid on this thread until the next call with the same slot. Slots let one
// caller hold two buffers at once (a converted tensor and its transpose).
float* scratch_floats(size_t n, int slot = 0);

// n read-only zero floats that take no memory: an anonymous mapping that is never written, so every page
// read is the kernel's shared zero page (the views the tracer multiplies by).
std::shared_ptr<const float> zero_floats(size_t n);

// dst[c * rows + r] = src[r * cols + c], in cache-sized tiles.
void transpose_floats(const float* src, int64_t rows, int64_t cols, float* dst);

}  // namespace hf2onnx
