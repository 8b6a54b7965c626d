// Helpers for the tests that build models in-process (they link the libtorch stages).
#pragma once
#include <filesystem>
#include <memory>
#include <optional>

#include "hf/checkpoint.h"
#include "hf/config.h"
#include "models/model.h"
#include "models/registry.h"

namespace hf2onnx::test {

// The ExportModel of the folder's config.json, for `task` (default: its architecture's), asking `ck` which
// optional tensors exist.
inline std::shared_ptr<ExportModel> build_model(const std::filesystem::path& dir, const hf::Checkpoint& ck,
                                                std::optional<Task> task = std::nullopt) {
  auto config = hf::Config::load(dir / "config.json");
  const auto& arch = find_architecture(config.architecture(), "test");
  BuildContext ctx{config, task.value_or(arch.task), [&ck](const std::string& key) { return ck.has_tensor(key); }};
  return arch.build(ctx);
}

}  // namespace hf2onnx::test
