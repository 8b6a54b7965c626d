// Tasks as the CLI names them (Optimum's names); each architecture has a default one.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace hf2onnx {

enum class Task {
  FeatureExtraction,
  TextClassification,
  TokenClassification,
  QuestionAnswering,
  FillMask,
  TextGeneration,
  Text2TextGeneration,
  AutomaticSpeechRecognition,
  ImageClassification,
  ZeroShotImageClassification,
  TextToImage,  // a diffusers pipeline and its components (text encoder, UNet, VAE)
};

const char* task_name(Task t);
std::optional<Task> task_from_name(const std::string& name);
const std::vector<Task>& all_tasks();

}  // namespace hf2onnx
