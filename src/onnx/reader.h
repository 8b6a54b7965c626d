// Reads an ONNX file without copying its weights: the protobuf wire format is walked over a memory
// map, the graph is parsed without its initializers, and each initializer keeps a view of its bytes
// (raw_data in the file or in its external data file). Used by the quantizer, which must work on any
// ONNX model, of any size.
#pragma once
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "onnx/writer.h"

namespace hf2onnx {

struct LazyTensor {
  onnx::TensorProto header;  // everything but the bulk bytes (typed data fields of small tensors stay here)
  const uint8_t* data = nullptr;  // raw bytes when stored as raw_data / external data
  uint64_t size = 0;
  std::shared_ptr<const void> keep;  // the mapping or buffer behind `data`
  // When set, the bytes are made when asked for (a pass's output computed at write time, so that a model's
  // new weights are never all in memory at once); `header` then holds name, type and dims.
  std::function<TensorBytes()> produce;

  const std::string& name() const { return header.name(); }
  std::vector<int64_t> dims() const { return {header.dims().begin(), header.dims().end()}; }
  int64_t numel() const;
  // The tensor's bytes in raw (little-endian) layout, whichever field holds them.
  TensorBytes bytes() const;
  std::vector<float> floats() const;  // FLOAT tensors only
  Initializer as_initializer() const;
  // A tensor owning its bytes (for initializers a pass creates).
  static LazyTensor owned(const std::string& name, int32_t data_type, std::vector<int64_t> dims,
                          std::shared_ptr<std::vector<uint8_t>> bytes);
};

struct LazyModel {
  onnx::ModelProto model;  // graph without initializers
  std::vector<LazyTensor> initializers;
};

// Throws an Error naming the file when it is not a readable ONNX model.
LazyModel read_onnx_lazy(const std::filesystem::path& path);

// The .onnx files of an export folder in either layout, sorted: those of DIR/onnx/ that `keep` accepts (by
// file name) when there are any, else those of DIR. Empty when neither holds one.
std::vector<std::filesystem::path> export_onnx_files(const std::filesystem::path& dir,
                                                     const std::function<bool(const std::string&)>& keep);

}  // namespace hf2onnx
