// Strict state-dict loading: every parameter of the module tree must be in the checkpoint with the
// same shape, and every checkpoint key must be used (or expected-unused by the model's LoadRules).
// Float32 tensors are used in place (no copy); other float types are converted to float32, or, with
// `defer_conversion`, left as shape-only placeholders listed in LoadSummary::deferred, for the exporter to
// convert one tensor at a time while it writes (a bf16 7B checkpoint is never float32 in memory at once).
#pragma once
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "hf/checkpoint.h"
#include "models/model.h"

namespace hf2onnx {

struct LoadSummary {
  size_t parameters = 0;
  uint64_t bytes = 0;                 // float32 bytes of the loaded parameters
  std::vector<std::string> unused;    // checkpoint keys not used (only when not strict)
  std::map<std::string, std::string> checkpoint_keys;  // parameter name → the checkpoint key it was read from
  // With defer_conversion: checkpoint key → its (non-float32) tensor, whose parameter is a placeholder.
  std::map<std::string, const hf::TensorData*> deferred;
};

// `strict_unused`: an unused key is an error (true when exporting the checkpoint's own architecture).
LoadSummary load_weights(torch::nn::Module& module, const hf::Checkpoint& checkpoint, const LoadRules& rules,
                         bool strict_unused, const std::string& where, bool defer_conversion = false);

// A float32 torch tensor for a checkpoint tensor: a view into the mapping when already float32.
torch::Tensor to_float_tensor(const hf::TensorData& t);

}  // namespace hf2onnx
