// Reusable per-thread float buffers for weights converted or transposed just before they are written. A
// fresh allocation per weight costs a page fault (and the kernel zeroing a page) for every 4 KB written;
// reusing one buffer per thread costs them once, for the largest weight, in 2 MB pages where the kernel
// allows.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

namespace hf2onnx {

// What a thread's scratch buffer holds; each slot is a buffer of its own, so a caller can hold several at once.
enum class Scratch {
  Weight,     // a weight being produced for the writer (transposed, converted)
  Converted,  // the quantizer's float32 copy of a 16-bit weight
  Strip,      // transpose_strips' rows in float32
  RawStrip,   // read_as_float32's rows as the file stores them
  Count,      // count_non_finite's chunk read from a file
  Quantized,  // the quantizer's int8 / uint8 values of a weight being written (the last: scratch.cpp counts on it)
};
// A buffer of at least `bytes` bytes (2 MB-aligned), valid on this thread until the next call with the same slot.
uint8_t* scratch_bytes(size_t bytes, Scratch slot);
// The same, counted in floats.
float* scratch_floats(size_t n, Scratch slot = Scratch::Weight);
// Gives this thread's buffers back (the next scratch_floats maps a new one).
void release_scratch();

// n read-only zero floats that take no memory: an anonymous mapping that is never written, so every page
// read is the kernel's shared zero page (the views the tracer multiplies by).
std::shared_ptr<const float> zero_floats(size_t n);
// Whether [p, p + bytes) lies inside a live zero_floats mapping (every value there is 0).
bool is_zero_floats(const void* p, size_t bytes);

// dst[c * rows + r] = src[r * cols + c], in cache-sized tiles. A source inside a file mapping is read from the
// file a strip of rows at a time (no page faults, nothing of it left resident). With `non_finite`, adds the
// number of NaN and infinite values to it (counted on each strip while it is in cache).
void transpose_floats(const float* src, int64_t rows, int64_t cols, float* dst, uint64_t* non_finite = nullptr);

// The same for a matrix delivered a strip of rows at a time: strip(r0, n, buffer) returns rows [r0, r0 + n)
// as n * cols floats, in `buffer` (room for n * cols) or elsewhere (e.g. converted from bfloat16).
using StripFn = std::function<const float*(int64_t r0, int64_t n, float* buffer)>;
constexpr int64_t kStripRows = 64;  // the most rows transpose_strips asks for at once
void transpose_strips(int64_t rows, int64_t cols, float* dst, const StripFn& strip, uint64_t* non_finite = nullptr);

// How many of the n numbers at p are NaN or infinite (read from the file when p lies in a file mapping).
enum class FloatFormat { Float32, Float16, BFloat16 };
uint64_t count_non_finite(const void* p, uint64_t n, FloatFormat format = FloatFormat::Float32);
// The same for float32 values in memory (no lookup of a file mapping).
uint64_t count_non_finite_floats(const float* p, uint64_t n);

}  // namespace hf2onnx
