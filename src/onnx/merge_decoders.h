// Merges a seq2seq model's two decoders into the one file transformers.js loads
// (`decoder_model_merged.onnx`), the way Optimum's `merge_decoders` lays it out: one `If` node on a new
// input `use_cache_branch` (BOOL [1]) whose then-branch is the decoder with past and whose else-branch
// is the decoder without past. Inputs are the union (the no-past decoder's first, then the past inputs,
// then use_cache_branch); outputs are the no-past decoder's, and outputs the with-past decoder does not
// have (the cross-attention presents) are empty constants in its branch. Weights both decoders use are
// stored once at the top level; small integer constants stay inside their branch.
#pragma once
#include <filesystem>

#include "onnx/writer.h"

namespace hf2onnx {

void merge_decoders(const std::filesystem::path& no_past, const std::filesystem::path& with_past,
                    const std::filesystem::path& out, ExternalData external = ExternalData::Auto);

}  // namespace hf2onnx
