#include "common/scratch.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include <immintrin.h>
#include <sys/mman.h>

#include "common/mapped_file.h"
#include "hf2onnx/error.h"

namespace hf2onnx {

namespace {

// An anonymous mapping asked to be backed by 2 MB pages: a weight-sized buffer then costs one page fault
// per 2 MB on first use instead of one per 4 KB (and no zero-filling by the C++ library).
class HugeBuffer {
 public:
  HugeBuffer() = default;
  HugeBuffer(const HugeBuffer&) = delete;
  HugeBuffer& operator=(const HugeBuffer&) = delete;
  ~HugeBuffer() { release(); }
  void* get(size_t bytes) {
    if (bytes <= bytes_) return p_;
    release();
    constexpr size_t kHuge = 2 << 20;
    const size_t size = (bytes + kHuge - 1) / kHuge * kHuge;
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw Error("cannot allocate " + std::to_string(size) + " bytes: " + std::strerror(errno));
    madvise(p, size, MADV_HUGEPAGE);  // advice only: kernels without it still work
    p_ = p;
    bytes_ = size;
    return p_;
  }

  void release() {
    if (p_) munmap(p_, bytes_);
    p_ = nullptr;
    bytes_ = 0;
  }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

constexpr int kSlots = static_cast<int>(Scratch::Quantized) + 1;  // the last of Scratch
thread_local HugeBuffer scratch_buffers[kSlots];                  // scratch_floats' slots, by Scratch

}  // namespace

uint8_t* scratch_bytes(size_t bytes, Scratch slot) {
  return static_cast<uint8_t*>(scratch_buffers[static_cast<int>(slot)].get(std::max<size_t>(bytes, 1)));
}

float* scratch_floats(size_t n, Scratch slot) { return reinterpret_cast<float*>(scratch_bytes(n * sizeof(float), slot)); }

void release_scratch() {
  for (auto& b : scratch_buffers) b.release();
}

namespace {
std::mutex zero_mutex;
std::map<uintptr_t, uintptr_t> zero_regions;  // start → end of each live zero_floats mapping
}  // namespace

std::shared_ptr<const float> zero_floats(size_t n) {
  const size_t bytes = std::max<size_t>(n, 1) * sizeof(float);
  void* p = mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw Error(std::string("cannot map ") + std::to_string(bytes) + " bytes: " + std::strerror(errno));
  madvise(p, bytes, MADV_HUGEPAGE);  // reads then map the kernel's huge zero page: one fault per 2 MB
  {
    std::lock_guard<std::mutex> lock(zero_mutex);
    zero_regions[reinterpret_cast<uintptr_t>(p)] = reinterpret_cast<uintptr_t>(p) + bytes;
  }
  return std::shared_ptr<const float>(static_cast<const float*>(p), [bytes](const float* q) {
    {
      std::lock_guard<std::mutex> lock(zero_mutex);
      zero_regions.erase(reinterpret_cast<uintptr_t>(q));
    }
    munmap(const_cast<float*>(q), bytes);
  });
}

bool is_zero_floats(const void* p, size_t bytes) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(zero_mutex);
  auto it = zero_regions.upper_bound(a);
  if (it == zero_regions.begin()) return false;
  --it;
  return a >= it->first && a + bytes <= it->second;
}

namespace {

// One 8x8 block: eight rows of src (stride ls) become the eight rows of `out`.
__attribute__((target("avx2"))) inline void transpose_block8(const float* s, int64_t ls, __m256 out[8]) {
  const __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + ls), r2 = _mm256_loadu_ps(s + 2 * ls),
               r3 = _mm256_loadu_ps(s + 3 * ls), r4 = _mm256_loadu_ps(s + 4 * ls), r5 = _mm256_loadu_ps(s + 5 * ls),
               r6 = _mm256_loadu_ps(s + 6 * ls), r7 = _mm256_loadu_ps(s + 7 * ls);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
               t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
               t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
               u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
               u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
               u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  out[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  out[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  out[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  out[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  out[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  out[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  out[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  out[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// dst[c * ld + r] = s[r * ls + c] for r in [0, nrows), c in [c0, c1), in 8x8 blocks (about twice the plain
// loop's speed), the edges element by element. With `stream`, sixteen rows at a time fill whole 64-byte lines of
// dst, written with non-temporal stores (d and ld * 4 must be multiples of 64): the destination is a weight-sized
// buffer the kernel copies out next, and plain stores first read every line of it from memory (a 46 MB weight
// took 2.3x as long; docs/benchmarks.md, "The 1.1B export, session 8").
__attribute__((target("avx2"))) void transpose_tile_avx2(const float* s, int64_t ls, float* d, int64_t ld, int64_t nrows,
                                                         int64_t c0, int64_t c1, bool stream) {
  int64_t r = 0;
  __m256 lo[8], hi[8];
  if (stream)
    for (; r + 16 <= nrows; r += 16) {
      int64_t c = c0;
      for (; c + 8 <= c1; c += 8) {
        transpose_block8(s + r * ls + c, ls, lo);
        transpose_block8(s + (r + 8) * ls + c, ls, hi);
        for (int k = 0; k < 8; ++k) {
          _mm256_stream_ps(d + (c + k) * ld + r, lo[k]);
          _mm256_stream_ps(d + (c + k) * ld + r + 8, hi[k]);
        }
      }
      for (; c < c1; ++c)
        for (int64_t k = r; k < r + 16; ++k) d[c * ld + k] = s[k * ls + c];
    }
  for (; r + 8 <= nrows; r += 8) {
    int64_t c = c0;
    for (; c + 8 <= c1; c += 8) {
      transpose_block8(s + r * ls + c, ls, lo);
      for (int k = 0; k < 8; ++k) _mm256_storeu_ps(d + (c + k) * ld + r, lo[k]);
    }
    for (; c < c1; ++c)
      for (int64_t k = r; k < r + 8; ++k) d[c * ld + k] = s[k * ls + c];
  }
  for (; r < nrows; ++r)
    for (int64_t c = c0; c < c1; ++c) d[c * ld + r] = s[r * ls + c];
}

bool has_avx2() {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return avx2;
}

void transpose_tile(const float* s, int64_t ls, float* d, int64_t ld, int64_t nrows, int64_t c0, int64_t c1) {
  if (has_avx2()) {
    const bool stream = ld % 16 == 0 && reinterpret_cast<uintptr_t>(d) % 64 == 0;
    return transpose_tile_avx2(s, ls, d, ld, nrows, c0, c1, stream);
  }
  for (int64_t r = 0; r < nrows; ++r)
    for (int64_t c = c0; c < c1; ++c) d[c * ld + r] = s[r * ls + c];
}

}  // namespace

void transpose_strips(int64_t rows, int64_t cols, float* dst, const StripFn& strip, uint64_t* non_finite) {
  constexpr int64_t kTile = 64;
  float* buffer = scratch_floats(static_cast<size_t>(std::min(rows, kStripRows) * cols), Scratch::Strip);
  for (int64_t r0 = 0; r0 < rows; r0 += kStripRows) {
    const int64_t n = std::min(rows - r0, kStripRows);
    const float* s = strip(r0, n, buffer);
    if (non_finite) *non_finite += count_non_finite_floats(s, static_cast<uint64_t>(n * cols));  // while the strip is in cache
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) transpose_tile(s, cols, dst + r0, rows, n, c0, std::min(cols, c0 + kTile));
  }
  _mm_sfence();  // the streamed stores are visible before the buffer is handed on (to the kernel, another thread)
}

void transpose_floats(const float* src, int64_t rows, int64_t cols, float* dst, uint64_t* non_finite) {
  const bool mapped = MappedFile::file_range(src, static_cast<uint64_t>(rows * cols) * sizeof(float)).has_value();
  transpose_strips(
      rows, cols, dst,
      [&](int64_t r0, int64_t n, float* buffer) -> const float* {
        if (!mapped) return src + r0 * cols;
        MappedFile::read(src + r0 * cols, static_cast<uint64_t>(n * cols) * sizeof(float), buffer);
        return buffer;
      },
      non_finite);
}

namespace {
// How many of bits[0, k) have every exponent bit set; eight or sixteen numbers per AVX2 compare.
template <typename Bits>
__attribute__((target("avx2"))) uint64_t count_exponent_avx2(const Bits* bits, uint64_t k, Bits exponent) {
  constexpr uint64_t kLanes = 32 / sizeof(Bits);
  const __m256i mask = sizeof(Bits) == 4 ? _mm256_set1_epi32(static_cast<int>(exponent))
                                         : _mm256_set1_epi16(static_cast<short>(exponent));
  uint64_t bad = 0, j = 0;
  for (; j + kLanes <= k; j += kLanes) {
    const __m256i v = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bits + j)), mask);
    const __m256i eq = sizeof(Bits) == 4 ? _mm256_cmpeq_epi32(v, mask) : _mm256_cmpeq_epi16(v, mask);
    bad += static_cast<uint64_t>(__builtin_popcount(static_cast<unsigned>(_mm256_movemask_epi8(eq)))) / sizeof(Bits);
  }
  for (; j < k; ++j) bad += (bits[j] & exponent) == exponent;
  return bad;
}

template <typename Bits>
uint64_t count_in_memory(const Bits* bits, uint64_t k, Bits exponent) {
  if (has_avx2()) return count_exponent_avx2(bits, k, exponent);
  uint64_t bad = 0;
  for (uint64_t j = 0; j < k; ++j) bad += (bits[j] & exponent) == exponent;
  return bad;
}

template <typename Bits>
uint64_t count_with_mask(const void* p, uint64_t n, Bits exponent) {
  constexpr uint64_t kChunk = (1 << 20) / sizeof(Bits);  // 1 MB at a time when read from a file
  const bool mapped = MappedFile::file_range(p, n * sizeof(Bits)).has_value();
  Bits* buffer = mapped ? reinterpret_cast<Bits*>(scratch_bytes(kChunk * sizeof(Bits), Scratch::Count)) : nullptr;
  uint64_t bad = 0;
  for (uint64_t i = 0; i < n; i += kChunk) {
    const uint64_t k = std::min(n - i, kChunk);
    const Bits* bits = static_cast<const Bits*>(p) + i;
    if (mapped) {
      MappedFile::read(bits, k * sizeof(Bits), buffer);
      bits = buffer;
    }
    bad += count_in_memory(bits, k, exponent);
  }
  return bad;
}
}  // namespace

uint64_t count_non_finite_floats(const float* p, uint64_t n) {
  return count_in_memory(reinterpret_cast<const uint32_t*>(p), n, 0x7f800000u);
}

uint64_t count_non_finite(const void* p, uint64_t n, FloatFormat format) {
  switch (format) {
    case FloatFormat::Float32: return count_with_mask<uint32_t>(p, n, 0x7f800000u);
    case FloatFormat::Float16: return count_with_mask<uint16_t>(p, n, 0x7c00u);
    case FloatFormat::BFloat16: return count_with_mask<uint16_t>(p, n, 0x7f80u);
  }
  return 0;
}

}  // namespace hf2onnx
