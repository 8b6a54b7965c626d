#include "hf/checkpoint.h"

#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "hf/config.h"
#include "hf/safetensors.h"
#include "hf/torch_bin.h"
#include "hf2onnx/error.h"

namespace hf2onnx::hf {
namespace fs = std::filesystem;

namespace {

// In order of preference: transformers' names, then diffusers' (a pipeline component's folder), then the fp16
// variants diffusers writes beside them (`save_pretrained(variant="fp16")`), which some components ship alone.
const char* const kCandidates[] = {
    "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
    "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json",
    "diffusion_pytorch_model.bin", "diffusion_pytorch_model.bin.index.json",
    "model.fp16.safetensors", "model.safetensors.index.fp16.json", "diffusion_pytorch_model.fp16.safetensors",
    "diffusion_pytorch_model.safetensors.index.fp16.json", "pytorch_model.fp16.bin", "diffusion_pytorch_model.fp16.bin"};

std::map<std::string, TensorData> read_weight_file(const fs::path& file) {
  if (file.extension() == ".safetensors") return read_safetensors(file);
  return read_torch_bin(file);
}

std::string format_of(const fs::path& file, const std::map<std::string, TensorData>& t) {
  if (file.extension() == ".safetensors") return "safetensors";
  std::ifstream in(file, std::ios::binary);
  char sig[2] = {};
  in.read(sig, 2);
  return (sig[0] == 'P' && sig[1] == 'K') ? "pytorch zip" : "pytorch legacy";
}

}  // namespace

uint64_t Checkpoint::total_bytes() const {
  uint64_t n = 0;
  for (const auto& [k, t] : tensors) n += t.nbytes();
  return n;
}

bool Checkpoint::has_tensor(const std::string& key) const {
  for (const auto& [k, t] : tensors)
    if (k == key || (k.size() > key.size() && k.compare(k.size() - key.size(), key.size(), key) == 0 &&
                     k[k.size() - key.size() - 1] == '.'))
      return true;
  return false;
}

std::vector<fs::path> find_weight_files(const fs::path& dir) {
  std::vector<fs::path> found;
  for (const char* c : kCandidates)
    if (fs::exists(dir / c)) found.push_back(dir / c);
  return found;
}

Checkpoint load_checkpoint(const fs::path& dir) {
  auto found = find_weight_files(dir);
  if (found.empty())
    throw Error(dir.string() + ": no weights found (expected model.safetensors, model.safetensors.index.json, "
                "pytorch_model.bin or pytorch_model.bin.index.json; in a diffusers component, "
                "diffusion_pytorch_model.safetensors or .bin, or their .fp16 variants)");
  const fs::path& chosen = found.front();
  Checkpoint ck;
  if (chosen.extension() != ".json") {
    ck.tensors = read_weight_file(chosen);
    ck.files = {chosen};
    ck.format = format_of(chosen, ck.tensors);
    return ck;
  }

  // Sharded: {"weight_map": {"tensor name": "shard file"}}
  const std::string text = read_json_file(chosen);
  nlohmann::json index = parse_json(text.data(), text.data() + text.size(), chosen.string() + ": invalid JSON");
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    throw Error(chosen.string() + ": index has no 'weight_map' object");
  std::map<std::string, std::set<std::string>> by_shard;
  for (const auto& [name, shard] : index["weight_map"].items()) {
    if (!shard.is_string()) throw Error(chosen.string() + ": weight_map entry " + quote_name(name) + " is not a file name");
    std::string s = shard.get<std::string>();
    if (s.find('/') != std::string::npos || s == "." || s == "..")
      throw Error(chosen.string() + ": shard name " + quote_name(s) + " must be a file in the model folder");
    by_shard[s].insert(name);
  }
  for (const auto& [shard, names] : by_shard) {
    fs::path file = dir / shard;
    if (!fs::exists(file)) throw Error(chosen.string() + ": shard " + quote_name(shard) + " is missing");
    auto tensors = read_weight_file(file);
    if (ck.format.empty()) ck.format = format_of(file, tensors) + ", sharded";
    for (const auto& name : names) {
      auto it = tensors.find(name);
      if (it == tensors.end())
        throw Error(file.string() + ": tensor " + quote_name(name) + " listed in " + chosen.filename().string() + " is missing");
      ck.tensors[name] = std::move(it->second);
    }
    ck.files.push_back(file);
  }
  return ck;
}

}  // namespace hf2onnx::hf
