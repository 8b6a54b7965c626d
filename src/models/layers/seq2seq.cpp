#include "models/layers/seq2seq.h"

#include <limits>

#include "models/layers/dynamic.h"
#include "models/model.h"

namespace hf2onnx::layers {
namespace {

const char* const kBatch = "batch_size";
const char* const kEncLen = "encoder_sequence_length";
const char* const kDecLen = "decoder_sequence_length";
const char* const kPastLen = "past_decoder_sequence_length";
const char* const kPresentLen = "past_decoder_sequence_length + decoder_sequence_length";
const char* const kCrossLen = "encoder_sequence_length_out";
constexpr int64_t kFrames = 3000;  // Whisper's fixed 30 s of 10 ms frames (declared; traced at fewer)

int64_t size_of(const std::string& dim, const DimSizes& sizes) {
  if (dim == kCrossLen) return sizes.at(kEncLen);
  if (dim.empty()) throw std::logic_error("seq2seq example inputs need explicit static sizes");
  if (std::isdigit(static_cast<unsigned char>(dim[0]))) return std::stoll(dim);
  return sizes.at(dim);
}

// Random ids below the vocabulary, an encoder mask of ones with the last row padded by two at the end,
// standard normal floats.
std::function<std::vector<torch::Tensor>(const DimSizes&)> example_factory(std::vector<TensorSpec> specs,
                                                                           const Seq2SeqSpec& s, bool decoder) {
  const int64_t vocab = decoder ? s.decoder_vocab_size : s.encoder_vocab_size;  // for input_ids
  return [specs, vocab](const DimSizes& sizes) {
    std::vector<torch::Tensor> out;
    torch::manual_seed(0);
    for (const auto& spec : specs) {
      std::vector<int64_t> shape;
      for (const auto& d : spec.dims) shape.push_back(size_of(d, sizes));
      torch::Tensor t;
      if (spec.name == "attention_mask" || spec.name == "encoder_attention_mask") {
        t = torch::ones(shape, torch::kLong);
        if (shape[1] > 2) t.index_put_({-1, torch::indexing::Slice(-2)}, 0);
      } else if (spec.dtype == torch::kLong) {
        t = torch::randint(vocab, shape, torch::kLong);
      } else {
        t = torch::randn(shape);
      }
      out.push_back(t);
    }
    return out;
  };
}

}  // namespace

void set_seq2seq_graphs(ExportModel& m, const Seq2SeqSpec& s, EncoderForward encoder, DecoderForward decoder) {
  const bool speech = s.num_mel_bins > 0;
  const std::string heads = std::to_string(s.decoder_heads), dim = std::to_string(s.head_dim);

  ExportGraph& enc = m.graph(GraphKind::Encoder);
  if (speech)
    enc.inputs = {{"input_features", torch::kFloat, {kBatch, std::to_string(s.num_mel_bins), std::to_string(kFrames) + ":frames"}}};
  else
    enc.inputs = {{"input_ids", torch::kLong, {kBatch, kEncLen}}, {"attention_mask", torch::kLong, {kBatch, kEncLen}}};
  enc.outputs = {{"last_hidden_state", torch::kFloat,
                  {kBatch, speech ? std::to_string(kFrames / 2) + ":frames / 2" : kEncLen, std::to_string(s.d_model)}}};
  enc.forward = [encoder, speech](const std::vector<torch::Tensor>& in) {
    return std::vector<torch::Tensor>{encoder(in[0], speech ? torch::Tensor() : in[1])};
  };
  if (!speech)
    enc.example_inputs = example_factory(enc.inputs, s, /*decoder=*/false);
  else
    enc.example_inputs = [bins = s.num_mel_bins](const DimSizes& d) {  // trace_shapes() has short "frames"
      torch::manual_seed(0);
      return std::vector<torch::Tensor>{torch::randn({d.at(kBatch), bins, d.count("frames") ? d.at("frames") : kFrames})};
    };

  // Inputs in Optimum's order (the order of the HF forward's parameters).
  for (const bool past : {false, true}) {
    ExportGraph& g = m.graph(past ? GraphKind::DecoderWithPast : GraphKind::Decoder);
    if (!speech) g.inputs.push_back({"encoder_attention_mask", torch::kLong, {kBatch, kEncLen}});
    g.inputs.push_back({"input_ids", torch::kLong, {kBatch, kDecLen}});
    if (!past) g.inputs.push_back({"encoder_hidden_states", torch::kFloat, {kBatch, kEncLen, std::to_string(s.d_model)}});
    g.outputs = {{s.first_output, torch::kFloat, {kBatch, kDecLen, std::to_string(s.first_output_size)}}};
    for (int64_t i = 0; i < s.decoder_layers; ++i) {
      const std::string l = std::to_string(i);
      for (const char* kv : {"key", "value"}) {
        if (past) g.inputs.push_back({"past_key_values." + l + ".decoder." + kv, torch::kFloat, {kBatch, heads, kPastLen, dim}});
        g.outputs.push_back({"present." + l + ".decoder." + kv, torch::kFloat, {kBatch, heads, kPresentLen, dim}});
      }
      for (const char* kv : {"key", "value"}) {
        if (past) g.inputs.push_back({"past_key_values." + l + ".encoder." + kv, torch::kFloat, {kBatch, heads, kCrossLen, dim}});
        else g.outputs.push_back({"present." + l + ".encoder." + kv, torch::kFloat, {kBatch, heads, kCrossLen, dim}});
      }
    }
    g.example_inputs = example_factory(g.inputs, s, /*decoder=*/true);
    g.forward = [decoder, past, speech, layers = s.decoder_layers](const std::vector<torch::Tensor>& in) {
      size_t k = 0;
      torch::Tensor mask = speech ? torch::Tensor() : in[k++];
      torch::Tensor ids = in[k++];
      torch::Tensor encoder_states = past ? torch::Tensor() : in[k++];
      std::vector<Seq2SeqCache> caches(static_cast<size_t>(layers));
      if (past)
        for (auto& c : caches) {
          c.self = {in[k], in[k + 1]};
          c.cross = {in[k + 2], in[k + 3]};
          k += 4;
        }
      std::vector<torch::Tensor> out{decoder(ids, encoder_states, mask, caches)};
      for (const auto& c : caches) {
        out.push_back(c.self.key);
        out.push_back(c.self.value);
        if (!past) {
          out.push_back(c.cross.key);
          out.push_back(c.cross.value);
        }
      }
      return out;
    };
  }
}

torch::Tensor decoder_positions(const torch::Tensor& input_ids, const Seq2SeqCache& first_layer) {
  auto positions = positions_like(input_ids);
  if (!first_layer.has_past()) return positions;
  auto past = torch::ones_like(first_layer.self.key.select(1, 0).select(-1, 0), torch::kLong).sum(-1, /*keepdim=*/true);  // [B, 1]
  return positions + past;
}

torch::Tensor decoder_key_positions(const torch::Tensor& input_ids, const Seq2SeqCache& first_layer) {
  auto keys = torch::ones_like(input_ids);  // [B, T]: one per key, past and new
  if (first_layer.has_past())
    keys = torch::cat({torch::ones_like(first_layer.self.key.select(1, 0).select(-1, 0), torch::kLong), keys}, 1);
  return positions_like(keys);
}

torch::Tensor decoder_causal_mask(const torch::Tensor& input_ids, const Seq2SeqCache& first_layer) {
  auto q = decoder_positions(input_ids, first_layer).unsqueeze(1).unsqueeze(-1);          // [B, 1, S, 1]
  auto visible = decoder_key_positions(input_ids, first_layer).unsqueeze(1).unsqueeze(2).le(q);  // [B, 1, S, T]
  return torch::zeros_like(visible, torch::kFloat).masked_fill(visible.logical_not(), std::numeric_limits<float>::lowest());
}

}  // namespace hf2onnx::layers
