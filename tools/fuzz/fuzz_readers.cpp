// libFuzzer target for the parsers of untrusted files: safetensors, torch zip / legacy pickle, the
// restricted unpickler, and the lazy ONNX reader. The first byte picks the parser; any failure other
// than an hf2onnx::Error (a crash, a sanitizer report, another exception) is a bug.
// Built and run by tools/fuzz/run.sh.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <unistd.h>

#include "hf/pickle.h"
#include "hf/safetensors.h"
#include "hf/torch_bin.h"
#include "hf2onnx/error.h"
#include "onnx/reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const std::string path = "/dev/shm/hf2onnx_fuzz_" + std::to_string(getpid());
  const uint8_t which = data[0] % 4;
  data++;
  size--;
  try {
    if (which == 3) {
      hf2onnx::hf::pickle::load(data, size, [](const hf2onnx::hf::pickle::Ref&) -> hf2onnx::hf::pickle::Ref {
        throw hf2onnx::Error("no storages here");
      }, "fuzz.pkl");
      return 0;
    }
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return 0;
    std::fwrite(data, 1, size, f);
    std::fclose(f);
    if (which == 0) {
      auto t = hf2onnx::hf::read_safetensors(path);
      for (auto& [k, v] : t) {  // touch every byte the reader vouched for
        volatile uint8_t sink = 0;
        for (uint64_t i = 0; i < v.nbytes(); ++i) sink ^= v.data[i];
      }
    } else if (which == 1) {
      auto t = hf2onnx::hf::read_torch_bin(path);
      for (auto& [k, v] : t) {
        std::vector<float> out(static_cast<size_t>(v.numel()));
        if (v.numel() < (1 << 20)) hf2onnx::hf::convert_to_float32(v, out.data());
      }
    } else {
      auto m = hf2onnx::read_onnx_lazy(path);
      for (const auto& t : m.initializers)
        if (t.numel() < (1 << 20)) (void)t.bytes();
    }
  } catch (const hf2onnx::Error&) {
  }
  return 0;
}
