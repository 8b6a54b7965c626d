// How the checkpoint's weights become the lowered graph's initializers (docs/pipeline.md "How weights reach
// the file"). No libtorch here.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "hf/tensor_data.h"
#include "onnx/writer.h"

namespace hf2onnx {

// Checkpoint tensors not stored in float32, by key (LoadSummary::deferred): written from the checkpoint when
// the file is written.
using DeferredWeights = std::map<std::string, const hf::TensorData*>;

enum class WeightDtype {
  Float32,  // every weight float32 in the file (Optimum's default)
  Stored,   // bfloat16 / float16 weights kept so (export --keep-weight-dtype)
};

// Gives each deferred initializer its bytes. Float32: converted as each is written, into [in, out] for the
// Linear weights in `transposed`. Stored: a bfloat16 / float16 weight is written as the checkpoint stores it
// (file to file, its [out, in] layout kept) and the graph reads it through Cast(to=float), plus a Transpose
// where it was to be [in, out]: the computation stays float32, ONNX Runtime folds the casts when it loads
// the model, and the quantizer looks through them. float64 weights are converted either way.
// Returns how many weights were kept in 16 bits.
size_t store_weights(onnx::GraphProto& graph, std::vector<Initializer>& initializers,
                     const std::set<std::string>& transposed, const DeferredWeights& deferred, WeightDtype dtype);

}  // namespace hf2onnx
