#include "cli/inspect.h"

#include <cstdio>
#include <fstream>
#include <map>

#include <onnx/onnx_pb.h>

#include "common/log.h"
#include "hf/checkpoint.h"
#include "hf/config.h"
#include "hf2onnx/error.h"
#include "models/registry.h"
#include "onnx/reader.h"

namespace hf2onnx {
namespace fs = std::filesystem;

namespace {

std::string dims_str(const onnx::ValueInfoProto& vi) {
  std::string s = "[";
  const auto& dims = vi.type().tensor_type().shape().dim();
  for (int i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += dims[i].has_dim_param() ? dims[i].dim_param() : std::to_string(dims[i].dim_value());
  }
  return s + "]";
}

void inspect_onnx(const fs::path& path) {
  LazyModel lazy = read_onnx_lazy(path);  // weights are not read
  const onnx::ModelProto& model = lazy.model;
  const auto& g = model.graph();
  std::printf("%s: ONNX model (IR %lld", path.string().c_str(), static_cast<long long>(model.ir_version()));
  for (const auto& o : model.opset_import())
    std::printf(", opset %s%lld", o.domain().empty() ? "" : (o.domain() + ":").c_str(), static_cast<long long>(o.version()));
  std::printf("), producer %s %s, %s\n", model.producer_name().c_str(), model.producer_version().c_str(),
              format_bytes(fs::file_size(path)).c_str());
  for (const auto& p : model.metadata_props()) std::printf("  %s: %s\n", p.key().c_str(), p.value().c_str());
  std::printf("inputs:\n");
  for (const auto& vi : g.input())
    std::printf("  %-28s %-8s %s\n", vi.name().c_str(),
                onnx::TensorProto_DataType_Name(vi.type().tensor_type().elem_type()).c_str(), dims_str(vi).c_str());
  std::printf("outputs:\n");
  for (const auto& vi : g.output())
    std::printf("  %-28s %-8s %s\n", vi.name().c_str(),
                onnx::TensorProto_DataType_Name(vi.type().tensor_type().elem_type()).c_str(), dims_str(vi).c_str());
  std::map<std::string, int> ops;
  for (const auto& n : g.node()) ops[n.domain().empty() ? n.op_type() : n.domain() + ":" + n.op_type()]++;
  std::printf("nodes: %d (", g.node_size());
  bool first = true;
  for (const auto& [op, c] : ops) {
    std::printf("%s%s %d", first ? "" : ", ", op.c_str(), c);
    first = false;
  }
  std::map<std::string, std::pair<int, uint64_t>> inits;  // dtype → count, bytes
  for (const auto& t : lazy.initializers) {
    auto& e = inits[onnx::TensorProto_DataType_Name(t.header.data_type())];
    e.first++;
    e.second += static_cast<uint64_t>(t.numel()) * onnx_type_size(t.header.data_type());
  }
  std::printf(")\ninitializers: %zu", lazy.initializers.size());
  for (const auto& [dt, e] : inits) std::printf(", %s %d (%s)", dt.c_str(), e.first, format_bytes(e.second).c_str());
  std::printf("\n");
}

void inspect_checkpoint(const fs::path& dir, const std::vector<ArchEntry>& table) {
  hf::Config config = hf::Config::load(dir / "config.json");
  std::string arch = config.architecture();
  const ArchEntry* entry = nullptr;
  for (const auto& e : table)
    if (arch == e.architecture) entry = &e;
  std::printf("%s: %s (model_type %s)%s\n", dir.string().c_str(), arch.c_str(), config.model_type().c_str(),
              entry ? "" : " — not supported by hf2onnx");
  if (entry) std::printf("  family %s, default task %s\n", entry->family, task_name(entry->task));
  hf::Checkpoint ck = hf::load_checkpoint(dir);
  std::map<std::string, std::pair<int, uint64_t>> by_dtype;
  uint64_t params = 0;
  for (const auto& [name, t] : ck.tensors) {
    auto& e = by_dtype[hf::dtype_name(t.dtype)];
    e.first++;
    e.second += t.nbytes();
    params += static_cast<uint64_t>(t.numel());
  }
  std::printf("weights: %s (%s)\n", ck.format.c_str(), format_bytes(ck.total_bytes()).c_str());
  for (const auto& f : ck.files) std::printf("  %s\n", f.string().c_str());
  std::printf("tensors: %zu, parameters: %llu\n", ck.tensors.size(), static_cast<unsigned long long>(params));
  for (const auto& [dt, e] : by_dtype) std::printf("  %-5s %d tensors, %s\n", dt.c_str(), e.first, format_bytes(e.second).c_str());
}

}  // namespace

// An export folder's models (either layout); none for a checkpoint folder, whatever else it holds.
std::vector<fs::path> export_files(const fs::path& dir) {
  if (!hf::find_weight_files(dir).empty()) return {};
  return export_onnx_files(dir, [](const std::string&) { return true; });
}

void inspect_path(const fs::path& path, const std::function<const std::vector<ArchEntry>&()>& table) {
  if (fs::is_directory(path) && fs::exists(path / "model_index.json")) {
    // A diffusers pipeline: its exported folders (Optimum's layout), else its checkpoint's component folders.
    bool first = true;
    for (const char* part : {"text_encoder", "unet", "vae_encoder", "vae_decoder"})
      for (const char* file : {"model.onnx", "model_quantized.onnx"})
        if (fs::exists(path / part / file)) {
          std::printf("%s== %s/%s\n", first ? "" : "\n", part, file);
          inspect_onnx(path / part / file);
          first = false;
        }
    if (first)
      for (const char* part : {"text_encoder", "unet", "vae"}) {
        std::printf("%s== %s\n", first ? "" : "\n", part);
        inspect_checkpoint(path / part, table());
        first = false;
      }
    return;
  }
  if (fs::is_directory(path)) {
    const auto files = export_files(path);
    if (files.empty()) return inspect_checkpoint(path, table());
    for (size_t i = 0; i < files.size(); ++i) {  // an export folder: each ONNX file in turn
      std::printf("%s== %s\n", i ? "\n" : "", files[i].lexically_relative(path).string().c_str());
      inspect_onnx(files[i]);
    }
    return;
  }
  if (!fs::exists(path)) throw Error(path.string() + ": no such file or directory");
  inspect_onnx(path);
}

}  // namespace hf2onnx
