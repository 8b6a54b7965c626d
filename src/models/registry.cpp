#include "models/registry.h"

#include <algorithm>

#include "hf2onnx/error.h"
#include "models/builders.h"

namespace hf2onnx {

const std::vector<ArchEntry>& architecture_table() {
  using T = Task;
  static const std::vector<ArchEntry> kTable = {
      // bert.cpp — transformers/models/bert/modeling_bert.py
      {"BertModel", "bert", T::FeatureExtraction, &build_bert},
      {"BertForSequenceClassification", "bert", T::TextClassification, &build_bert},
      {"BertForTokenClassification", "bert", T::TokenClassification, &build_bert},
      {"BertForQuestionAnswering", "bert", T::QuestionAnswering, &build_bert},
      {"BertForMaskedLM", "bert", T::FillMask, &build_bert},
      // roberta.cpp — transformers/models/roberta/modeling_roberta.py (XLM-R is the same graph)
      {"RobertaModel", "roberta", T::FeatureExtraction, &build_roberta},
      {"RobertaForSequenceClassification", "roberta", T::TextClassification, &build_roberta},
      {"RobertaForTokenClassification", "roberta", T::TokenClassification, &build_roberta},
      {"RobertaForQuestionAnswering", "roberta", T::QuestionAnswering, &build_roberta},
      {"RobertaForMaskedLM", "roberta", T::FillMask, &build_roberta},
      {"XLMRobertaModel", "roberta", T::FeatureExtraction, &build_roberta},
      {"XLMRobertaForSequenceClassification", "roberta", T::TextClassification, &build_roberta},
      {"XLMRobertaForTokenClassification", "roberta", T::TokenClassification, &build_roberta},
      {"XLMRobertaForQuestionAnswering", "roberta", T::QuestionAnswering, &build_roberta},
      {"XLMRobertaForMaskedLM", "roberta", T::FillMask, &build_roberta},
      // distilbert.cpp — transformers/models/distilbert/modeling_distilbert.py
      {"DistilBertModel", "distilbert", T::FeatureExtraction, &build_distilbert},
      {"DistilBertForSequenceClassification", "distilbert", T::TextClassification, &build_distilbert},
      {"DistilBertForTokenClassification", "distilbert", T::TokenClassification, &build_distilbert},
      {"DistilBertForQuestionAnswering", "distilbert", T::QuestionAnswering, &build_distilbert},
      {"DistilBertForMaskedLM", "distilbert", T::FillMask, &build_distilbert},
      // gpt2.cpp — transformers/models/gpt2/modeling_gpt2.py (decoder with KV cache)
      {"GPT2Model", "gpt2", T::FeatureExtraction, &build_gpt2},
      {"GPT2LMHeadModel", "gpt2", T::TextGeneration, &build_gpt2},
      // llama.cpp — transformers/models/llama/modeling_llama.py (decoder with KV cache, GQA, RoPE scaling)
      {"LlamaModel", "llama", T::FeatureExtraction, &build_llama},
      {"LlamaForCausalLM", "llama", T::TextGeneration, &build_llama},
      // mistral.cpp, qwen2.cpp, gemma.cpp — Llama's modules (llama.h) with each family's config (v4.44)
      {"MistralModel", "mistral", T::FeatureExtraction, &build_mistral},
      {"MistralForCausalLM", "mistral", T::TextGeneration, &build_mistral},
      {"Qwen2Model", "qwen2", T::FeatureExtraction, &build_qwen2},
      {"Qwen2ForCausalLM", "qwen2", T::TextGeneration, &build_qwen2},
      {"GemmaModel", "gemma", T::FeatureExtraction, &build_gemma},
      {"GemmaForCausalLM", "gemma", T::TextGeneration, &build_gemma},
      // phi3.cpp — transformers/models/phi3/modeling_phi3.py (v4.44: fused projections, longrope)
      {"Phi3Model", "phi3", T::FeatureExtraction, &build_phi3},
      {"Phi3ForCausalLM", "phi3", T::TextGeneration, &build_phi3},
      // bart.cpp — transformers/models/{bart,mbart}/modeling_*.py (encoder + decoders with KV cache)
      {"BartModel", "bart", T::FeatureExtraction, &build_bart},
      {"BartForConditionalGeneration", "bart", T::Text2TextGeneration, &build_bart},
      {"MBartModel", "bart", T::FeatureExtraction, &build_bart},
      {"MBartForConditionalGeneration", "bart", T::Text2TextGeneration, &build_bart},
      // marian.cpp — transformers/models/marian/modeling_marian.py (BART layers, sinusoidal positions)
      {"MarianModel", "marian", T::FeatureExtraction, &build_marian},
      {"MarianMTModel", "marian", T::Text2TextGeneration, &build_marian},
      // whisper.cpp — transformers/models/whisper/modeling_whisper.py (Conv1d front end on input_features)
      {"WhisperModel", "whisper", T::FeatureExtraction, &build_whisper},
      {"WhisperForConditionalGeneration", "whisper", T::AutomaticSpeechRecognition, &build_whisper},
      // t5.cpp — transformers/models/{t5,mt5}/modeling_*.py (relative position buckets, RMS norm)
      {"T5EncoderModel", "t5", T::FeatureExtraction, &build_t5},
      {"T5ForConditionalGeneration", "t5", T::Text2TextGeneration, &build_t5},
      {"MT5EncoderModel", "t5", T::FeatureExtraction, &build_t5},
      {"MT5ForConditionalGeneration", "t5", T::Text2TextGeneration, &build_t5},
      // vit.cpp — transformers/models/vit/modeling_vit.py (v4.44)
      {"ViTModel", "vit", T::FeatureExtraction, &build_vit},
      {"ViTForImageClassification", "vit", T::ImageClassification, &build_vit},
      // clip.cpp — transformers/models/clip/modeling_clip.py (v4.32 = v4.44): each tower from its own config, or both
      {"CLIPTextModel", "clip-text", T::FeatureExtraction, &build_clip_text},
      {"CLIPTextModelWithProjection", "clip-text", T::FeatureExtraction, &build_clip_text},
      {"CLIPVisionModel", "clip-vision", T::FeatureExtraction, &build_clip_vision},
      {"CLIPVisionModelWithProjection", "clip-vision", T::FeatureExtraction, &build_clip_vision},
      {"CLIPModel", "clip", T::ZeroShotImageClassification, &build_clip},
      // wav2vec2.cpp — transformers/models/{wav2vec2,hubert}/modeling_*.py (v4.32): conv features on raw audio, CTC head
      {"Wav2Vec2Model", "wav2vec2", T::FeatureExtraction, &build_wav2vec2},
      {"Wav2Vec2ForCTC", "wav2vec2", T::AutomaticSpeechRecognition, &build_wav2vec2},
      {"HubertModel", "wav2vec2", T::FeatureExtraction, &build_wav2vec2},
      {"HubertForCTC", "wav2vec2", T::AutomaticSpeechRecognition, &build_wav2vec2},
      // unet.cpp, vae.cpp — diffusers 0.30.3 (a Stable Diffusion pipeline's components; the pipeline folder itself
      // is exported by export/diffusion_pipeline.cpp, its text encoder by clip.cpp)
      {"UNet2DConditionModel", "unet", T::TextToImage, &build_unet},
      {"AutoencoderKL", "vae", T::TextToImage, &build_vae},
  };
  return kTable;
}

const char* graph_file_stem(GraphKind kind) {
  switch (kind) {
    case GraphKind::Model: return "model";
    case GraphKind::Encoder: return "encoder_model";
    case GraphKind::Decoder: return "decoder_model";
    case GraphKind::DecoderWithPast: return "decoder_with_past_model";
    case GraphKind::DecoderMerged: return "decoder_model_merged";
    case GraphKind::VaeEncoder: return "vae_encoder/model";
    case GraphKind::VaeDecoder: return "vae_decoder/model";
  }
  return "model";
}

const ArchEntry& find_architecture(const std::string& architecture, const std::string& where) {
  for (const auto& e : architecture_table())
    if (architecture == e.architecture) return e;
  std::string list;
  for (const auto& e : architecture_table()) list += (list.empty() ? "" : ", ") + std::string(e.architecture);
  throw Error(where + ": unsupported architecture '" + architecture + "' (supported: " + list + ")");
}

std::vector<Task> family_tasks(const std::string& family) {
  std::vector<Task> tasks;
  for (Task t : all_tasks())
    for (const auto& e : architecture_table())
      if (family == e.family && e.task == t) {
        tasks.push_back(t);
        break;
      }
  return tasks;
}

}  // namespace hf2onnx
