// ExportModel: what a builder hands to the exporter — a module tree whose parameter names are the
// checkpoint keys, its graphs (each a forward to trace with its ONNX input/output names and dims), and
// the loading rules. Most models have one graph; seq2seq models have an encoder and two decoders.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "models/registry.h"
#include "models/task.h"

namespace hf2onnx {

struct TensorSpec {
  std::string name;                 // ONNX name: input_ids, logits, ...
  torch::Dtype dtype = torch::kFloat;
  // Per dim: a dynamic dim name ("batch_size", "past_sequence_length + sequence_length"), a number for a
  // static size, "" for a static size taken from the trace, or "N:name" for a size the model fixes at N
  // (declared static in the file) that the graph nevertheless follows, traced at smaller sizes because a
  // forward at N is costly (Whisper's 3000 frames).
  std::vector<std::string> dims;
};

// Sizes of the dynamic dims for one example input: {"batch_size": 4, "sequence_length": 9}.
using DimSizes = std::map<std::string, int64_t>;

// The two shapes every forward is traced at: every dynamic size differs between them, and neither is a
// shape the tests validate at (fixture sets a: 2×7, b: 3×11), so a frozen size cannot pass unnoticed.
// "frames" is a trace-only size: Whisper's input length, which the model fixes at 3000 (what example
// inputs use when "frames" is absent) and which is traced short (2 × the encoder length) for speed.
// CLIPModel's text and image batches are separate dims (text_batch_size, image_batch_size), unequal in each set
// (images are the costly part of its trace: 50 patches each at ViT-B/32).
// "height" / "width" are a diffusers UNet's latent size (the VAE traces at half of it, models/vae.cpp): odd,
// unequal, and differing between the sets at every level of a 4-level UNet (6 → 3 → 2 → 1 and 10 → 5 → 3 → 2;
// 5 → 3 → 2 → 1 and 9 → 5 → 3 → 2), so that no level's size looks static.
inline const std::vector<DimSizes>& trace_shapes() {
  // Small, because the trace computes the forward twice at 6, then 12, positions (layers::linear skips the products
  // with the zero weights; attention, convolutions and GPT-2's Conv1D still compute). Each dynamic size differs
  // between the two sets; none is 1.
  static const std::vector<DimSizes> kShapes = {
      {{"batch_size", 2}, {"sequence_length", 3}, {"past_sequence_length", 4},  // totals 7 and 9
       {"encoder_sequence_length", 5}, {"decoder_sequence_length", 2}, {"past_decoder_sequence_length", 3},
       {"frames", 10}, {"text_batch_size", 2}, {"image_batch_size", 3}, {"height", 6}, {"width", 5}},
      {{"batch_size", 3}, {"sequence_length", 4}, {"past_sequence_length", 5},
       {"encoder_sequence_length", 7}, {"decoder_sequence_length", 3}, {"past_decoder_sequence_length", 4},
       {"frames", 14}, {"text_batch_size", 3}, {"image_batch_size", 2}, {"height", 10}, {"width", 9}}};
  return kShapes;
}

// How checkpoint keys relate to parameter names beyond "equal" (kept as data next to each model).
struct LoadRules {
  // A parameter may be stored with or without these prefixes: a base model read from a head checkpoint
  // ("bert." + p), or a head model whose body comes from a base checkpoint ("transformer.wte.weight" as "wte.weight").
  std::vector<std::string> optional_prefixes;
  // Checkpoint keys matching one of these (ECMAScript regex, whole key) are expected and not used
  // (persisted buffers such as position_ids, the stored copy of a tied weight).
  std::vector<std::string> ignored_keys;
  // Parameters the checkpoint stores in another form, computed once at load time and written as one initializer
  // under the parameter's name (e.g. a weight-normed kernel from weight_g and weight_v).
  struct Derived {
    std::string name;  // the parameter, as named in the module tree
    // Alternative spellings (the first one complete in the checkpoint is used), each the checkpoint keys that
    // `compute` takes, in its argument order; optional_prefixes apply to them as to any parameter.
    std::vector<std::vector<std::string>> sources;
    std::function<torch::Tensor(const std::vector<torch::Tensor>&)> compute;
  };
  std::vector<Derived> derived;
};

// One ONNX graph of a model. Its file name comes from its kind (models/registry.h: graph_file_stem).
struct ExportGraph {
  GraphKind kind = GraphKind::Model;
  std::vector<TensorSpec> inputs, outputs;
  // Inputs in the order of `inputs`; returns tensors in the order of `outputs`.
  std::function<std::vector<torch::Tensor>(const std::vector<torch::Tensor>&)> forward;
  // Example inputs at the given dynamic sizes (valid ids, masks with padding) for tracing and tests.
  std::function<std::vector<torch::Tensor>(const DimSizes&)> example_inputs;
  // A decoder whose prefill + cached steps may legitimately differ from one call (e.g. rope scaling that depends
  // on each call's length): why, and the verify stage then does not compare them. "" for every other graph.
  std::string steps_may_differ;
};

struct ExportModel {
  std::string architecture;
  Task task = Task::FeatureExtraction;
  std::shared_ptr<torch::nn::Module> module;
  std::vector<ExportGraph> graphs;  // all read the parameters of `module`
  LoadRules load_rules;

  // The graph of the given kind, added on first use (single-graph models use GraphKind::Model).
  ExportGraph& graph(GraphKind kind = GraphKind::Model) {
    for (auto& g : graphs)
      if (g.kind == kind) return g;
    graphs.push_back({});
    graphs.back().kind = kind;
    return graphs.back();
  }
};

}  // namespace hf2onnx
