// Validates a model before it is written: onnx::checker and strict shape inference, run on a copy in
// which the (not yet materialised) initializers are declared by type and shape only.
#pragma once
#include <vector>

#include <onnx/onnx_pb.h>

#include "onnx/writer.h"

namespace hf2onnx {

void check_model(const onnx::ModelProto& model, const std::vector<Initializer>& initializers);

}  // namespace hf2onnx
