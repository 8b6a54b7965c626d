#include "common/scratch.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <sys/mman.h>

#include "hf2onnx/error.h"

namespace hf2onnx {

float* scratch_floats(size_t n, int slot) {
  thread_local std::vector<float> buffers[2];
  std::vector<float>& b = buffers[slot & 1];
  if (b.size() < n) b.resize(n);
  return b.data();
}

std::shared_ptr<const float> zero_floats(size_t n) {
  const size_t bytes = std::max<size_t>(n, 1) * sizeof(float);
  void* p = mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw Error(std::string("cannot map ") + std::to_string(bytes) + " bytes: " + std::strerror(errno));
  return std::shared_ptr<const float>(static_cast<const float*>(p), [bytes](const float* q) {
    munmap(const_cast<float*>(q), bytes);
  });
}

void transpose_floats(const float* src, int64_t rows, int64_t cols, float* dst) {
  constexpr int64_t kTile = 64;
  for (int64_t r0 = 0; r0 < rows; r0 += kTile)
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
      const int64_t r1 = std::min(rows, r0 + kTile), c1 = std::min(cols, c0 + kTile);
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) dst[c * rows + r] = src[r * cols + c];
    }
}

}  // namespace hf2onnx
