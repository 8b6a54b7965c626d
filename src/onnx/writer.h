// Writes an ONNX model whose weights are streamed from their source (usually the checkpoint's memory
// map) straight into the file: the protobuf is assembled on the fly, so no second copy of the weights
// is ever held in memory. Weights go to `<name>_data` beside the file when the model exceeds the 2 GB
// protobuf limit (or when forced).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <onnx/onnx_pb.h>

namespace hf2onnx {

struct TensorBytes {
  TensorBytes() = default;
  TensorBytes(const void* d, uint64_t n, std::shared_ptr<const void> k = nullptr,
              std::optional<uint64_t> nan_or_inf = std::nullopt)
      : data(d), size(n), keep(std::move(k)), non_finite(nan_or_inf) {}

  const void* data = nullptr;
  uint64_t size = 0;
  std::shared_ptr<const void> keep;  // holds whatever owns `data` until the bytes are written
  // How many of the values are NaN or infinite, when the producer counted them on the way (a transpose or a
  // conversion sees every value while it is in cache); otherwise the writer's caller counts them.
  std::optional<uint64_t> non_finite;
};

// An initializer whose bytes are produced when written (e.g. a transposed copy made just in time).
struct Initializer {
  std::string name;
  int32_t data_type = onnx::TensorProto::FLOAT;
  std::vector<int64_t> dims;
  std::function<TensorBytes()> bytes;
  uint64_t nbytes() const;
};

uint64_t onnx_type_size(int32_t data_type);

enum class ExternalData { Auto, Always, Never };

struct WrittenFile {
  std::filesystem::path path;
  uint64_t bytes = 0;
};

// `model` holds everything but the (large) initializers, which are appended to its graph.
// The external data file, if any, is named `<file name>_data` in the same folder.
std::vector<WrittenFile> write_onnx(const onnx::ModelProto& model, const std::vector<Initializer>& initializers,
                                    const std::filesystem::path& file, ExternalData external = ExternalData::Auto);

}  // namespace hf2onnx
