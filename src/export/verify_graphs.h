// The verify stage: every written graph run in ONNX Runtime at two shapes that differ from the trace shapes,
// against libtorch eager of the same modules with the real weights (when they are loaded), and decoders'
// KV caches checked (a prefill and two cached steps against one call on the same tokens). Used after every
// export and by `hf2onnx verify`.
#pragma once
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/npy.h"
#include "hf2onnx/export.h"
#include "models/model.h"
#include "verify/int8_check.h"

namespace hf2onnx {

// The two shapes graphs are verified at: every dynamic size differs from both trace shapes' (a decoder's
// new tokens are at least 3, so that two cached steps follow a prefill).
const std::vector<DimSizes>& verify_shapes();

struct OutputCheck {
  std::string file, output, what;  // what: "libtorch, batch_size 1, sequence_length 5", "2 cached steps", ...
  double diff = 0, tolerance = 0;
  bool ok() const { return diff <= tolerance; }  // false for NaN
};

struct Verification {
  bool ran = false;       // ONNX Runtime ran the graphs
  bool eager = false;     // and libtorch eager was the reference
  std::string not_done;   // what was left out and why ("" when everything ran)
  std::vector<OutputCheck> checks;
  double seconds = 0;
  const OutputCheck* first_failure() const;
  nlohmann::json to_json() const;
  std::string summary() const;  // one log line
  std::string failure_message() const;  // names the file, the output and the difference
};

// Verifies the graphs of `model` written at `files` (graph kind → .onnx; a DecoderMerged entry is checked
// branch by branch against the two decoders). `eager`: the module's parameters hold the real weights.
// Inputs, expected and actual outputs go under `tmp`. Not run (ran = false) without ONNX Runtime.
// `release_weights` runs once libtorch is done, before ONNX Runtime loads the files (the caller frees weights).
Verification verify_graphs(const ExportModel& model, const std::map<GraphKind, std::filesystem::path>& files,
                           const std::filesystem::path& tmp, const VerifyOptions& options, bool eager,
                           const std::function<void()>& release_weights = {});

// INT8 against FP32 in ONNX Runtime on this machine, on the exporter's example input (a batch of 5 rows of 6
// positions; Whisper: 2 rows). Its inputs and outputs live in `tmp`, removed afterwards.
Int8Check check_int8(const ExportGraph& graph, const std::filesystem::path& fp32, const std::filesystem::path& int8,
                     const std::filesystem::path& tmp);
// The INT8 twin's outputs (the caches left out) against `min_cosine`: "" or what failed, naming file and output.
std::string int8_floor_failure(const std::string& file, const std::string& fp32, const Int8Check& check, double min_cosine);
// MemAvailable of /proc/meminfo in bytes (0 when unknown; tests set HF2ONNX_TEST_MEM_AVAILABLE).
uint64_t memory_available();

// A tensor as .npy data (int64 stays int64, bool as |b1, any float type as float32).
NpyArray to_npy(const torch::Tensor& t);

}  // namespace hf2onnx
