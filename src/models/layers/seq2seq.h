// Encoder-decoder models (DESIGN.md §4b, docs/adding-a-model.md): the three graphs Optimum writes —
// encoder_model, decoder_model (no past: computes the cross-attention keys/values from the encoder
// output) and decoder_with_past_model (self-attention past and cross-attention keys/values as inputs) —
// with their I/O names, dims and example inputs. The model file supplies one encoder forward and one
// decoder forward; the decoder forward serves both decoders, telling them apart by whether the caches
// hold a past.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "models/layers/common.h"

namespace hf2onnx {
struct ExportModel;
}

namespace hf2onnx::layers {

// One decoder layer's caches. `self`: the past on input (undefined in decoder_model), past + new after
// the layer ran. `cross`: the encoder's keys/values, inputs of decoder_with_past_model, computed by the
// layer in decoder_model.
struct Seq2SeqCache {
  KVCache self, cross;
  bool has_past() const { return self.key.defined(); }
};

struct Seq2SeqSpec {
  int64_t decoder_layers = 0, decoder_heads = 0, head_dim = 0, d_model = 0;
  int64_t encoder_vocab_size = 0, decoder_vocab_size = 0;  // for example ids
  std::string first_output = "logits";                    // or "last_hidden_state" (base models)
  int64_t first_output_size = 0;                          // vocabulary or d_model
  int64_t num_mel_bins = 0;  // > 0: a speech encoder on input_features [batch, bins, 3000], no attention masks
};

// encoder(input_ids or input_features, attention_mask or undefined) → last_hidden_state.
using EncoderForward = std::function<torch::Tensor(const torch::Tensor& input, const torch::Tensor& attention_mask)>;
// decoder(input_ids, encoder_hidden_states (undefined with past), encoder_attention_mask (undefined for
// speech), caches with one entry per layer) → logits or last_hidden_state; fills the caches' presents.
using DecoderForward = std::function<torch::Tensor(const torch::Tensor& input_ids, const torch::Tensor& encoder_hidden_states,
                                                   const torch::Tensor& encoder_attention_mask,
                                                   std::vector<Seq2SeqCache>& caches)>;

// Declares the encoder, decoder and decoder-with-past graphs of `model`.
void set_seq2seq_graphs(ExportModel& model, const Seq2SeqSpec& spec, EncoderForward encoder, DecoderForward decoder);

// [B, S] absolute positions of the new decoder tokens: past .. past + S - 1, the past length read at run
// time from the first layer's cache (0 without past).
torch::Tensor decoder_positions(const torch::Tensor& input_ids, const Seq2SeqCache& first_layer);
// [B, P + S] positions of the decoder's keys, past and new: 0 .. P + S - 1.
torch::Tensor decoder_key_positions(const torch::Tensor& input_ids, const Seq2SeqCache& first_layer);
// [B, 1, S, P + S] additive causal mask of the decoder's self-attention: 0 where key j is visible to new
// token i (j <= past + i), finfo.min elsewhere (BART's _make_causal_mask; T5's inverted causal mask).
torch::Tensor decoder_causal_mask(const torch::Tensor& input_ids, const Seq2SeqCache& first_layer);

}  // namespace hf2onnx::layers
