// Model ids ("org/name") resolved in the local Hugging Face cache, the way huggingface_hub lays it out:
// <cache>/models--org--name/refs/<branch or tag> holds a commit hash, snapshots/<commit>/ the files (links
// into blobs/). No network: an id that is not cached is an error naming the folders searched.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace hf2onnx::hf {

// The caches searched, in order: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub.
std::vector<std::filesystem::path> hub_cache_dirs();

// MODEL as given on the command line: an existing path is used as is (a path always wins over an id);
// otherwise an id "name" or "org/name" is looked up in the cache at `revision` (a branch or tag under
// refs/, or a commit hash, full or a prefix of at least 7 characters, under snapshots/). Throws an
// Error saying what was searched, and how to download the model, when it is not there.
std::filesystem::path resolve_model(const std::string& model, const std::string& revision = "main");

}  // namespace hf2onnx::hf
