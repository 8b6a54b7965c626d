// libFuzzer targets for the parsers of untrusted files, one binary per target (FUZZ_TARGET, set by
// tools/fuzz/run.sh): safetensors, torch_bin (zip and legacy pickle), pickle (the restricted
// unpickler alone), onnx (the lazy ONNX reader) and config (config.json). Any failure other than an
// hf2onnx::Error (a crash, a sanitizer report, another exception, memory over -rss_limit_mb) is a bug.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

#include "hf/config.h"
#include "hf/pickle.h"
#include "hf/safetensors.h"
#include "hf/torch_bin.h"
#include "hf2onnx/error.h"
#include "onnx/reader.h"

#define FUZZ_SAFETENSORS 0
#define FUZZ_TORCH_BIN 1
#define FUZZ_PICKLE 2
#define FUZZ_ONNX 3
#define FUZZ_CONFIG 4
#ifndef FUZZ_TARGET
#error "build with -DFUZZ_TARGET=FUZZ_<NAME> (tools/fuzz/run.sh does)"
#endif

namespace {

namespace hf = hf2onnx::hf;

[[maybe_unused]] std::string write_input(const uint8_t* data, size_t size) {
  static const std::string path = "/dev/shm/hf2onnx_fuzz_" + std::to_string(getpid());
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  return path;
}

// Reads every element a reader vouched for (ASan checks that each lies inside the file).
[[maybe_unused]] void touch(const std::map<std::string, hf::TensorData>& tensors, size_t input_size) {
  for (const auto& [name, t] : tensors) {
    // Converting allocates numel floats; stride-0 views may legally have many more elements than bytes,
    // so only those of a size comparable to the input are converted.
    if (static_cast<uint64_t>(t.numel()) > 16 * input_size + (1 << 16)) continue;
    std::vector<float> out(static_cast<size_t>(t.numel()));
    hf::convert_to_float32(t, out.data());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
#if FUZZ_TARGET == FUZZ_SAFETENSORS
    touch(hf::read_safetensors(write_input(data, size)), size);
#elif FUZZ_TARGET == FUZZ_TORCH_BIN
    touch(hf::read_torch_bin(write_input(data, size)), size);
#elif FUZZ_TARGET == FUZZ_PICKLE
    // Storages are stand-ins, so that tensors get rebuilt (and shapes copied) as in a checkpoint.
    auto storage = [](const hf::pickle::Ref&) {
      auto s = std::make_shared<hf::pickle::Object>();
      s->kind = hf::pickle::Kind::Storage;
      return s;
    };
    hf::pickle::load(data, size, storage, "fuzz.pkl");
#elif FUZZ_TARGET == FUZZ_ONNX
    auto m = hf2onnx::read_onnx_lazy(write_input(data, size));
    for (const auto& t : m.initializers) {  // typed fields are converted whatever the dims claim
      auto b = t.bytes();
      volatile uint8_t sink = 0;
      for (uint64_t i = 0; i < b.size; i += 64) sink ^= static_cast<const uint8_t*>(b.data)[i];
      if (t.header.data_type() == onnx::TensorProto::FLOAT) (void)t.floats();
    }
#elif FUZZ_TARGET == FUZZ_CONFIG
    auto c = hf::Config::parse(std::string(reinterpret_cast<const char*>(data), size), "config.json");
    auto probe = [](const hf::Config& c) {
      for (const char* key : {"hidden_size", "num_attention_heads", "vocab_size", "rope_theta", "factor",
                              "architectures", "id2label", "rope_scaling", "model_type", "type", "tie_word_embeddings"}) {
        auto attempt = [&](auto&& get) {
          try {
            get();
          } catch (const hf2onnx::Error&) {
          }
        };
        attempt([&] { c.get_int(key); });
        attempt([&] { c.get_double(key); });
        attempt([&] { c.get_bool(key); });
        attempt([&] { c.get_string(key); });
        attempt([&] { c.get_strings(key); });
        attempt([&] { c.object_size(key); });
        attempt([&] { c.require_int(key); });
      }
      try {
        c.architecture();
      } catch (const hf2onnx::Error&) {
      }
    };
    probe(c);
    if (auto rope = c.get_object("rope_scaling")) probe(*rope);
#else
#error "unknown FUZZ_TARGET"
#endif
  } catch (const hf2onnx::Error&) {
  }
  return 0;
}
