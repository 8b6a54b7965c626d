// Lowers a traced aten graph to an ONNX model through the versioned lowering table.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "onnx/writer.h"
#include "export/trace.h"

namespace hf2onnx {

struct GraphIO {
  std::string name;
  std::vector<std::string> dims;  // dynamic dim names; "" where the dim is static
};

struct LoweredModel {
  onnx::ModelProto model;  // without the initializers' bytes
  std::vector<Initializer> initializers;
  std::set<std::string> transposed;  // initializers holding the transpose of their checkpoint tensor
};

struct LowerOptions {
  int opset = 17;
  std::vector<GraphIO> inputs, outputs;
  std::string doc_string;
  std::map<std::string, std::string> metadata;
};

LoweredModel lower_to_onnx(const TracedGraph& traced, const LowerOptions& options);

}  // namespace hf2onnx
