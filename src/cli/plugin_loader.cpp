#include <dlfcn.h>
#include <filesystem>
#include <unistd.h>

#include "cli/plugin.h"
#include "hf2onnx/error.h"

namespace hf2onnx {

const ExportPlugin& export_plugin() {
  static const ExportPlugin* plugin = [] {
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) throw Error("cannot locate the hf2onnx executable: " + ec.message());
    const auto path = exe.parent_path() / "libhf2onnx_export.so";
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) throw Error(path.string() + ": cannot load the export plugin: " + dlerror());
    auto entry = reinterpret_cast<const ExportPlugin* (*)()>(dlsym(handle, "hf2onnx_export_plugin"));
    if (!entry) throw Error(path.string() + ": not an hf2onnx export plugin");
    return entry();
  }();
  return *plugin;
}

}  // namespace hf2onnx
