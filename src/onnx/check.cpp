#include "onnx/check.h"

#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include "hf2onnx/error.h"
#include "hf2onnx/export.h"  // kMaxCheckedOpset

namespace hf2onnx {

bool model_is_checkable(const onnx::ModelProto& model) {
  for (const auto& o : model.opset_import())
    if ((o.domain().empty() || o.domain() == "ai.onnx") && o.version() > kMaxCheckedOpset) return false;
  return true;
}

void check_model(const onnx::ModelProto& model, const std::vector<Initializer>& initializers) {
  if (!model_is_checkable(model)) return;
  onnx::ModelProto copy = model;
  auto* graph = copy.mutable_graph();
  for (const auto& init : initializers) {
    auto* vi = graph->add_input();
    vi->set_name(init.name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(init.data_type);
    auto* shape = tt->mutable_shape();
    for (int64_t d : init.dims) shape->add_dim()->set_dim_value(d);
  }
  try {
    onnx::checker::check_model(copy);
    onnx::ShapeInferenceOptions options{/*check_type=*/true, /*error_mode=*/1, /*enable_data_propagation=*/false};
    onnx::shape_inference::InferShapes(copy, onnx::OpSchemaRegistry::Instance(), options);
  } catch (const std::exception& e) {
    throw Error(std::string("the generated ONNX graph is invalid: ") + e.what());
  }
}

}  // namespace hf2onnx
