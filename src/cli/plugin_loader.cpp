#include <dlfcn.h>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>

#include "cli/plugin.h"
#include "hf2onnx/error.h"

namespace hf2onnx {

namespace {
// OpenBLAS (libtorch's BLAS here) picks its kernels from the CPU model when it loads, and falls back to its
// generic SSE3 ("Prescott") kernels on a CPU it does not know, such as the virtual "Intel Xeon Processor" of
// our KVM machines: the traces' matmuls then run 2-3x slower (docs/benchmarks.md). OpenBLAS reads
// OPENBLAS_CORETYPE once, at load, which is the plugin's dlopen: name the kernels the CPU can run, from
// its instruction sets, unless the user chose already. Both kernel families are what OpenBLAS itself picks for
// CPUs with these instruction sets.
void choose_blas_kernels() {
  if (std::getenv("OPENBLAS_CORETYPE")) return;
  __builtin_cpu_init();
  const char* core = nullptr;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl"))
    core = "SkylakeX";
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    core = "Haswell";
  if (core) setenv("OPENBLAS_CORETYPE", core, 0);
}
}  // namespace

const ExportPlugin& export_plugin() {
  static const ExportPlugin* plugin = [] {
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) throw Error("cannot locate the hf2onnx executable: " + ec.message());
    const auto path = exe.parent_path() / "libhf2onnx_export.so";
    choose_blas_kernels();
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) throw Error(path.string() + ": cannot load the export plugin: " + dlerror());
    auto entry = reinterpret_cast<const ExportPlugin* (*)()>(dlsym(handle, "hf2onnx_export_plugin"));
    if (!entry) throw Error(path.string() + ": not an hf2onnx export plugin");
    return entry();
  }();
  return *plugin;
}

}  // namespace hf2onnx
