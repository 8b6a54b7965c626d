// `hf2onnx inspect PATH`: a checkpoint folder or an .onnx file, summarised on stdout.
#pragma once
#include <filesystem>
#include <functional>
#include <vector>

#include "models/registry.h"

namespace hf2onnx {

// `table` is asked for the architecture table only when PATH is a checkpoint folder.
void inspect_path(const std::filesystem::path& path, const std::function<const std::vector<ArchEntry>&()>& table);

}  // namespace hf2onnx
