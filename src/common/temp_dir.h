// A scratch folder removed (with everything in it) when the scope ends, whatever ends it.
#pragma once
#include <filesystem>
#include <system_error>

namespace hf2onnx {

struct RemovedOnExit {
  std::filesystem::path dir;
  RemovedOnExit(const RemovedOnExit&) = delete;
  RemovedOnExit& operator=(const RemovedOnExit&) = delete;
  ~RemovedOnExit() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

}  // namespace hf2onnx
