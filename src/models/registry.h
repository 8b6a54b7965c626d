// The one architecture table: HF `architectures[0]` → model family, default task, builder.
// `hf2onnx list`, `--task auto` and the help text all read this table. No libtorch in this header.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hf/config.h"
#include "models/task.h"

namespace hf2onnx {

struct ExportModel;  // models/model.h

// The graphs a model exports, and the file each is written to (Optimum's names; transformers.js loads
// `encoder_model` and `decoder_model_merged`, which the exporter builds from the two decoders).
// An AutoencoderKL has two graphs, each in its own folder as Optimum's diffusers layout has them
// ("vae_encoder/model", "vae_decoder/model").
enum class GraphKind { Model, Encoder, Decoder, DecoderWithPast, DecoderMerged, VaeEncoder, VaeDecoder };
const char* graph_file_stem(GraphKind kind);  // "model", "encoder_model", "decoder_model", ...

// What a builder may look at: the config, the task, and which tensors the checkpoint holds
// (to leave out an optional part, such as a pooler a MaskedLM checkpoint does not have).
struct BuildContext {
  const hf::Config& config;
  Task task;
  std::function<bool(const std::string& key)> has_tensor;
};
using Builder = std::shared_ptr<ExportModel> (*)(const BuildContext& ctx);

struct ArchEntry {
  const char* architecture;  // "BertForSequenceClassification"
  const char* family;        // "bert": one source file in src/models/
  Task task;                 // what --task auto exports
  Builder build;
};

const std::vector<ArchEntry>& architecture_table();
// Throws an Error listing the supported architectures when `architecture` is unknown.
const ArchEntry& find_architecture(const std::string& architecture, const std::string& where);
// Tasks a family can export: the default tasks of all its architectures.
std::vector<Task> family_tasks(const std::string& family);

}  // namespace hf2onnx
