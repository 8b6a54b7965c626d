// Builders of the model families, one per file in src/models/. Declared here so that the registry
// table does not need libtorch.
#pragma once
#include <memory>

#include "models/registry.h"

namespace hf2onnx {

std::shared_ptr<ExportModel> build_bert(const BuildContext& ctx);
std::shared_ptr<ExportModel> build_roberta(const BuildContext& ctx);
std::shared_ptr<ExportModel> build_distilbert(const BuildContext& ctx);
std::shared_ptr<ExportModel> build_gpt2(const BuildContext& ctx);
std::shared_ptr<ExportModel> build_llama(const BuildContext& ctx);
std::shared_ptr<ExportModel> build_mistral(const BuildContext& ctx);
std::shared_ptr<ExportModel> build_qwen2(const BuildContext& ctx);
std::shared_ptr<ExportModel> build_gemma(const BuildContext& ctx);
std::shared_ptr<ExportModel> build_phi3(const BuildContext& ctx);
std::shared_ptr<ExportModel> build_bart(const BuildContext& ctx);
std::shared_ptr<ExportModel> build_marian(const BuildContext& ctx);
std::shared_ptr<ExportModel> build_whisper(const BuildContext& ctx);
std::shared_ptr<ExportModel> build_t5(const BuildContext& ctx);
std::shared_ptr<ExportModel> build_vit(const BuildContext& ctx);
std::shared_ptr<ExportModel> build_clip_text(const BuildContext& ctx);
std::shared_ptr<ExportModel> build_clip_vision(const BuildContext& ctx);
std::shared_ptr<ExportModel> build_clip(const BuildContext& ctx);
std::shared_ptr<ExportModel> build_wav2vec2(const BuildContext& ctx);
std::shared_ptr<ExportModel> build_unet(const BuildContext& ctx);
std::shared_ptr<ExportModel> build_vae(const BuildContext& ctx);

}  // namespace hf2onnx
