// Validates a model before it is written: onnx::checker and strict shape inference, run on a copy in
// which the (not yet materialised) initializers are declared by type and shape only. A model at an opset newer
// than kMaxCheckedOpset (what the onnx library here knows) is not checked here: its check is ONNX Runtime's (the
// verify stage, the INT8 comparison); model_is_checkable says which.
#pragma once
#include <vector>

#include <onnx/onnx_pb.h>

#include "onnx/writer.h"

namespace hf2onnx {

void check_model(const onnx::ModelProto& model, const std::vector<Initializer>& initializers);
bool model_is_checkable(const onnx::ModelProto& model);

}  // namespace hf2onnx
