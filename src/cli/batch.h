// `hf2onnx batch MANIFEST.json`: many exports for CI. Each model is exported by a child `hf2onnx export`
// process (its own memory, its own exit code), at most `jobs` at a time; the manifest's options become
// that command's flags, so they are checked exactly as on the command line.
//
// Manifest: {"models": [{"model": PATH_OR_ID, "out": DIR, "task": "auto", "quantize": true | false |
// {"target": ..., "per_channel": ..., "reduce_range": ..., "weight_type": ..., "op_types": ...,
// "exclude_nodes": ...}, "revision": ..., "opset": ..., "layout": ..., "external_data": ...}, ...]}.
// Relative paths are relative to the manifest's folder (a model that is not a folder there is an id).
#pragma once
#include <filesystem>
#include <string>

namespace hf2onnx {

struct BatchOptions {
  std::filesystem::path manifest;
  int jobs = 1;
  int shard = 1, shards = 1;  // --shard K/N: this run takes the models whose index i has i % N == K - 1
  bool keep_going = false;    // without it, no model is started after the first failure
  std::filesystem::path results;  // per-model reports and logs + summary.json (default: <manifest>.results/)
  std::filesystem::path junit;    // default: <manifest>.junit.xml beside the manifest
};

// Returns the process exit code: 0 when every model of the shard exported, 1 otherwise.
int run_batch(const BatchOptions& options);

// "K/N" → shard, shards; throws an Error for anything else (K in 1..N).
void parse_shard(const std::string& text, BatchOptions& options);

}  // namespace hf2onnx
