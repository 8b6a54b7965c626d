// Tier 1: the streaming writer and the buffers that feed it — transposes (from memory and from a file
// mapping), the non-finite count, and write_onnx round trips whose weights are produced on the writer's
// producer threads into reused buffers or copied file to file from a mapping.
#include <cmath>
#include <cstring>
#include <limits>
#include <tuple>

#include <gtest/gtest.h>

#include "common/mapped_file.h"
#include "common/scratch.h"
#include "common/test_util.h"
#include "hf/tensor_data.h"
#include "onnx/reader.h"
#include "onnx/writer.h"

namespace hf2onnx::test {
namespace {

std::vector<float> counting(size_t n, float start) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = start + static_cast<float>(i);
  return v;
}

// A file of floats, mapped (weights read the way the exporter reads a checkpoint).
std::shared_ptr<const MappedFile> mapped_floats(const fs::path& path, const std::vector<float>& v) {
  write_file(path, std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
  return MappedFile::open(path);
}

TEST(Transpose, MatchesTheDefinitionFromMemoryAndFromAFileMapping) {
  const fs::path dir = temp_dir("transpose");
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{1, 1}, {7, 9}, {8, 8}, {64, 65}, {130, 17}, {3, 200}, {129, 72}};
  for (const auto& [rows, cols] : shapes) {
    const std::vector<float> src = counting(static_cast<size_t>(rows * cols), 0.5f);
    std::vector<float> want(src.size());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) want[c * rows + r] = src[r * cols + c];
    std::vector<float> got(src.size(), -1.f);
    transpose_floats(src.data(), rows, cols, got.data());
    EXPECT_EQ(got, want) << rows << "x" << cols << " from memory";
    auto file = mapped_floats(dir / "m.bin", src);
    ASSERT_TRUE(MappedFile::file_range(file->data(), file->size()));
    std::fill(got.begin(), got.end(), -1.f);
    transpose_floats(reinterpret_cast<const float*>(file->data()), rows, cols, got.data());
    EXPECT_EQ(got, want) << rows << "x" << cols << " from a mapping";
  }
}

// Destinations whose rows are whole 64-byte lines take the streamed (non-temporal) stores 16 rows at a time;
// the same shapes one float off that alignment take the plain stores. Both give the definition, edges
// included (rows not a multiple of 16 or 8, columns not a multiple of 8, a last strip shorter than 64 rows),
// and the count of NaN and infinite values made on the way is exact.
TEST(Transpose, StreamedAndPlainStoresAndTheCountMadeOnTheWay) {
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{16, 8},  {64, 64},  {128, 72}, {144, 13},
                                                           {32, 5},  {80, 200}, {24, 17},  {2048, 24}};
  for (const auto& [rows, cols] : shapes)
    for (size_t shift : {size_t{0}, size_t{1}}) {
      std::vector<float> src = counting(static_cast<size_t>(rows * cols), -7.5f);
      src[0] = std::numeric_limits<float>::quiet_NaN();
      src[src.size() - 1] = -std::numeric_limits<float>::infinity();
      src[src.size() / 2] = std::numeric_limits<float>::infinity();
      std::vector<float> storage(src.size() + 32, -1.f);
      float* aligned = storage.data() + (64 - reinterpret_cast<uintptr_t>(storage.data()) % 64) % 64 / sizeof(float);
      float* dst = aligned + shift;
      uint64_t non_finite = 0;
      transpose_floats(src.data(), rows, cols, dst, &non_finite);
      EXPECT_EQ(non_finite, 3u) << rows << "x" << cols << " shift " << shift;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          const float want = src[static_cast<size_t>(r * cols + c)], got = dst[c * rows + r];
          ASSERT_TRUE(got == want || (std::isnan(got) && std::isnan(want)))
              << rows << "x" << cols << " shift " << shift << " at " << r << "," << c << ": " << got << " vs " << want;
        }
      EXPECT_EQ(dst[rows * cols], -1.f) << "wrote past the end";
      if (shift) {
        EXPECT_EQ(aligned[0], -1.f) << "wrote before the start";
      }
    }
}

TEST(NonFinite, CountsNaNAndInfinityAcrossChunks) {
  std::vector<float> v = counting(600000, -300000.f);
  v[3] = std::numeric_limits<float>::quiet_NaN();
  v[262144] = std::numeric_limits<float>::infinity();  // first element of the second chunk
  v[599999] = -std::numeric_limits<float>::infinity();
  v[10] = std::numeric_limits<float>::max();  // finite
  EXPECT_EQ(count_non_finite(v.data(), v.size()), 3u);
  auto file = mapped_floats(temp_dir("nonfinite") / "m.bin", v);
  EXPECT_EQ(count_non_finite(reinterpret_cast<const float*>(file->data()), v.size()), 3u);
  EXPECT_EQ(count_non_finite(v.data(), 3), 0u);
  EXPECT_EQ(count_non_finite(v.data(), 262151), 2u);  // a partial vector at the end
}

// float16 and bfloat16: the exponent field all ones is NaN or infinity, whatever the mantissa; from memory and
// from a mapping, across the 1 MB chunks.
TEST(NonFinite, CountsSixteenBitNaNAndInfinity) {
  for (const FloatFormat format : {FloatFormat::Float16, FloatFormat::BFloat16}) {
    const uint16_t exponent = format == FloatFormat::Float16 ? 0x7c00 : 0x7f80;
    std::vector<uint16_t> v(1200000, 0x3c00);  // 1.0 in float16; 0.0078125 in bfloat16
    v[1] = exponent;                       // +infinity
    v[524288] = exponent | 0x8001;         // a NaN, first element of the second chunk
    v[v.size() - 1] = exponent | 0x8000;   // -infinity
    v[7] = static_cast<uint16_t>(exponent - 1);  // the largest finite magnitude's neighbour: finite
    EXPECT_EQ(count_non_finite(v.data(), v.size(), format), 3u);
    const fs::path f = temp_dir("nonfinite16") / "m.bin";
    write_file(f, std::string(reinterpret_cast<const char*>(v.data()), v.size() * 2));
    auto file = MappedFile::open(f);
    EXPECT_EQ(count_non_finite(file->data(), v.size(), format), 3u);
    EXPECT_EQ(count_non_finite(v.data(), 1, format), 0u);
    EXPECT_EQ(count_non_finite(v.data(), 524295, format), 2u);  // a partial vector at the end
  }
}

// read_as_float32 of a bfloat16 matrix in a mapping: the exact values, as stored and transposed.
TEST(Transpose, SixteenBitMatricesReadAsFloat32FromAFileMapping) {
  const int64_t rows = 130, cols = 75;  // more than one 64-row strip, not a multiple of the tiles
  std::vector<uint16_t> v(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint16_t>(0x3f80 + (i % 300) * 3);  // 1.0 upwards
  const fs::path f = temp_dir("bf16_read") / "m.bin";
  write_file(f, std::string(reinterpret_cast<const char*>(v.data()), v.size() * 2));
  auto file = MappedFile::open(f);
  hf::TensorData t;
  t.dtype = hf::DType::BF16;
  t.shape = {rows, cols};
  t.strides = {cols, 1};
  t.data = file->data();
  std::vector<float> plain(v.size()), transposed(v.size());
  hf::read_as_float32(t, false, plain.data());
  hf::read_as_float32(t, true, transposed.data());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const float want = hf::bfloat16_to_float(v[static_cast<size_t>(r * cols + c)]);
      ASSERT_EQ(plain[static_cast<size_t>(r * cols + c)], want) << r << "," << c;
      ASSERT_EQ(transposed[static_cast<size_t>(c * rows + r)], want) << r << "," << c;
    }
}

// The NaN / infinity count read_as_float32 makes on the way, for bfloat16 and float16 rows in a mapping, as stored
// and transposed (more than one strip; values in the last strip too).
TEST(Transpose, SixteenBitReadsCountNonFiniteValuesOnTheWay) {
  const int64_t rows = 150, cols = 33;
  for (const auto& [dtype, nan, inf] : {std::tuple{hf::DType::BF16, uint16_t{0x7fc0}, uint16_t{0xff80}},
                                        std::tuple{hf::DType::F16, uint16_t{0x7e00}, uint16_t{0x7c00}}}) {
    std::vector<uint16_t> v(static_cast<size_t>(rows * cols), 0x3c00);  // 1.0 in float16, 1.875 in bfloat16
    v[5] = nan;
    v[static_cast<size_t>(70 * cols + 2)] = inf;
    v[v.size() - 1] = inf;
    const fs::path f = temp_dir("nonfinite16") / "m.bin";
    write_file(f, std::string(reinterpret_cast<const char*>(v.data()), v.size() * 2));
    auto file = MappedFile::open(f);
    hf::TensorData t;
    t.dtype = dtype;
    t.shape = {rows, cols};
    t.strides = {cols, 1};
    t.data = file->data();
    std::vector<float> out(v.size());
    for (bool transposed : {false, true}) {
      uint64_t non_finite = 0;
      hf::read_as_float32(t, transposed, out.data(), &non_finite);
      EXPECT_EQ(non_finite, 3u) << (dtype == hf::DType::BF16 ? "bf16" : "fp16") << (transposed ? " transposed" : "");
    }
  }
}

// Forty weights: every other one made into the producing thread's reused buffer (4 MB each, so that a
// weight overwritten by its thread's next one before it was written shows), the others of assorted sizes
// copied from a mapped file or owned.
TEST(Writer, StreamsEveryWeightIntactInlineAndAsExternalData) {
  const fs::path dir = temp_dir("writer");
  auto size_of = [](int i) { return i % 2 == 0 ? size_t{1} << 20 : static_cast<size_t>(17 + 997 * (i % 7) * (i % 5)); };
  std::vector<float> all;
  for (int i = 0; i < 40; ++i) {
    auto v = counting(size_of(i), static_cast<float>(i * 1000));
    all.insert(all.end(), v.begin(), v.end());
  }
  auto file = mapped_floats(dir / "weights.bin", all);
  const auto* mapped = reinterpret_cast<const float*>(file->data());

  std::vector<Initializer> inits;
  std::vector<std::vector<float>> expected;
  size_t offset = 0;
  for (int i = 0; i < 40; ++i) {
    const size_t n = size_of(i);
    expected.emplace_back(all.begin() + offset, all.begin() + offset + n);
    Initializer init;
    init.name = "w" + std::to_string(i);
    init.dims = {static_cast<int64_t>(n)};
    const float* src = mapped + offset;
    if (i % 2 == 0) {
      init.bytes = [src, n] {
        float* out = scratch_floats(n);
        std::memcpy(out, src, n * sizeof(float));
        return TensorBytes{out, n * sizeof(float), nullptr};
      };
    } else if (i % 4 == 1) {
      init.bytes = [src, n] { return TensorBytes{src, n * sizeof(float), nullptr}; };
    } else {
      auto owned = std::make_shared<std::vector<float>>(src, src + n);
      init.bytes = [owned] { return TensorBytes{owned->data(), owned->size() * sizeof(float), owned}; };
    }
    inits.push_back(std::move(init));
    offset += n;
  }
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.add_opset_import()->set_version(17);
  model.mutable_graph()->set_name("g");
  for (ExternalData external : {ExternalData::Never, ExternalData::Always}) {
    const fs::path path = dir / (external == ExternalData::Never ? "inline.onnx" : "external.onnx");
    const auto files = write_onnx(model, inits, path, external);
    ASSERT_EQ(files.size(), external == ExternalData::Never ? 1u : 2u);
    for (const auto& f : files) EXPECT_EQ(fs::file_size(f.path), f.bytes) << f.path;
    LazyModel back = read_onnx_lazy(path);
    ASSERT_EQ(back.initializers.size(), inits.size());
    for (size_t i = 0; i < inits.size(); ++i) {
      EXPECT_EQ(back.initializers[i].name(), inits[i].name);
      EXPECT_EQ(back.initializers[i].floats(), expected[i]) << inits[i].name << " in " << path.filename();
    }
  }
}

TEST(Writer, AProducersErrorReachesTheCaller) {
  std::vector<Initializer> inits(5);
  for (int i = 0; i < 5; ++i) {
    inits[i].name = "w" + std::to_string(i);
    inits[i].dims = {4};
    inits[i].bytes = [i]() -> TensorBytes {
      if (i == 3) throw Error("cannot make w3");
      static const float zeros[4] = {};
      return TensorBytes{zeros, sizeof zeros, nullptr};
    };
  }
  onnx::ModelProto model;
  model.mutable_graph()->set_name("g");
  EXPECT_EQ(error_of([&] { write_onnx(model, inits, temp_dir("writer_error") / "m.onnx"); }), "cannot make w3");
}

}  // namespace
}  // namespace hf2onnx::test
