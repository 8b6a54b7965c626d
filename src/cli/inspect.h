// `hf2onnx inspect PATH`: a checkpoint folder or an .onnx file, summarised on stdout.
#pragma once
#include <filesystem>

namespace hf2onnx {

void inspect_path(const std::filesystem::path& path);

}  // namespace hf2onnx
